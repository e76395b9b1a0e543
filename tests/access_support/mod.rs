//! Helpers for the access-control end-to-end tests (and the auth benchmark): a real
//! `docker-registry` and a real `hoist serve` on loopback ports, a tiny HTTP/1.1 client that
//! can stop after the headers, a one-layer OCI archive, and a local OIDC issuer.
#![allow(dead_code)]

pub mod issuer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::Digest;

/// A `docker-registry` on a loopback port, storing into a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Files the registry reads (an htpasswd), kept as long as it runs.
    _files: Option<tempfile::TempDir>,
}

impl Registry {
    /// Starts a registry; `extra_yaml` (e.g. an `auth:` section) is appended to its config.
    pub fn start_with(extra_yaml: &str) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: hoist-test-secret\n{extra_yaml}",
            dir.path().join("data").display()
        );
        let path = dir.path().join("config.yml");
        std::fs::write(&path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let registry = Registry {
            child,
            port,
            dir,
            _files: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(a) = request(&registry.addr(), "GET", "/v2/", &[], b"")
                && (a.status == 200 || a.status == 401)
            {
                return Ok(registry);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("docker-registry did not come up")
    }

    /// An open registry.
    pub fn start() -> Result<Registry> {
        Registry::start_with("")
    }

    /// A registry asking Basic credentials of the users given (`user`, `password`).
    pub fn start_htpasswd(users: &[(&str, &str)]) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("htpasswd");
        let mut lines = String::new();
        for (u, p) in users {
            // distribution's htpasswd is bcrypt only; cost 4 keeps the test fast.
            let hash = bcrypt::hash_with_result(p, 4)?.format_for_version(bcrypt::Version::TwoY);
            lines.push_str(&format!("{u}:{hash}\n"));
        }
        std::fs::write(&file, lines)?;
        let mut r = Registry::start_with(&format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            file.display()
        ))?;
        r._files = Some(dir);
        Ok(r)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Tags of a repository (empty when unknown); `auth` is an Authorization value or "".
    pub fn tags_as(&self, repo: &str, auth: &str) -> Vec<String> {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth)]
        };
        let path = format!("/v2/{repo}/tags/list");
        match request(&self.addr(), "GET", &path, &headers, b"") {
            Ok(a) if a.status == 200 => a.json()["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.tags_as(repo, "")
    }

    /// Whether `HEAD /v2/<repo>/blobs/<digest>` finds the blob linked in that repository.
    pub fn has_blob_as(&self, repo: &str, digest: &str, auth: &str) -> bool {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("Authorization", auth)]
        };
        let path = format!("/v2/{repo}/blobs/{digest}");
        matches!(request(&self.addr(), "HEAD", &path, &headers, b""), Ok(a) if a.status == 200)
    }

    pub fn has_blob(&self, repo: &str, digest: &str) -> bool {
        self.has_blob_as(repo, digest, "")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `hoist serve` with a config file; stderr kept in a file; killed on drop.
pub struct Hoist {
    child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Hoist {
    /// Starts hoist on a loopback port against `registry` with `config` as its TOML file.
    pub fn start(registry: &str, config: &str, env: &[(&str, &str)]) -> Result<Hoist> {
        let dir = tempfile::tempdir()?;
        let cfg = dir.path().join("hoist.toml");
        std::fs::write(&cfg, config)?;
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            registry,
            "--config",
        ])
        .arg(&cfg)
        .env("RUST_LOG", "hoist=info")
        .stdout(Stdio::piped())
        .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning hoist")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("hoist listening on http://") else {
            let _ = child.wait();
            let err = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            bail!("hoist did not start: {line:?}\n{err}");
        };
        Ok(Hoist {
            addr: url.to_string(),
            child,
            dir,
        })
    }

    /// Everything hoist logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A raw-body push; `headers` e.g. `[("Authorization", "Bearer …")]`.
    pub fn push(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        request(&self.addr, "PUT", path, headers, body).expect("push request")
    }
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `error.code` of a failure ("" otherwise).
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// All values of a header.
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The outcome of blob `digest` in the report's first image.
    pub fn outcome(&self, digest: &str) -> String {
        let v = self.json();
        v["images"][0]["blobs"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["digest"] == digest))
            .and_then(|b| b["outcome"].as_str())
            .unwrap_or("")
            .to_string()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the answer read to its end (30 s cap).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer> {
    let mut s = open(addr, method, path, headers, Some(body.len()))?;
    s.write_all(body)?;
    read_answer(&mut s)
}

/// Sends only the head of a request declaring `length` body bytes (or chunked when `None`),
/// and returns the stream, so a test can see what hoist answers before any body arrives.
pub fn open(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    length: Option<usize>,
) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    s.write_all(head.as_bytes())?;
    Ok(s)
}

/// Reads an answer to its end.
pub fn read_answer(s: &mut TcpStream) -> Result<Answer> {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no answer head in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A one-image OCI archive and the digests in it.
pub struct Archive {
    pub bytes: Vec<u8>,
    pub layer: String,
    pub config: String,
    pub manifest: String,
}

/// An OCI layout archive of one image with one gzip layer of `layer_bytes` pseudo-random
/// bytes (distinct per `seed`). `name` (e.g. `team-a/app:v1`) becomes the image's
/// `io.containerd.image.name`, so `/push` knows where it goes.
pub fn oci_archive(seed: u64, layer_bytes: usize, name: Option<&str>) -> Archive {
    let mut files = Vec::new();
    let mut content = Vec::with_capacity(layer_bytes);
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    while content.len() < layer_bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        content.extend_from_slice(&x.to_le_bytes());
    }
    content.truncate(layer_bytes);
    let layer_tar = tar_of(&[(&format!("data-{seed}.bin"), &content)]);
    let diff_id = sha256(&layer_tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer_tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"seed": seed.to_string()}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let mut annotations = serde_json::Map::new();
    if let Some(n) = name {
        annotations.insert("io.containerd.image.name".into(), n.into());
        let tag = n.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        annotations.insert("org.opencontainers.image.ref.name".into(), tag.into());
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha256(&manifest), "size": manifest.len(), "annotations": annotations}],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha256(b)[7..]);
    files.push((blob(&layer), layer.clone()));
    files.push((blob(&config), config.clone()));
    files.push((blob(&manifest), manifest.clone()));
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    files.push(("index.json".into(), index));
    let refs: Vec<(&str, &Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b)).collect();
    Archive {
        bytes: tar_of(&refs),
        layer: sha256(&layer),
        config: sha256(&config),
        manifest: sha256(&manifest),
    }
}

fn tar_of<B: AsRef<[u8]>>(files: &[(&str, B)]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let bytes = bytes.as_ref();
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        t.append_data(&mut h, name, bytes).unwrap();
    }
    t.into_inner().unwrap()
}

/// A scratch file path in `dir`.
pub fn path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
