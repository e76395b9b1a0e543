//! Helpers shared by end-to-end tests that drive a `hoist serve` process directly: small OCI
//! layout archives built in code, and hoist with its stderr captured, plus a `curl -T` client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::common::{Answer, sha256};

// ---------------------------------------------------------------------------------------------
// A small OCI layout archive, built in code.

pub struct Image {
    pub tar: Vec<u8>,
    /// Layer digests, in manifest order.
    pub layers: Vec<String>,
    pub config: String,
}

/// Incompressible bytes, so a gzip layer is about as large as its content.
fn noise(state: &mut u64, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, path, data).expect("tar append");
}

/// One image: gzip layers of `layer_sizes` bytes of noise, config, OCI manifest, and an index
/// naming it `ref_name`.
pub fn image(seed: u64, layer_sizes: &[usize], ref_name: &str) -> Image {
    build_image(seed, layer_sizes, ref_name, false)
}

/// The same, where the last byte of the first layer is changed after its digest was taken, so
/// the push fails with DIGEST_MISMATCH once the layer's upload session is open and its bytes
/// sent.
pub fn image_corrupt(seed: u64, layer_sizes: &[usize], ref_name: &str) -> Image {
    build_image(seed, layer_sizes, ref_name, true)
}

fn build_image(seed: u64, layer_sizes: &[usize], ref_name: &str, corrupt: bool) -> Image {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layers = Vec::new();
    for (i, &n) in layer_sizes.iter().enumerate() {
        let mut inner = tar::Builder::new(Vec::new());
        append(
            &mut inner,
            &format!("layer{i}/data.bin"),
            &noise(&mut state, n),
        );
        let inner = inner.into_inner().expect("inner tar");
        diff_ids.push(sha256(&inner));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&inner).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let d = sha256(&gz);
        layer_descs.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d,
            "size": gz.len(),
        }));
        layers.push(d.clone());
        blobs.push((d, gz));
    }
    if corrupt {
        let (_, layer) = blobs.first_mut().expect("a layer to corrupt");
        let last = layer.len() - 1;
        layer[last] ^= 0xff;
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json");
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layer_descs,
    }))
    .expect("manifest json");
    let manifest_digest = sha256(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }],
    }))
    .expect("index json");
    blobs.push((config_digest.clone(), config));
    blobs.push((manifest_digest, manifest));
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &index);
    for (d, bytes) in &blobs {
        let hex = d.strip_prefix("sha256:").expect("sha256 digest");
        append(&mut b, &format!("blobs/sha256/{hex}"), bytes);
    }
    Image {
        tar: b.into_inner().expect("outer tar"),
        layers,
        config: config_digest,
    }
}

// ---------------------------------------------------------------------------------------------
// hoist, with its stderr captured (and echoed, so a failing test shows it).

pub struct HoistProc {
    child: Child,
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl HoistProc {
    /// `hoist serve` on a loopback port in front of `registry_url`, with `env` set on top of an
    /// environment cleared of DOCKER_CONFIG and any inherited HOIST_* variables.
    pub fn start(registry_url: &str, env: &[(&str, &str)]) -> Result<HoistProc> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            registry_url,
        ])
        // As chatty as hoist gets: a secret in any of its log lines shows up here.
        .env("RUST_LOG", "hoist=trace,info")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("HOIST_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning hoist")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().context("hoist stderr")?;
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(|l| l.ok()) {
                eprintln!("[hoist] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let out_pipe = child.stdout.take().context("hoist stdout")?;
        let mut out = BufReader::new(out_pipe);
        let mut line = String::new();
        out.read_line(&mut line)?;
        // Keep draining stdout so a later write never meets a closed pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let Some(url) = line.trim().strip_prefix("hoist listening on ") else {
            let _ = child.kill();
            std::thread::sleep(Duration::from_millis(200));
            bail!(
                "unexpected first line from hoist: {line:?}; stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        Ok(HoistProc {
            url: url.to_string(),
            child,
            stderr,
        })
    }

    /// Everything hoist wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for HoistProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `curl -T` the bytes to hoist; extra curl args (e.g. `--limit-rate`) go first.
pub fn push_with(
    hoist: &HoistProc,
    path_and_query: &str,
    body: &[u8],
    extra: &[&str],
) -> Result<Answer> {
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), body)?;
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "90"])
        .args(extra)
        .arg("-T")
        .arg(tmp.path())
        .arg(format!("{}{path_and_query}", hoist.url))
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').context("curl printed no status")?;
    let status: u16 = status.trim().parse().context("curl status")?;
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    Ok(Answer { status, body })
}

pub fn push(hoist: &HoistProc, path_and_query: &str, body: &[u8]) -> Result<Answer> {
    push_with(hoist, path_and_query, body, &[])
}

/// The `error.message` of an answer ("" when there is none).
pub fn message(a: &Answer) -> String {
    a.body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The outcome hoist reported for `digest` in the first image of a 201 answer.
pub fn outcome(a: &Answer, digest: &str) -> String {
    a.body["images"][0]["blobs"]
        .as_array()
        .and_then(|bs| bs.iter().find(|b| b["digest"] == digest))
        .and_then(|b| b["outcome"].as_str())
        .unwrap_or("<not reported>")
        .to_string()
}
