//! Shared harness for the end-to-end tests: a real registry (Debian's `docker-registry`,
//! CNCF distribution 2.8) and a real `hoist serve` process, both on loopback ports, plus
//! small clients to read back what was pushed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// A `docker-registry` process on a loopback port, storing into a temp dir; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Serving https (the extra YAML configured `tls:` under `http:`).
    pub tls: bool,
}

impl Registry {
    /// Starts a fresh registry. Extra YAML (e.g. an `auth:` section) is appended to the config.
    pub fn start_with(extra_yaml: &str) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: hoist-test-secret\n{extra_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let tls = extra_yaml.contains("tls:");
        let registry = Registry {
            child,
            port,
            dir,
            tls,
        };
        wait_for_http(&format!("{}/v2/", registry.url()), &[200, 401])?;
        Ok(registry)
    }

    pub fn start() -> Result<Registry> {
        Registry::start_with("")
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as skopeo and docker want it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Tags of a repository as the registry lists them (empty when the repository is unknown).
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let url = format!("{}/v2/{repository}/tags/list", self.url());
        match get_json(&url) {
            Ok(v) => v["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// The raw manifest bytes and content type for `repository:reference`.
    pub fn manifest(&self, repository: &str, reference: &str) -> Result<(Vec<u8>, String)> {
        let out = Command::new("curl")
            .args(["-skf", "-D", "-", "-H"])
            .arg(ACCEPT_ALL)
            .arg(format!(
                "{}/v2/{repository}/manifests/{reference}",
                self.url()
            ))
            .output()?;
        if !out.status.success() {
            bail!("manifest {repository}:{reference} not found");
        }
        let text = out.stdout;
        let split = text
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no header end")?;
        let headers = String::from_utf8_lossy(&text[..split]).to_string();
        let content_type = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-type")
                    .then(|| v.trim().to_string())
            })
            .unwrap_or_default();
        Ok((text[split + 4..].to_vec(), content_type))
    }

    /// Whether the registry has `digest` in `repository`.
    pub fn has_blob(&self, repository: &str, digest: &str) -> bool {
        Command::new("curl")
            .args(["-skf", "-I"])
            .arg(format!("{}/v2/{repository}/blobs/{digest}", self.url()))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// The bytes of a blob.
    pub fn blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>> {
        let out = Command::new("curl")
            .args(["-skfL"])
            .arg(format!("{}/v2/{repository}/blobs/{digest}", self.url()))
            .output()?;
        if !out.status.success() {
            bail!("blob {digest} not in {repository}");
        }
        Ok(out.stdout)
    }

    /// Repositories the registry knows.
    pub fn catalog(&self) -> Vec<String> {
        get_json(&format!("{}/v2/_catalog", self.url()))
            .ok()
            .and_then(|v| v["repositories"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.as_str().map(String::from))
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const ACCEPT_ALL: &str = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A `hoist serve` process; killed on drop.
pub struct Hoist {
    child: Child,
    pub url: String,
}

impl Hoist {
    /// Starts hoist against `registry_url` with extra CLI args / env (e.g. a config file).
    pub fn start_with(registry_url: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Hoist> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            registry_url,
        ])
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "hoist=info".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning hoist")?;
        let stdout = child.stdout.take().context("hoist stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("hoist listening on ")
            .with_context(|| format!("unexpected first line from hoist: {line:?}"))?
            .to_string();
        Ok(Hoist { child, url })
    }

    pub fn start(registry: &Registry) -> Result<Hoist> {
        Hoist::start_with(&registry.url(), &[], &[])
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What hoist answered: status and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of a failure answer ("" on success).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// `curl -T file URL` against hoist; `path_and_query` starts with `/push`.
pub fn push_raw(hoist: &Hoist, path_and_query: &str, file: &Path) -> Result<Answer> {
    curl_json(&[
        "-T".into(),
        file.display().to_string(),
        format!("{}{path_and_query}", hoist.url),
    ])
}

/// Raw body from memory.
pub fn push_bytes(hoist: &Hoist, path_and_query: &str, body: &[u8]) -> Result<Answer> {
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), body)?;
    push_raw(hoist, path_and_query, tmp.path())
}

/// `curl -F file=@file URL` (multipart) against hoist; extra form fields go before the file.
pub fn push_multipart(
    hoist: &Hoist,
    path_and_query: &str,
    file: &Path,
    fields: &[(&str, &str)],
) -> Result<Answer> {
    let mut args = Vec::new();
    for (k, v) in fields {
        args.push("-F".to_string());
        args.push(format!("{k}={v}"));
    }
    args.push("-F".into());
    args.push(format!("file=@{}", file.display()));
    args.push(format!("{}{path_and_query}", hoist.url));
    curl_json(&args)
}

fn curl_json(args: &[String]) -> Result<Answer> {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "600"])
        .args(args)
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').context("curl printed no status")?;
    let status: u16 = status.trim().parse().context("curl status")?;
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    Ok(Answer { status, body })
}

/// GET a URL and parse JSON.
pub fn get_json(url: &str) -> Result<Value> {
    let out = Command::new("curl").args(["-skf", url]).output()?;
    if !out.status.success() {
        bail!("GET {url} failed");
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `skopeo inspect [--raw|--config] docker://host/repo:tag` as JSON.
pub fn skopeo_inspect(registry: &Registry, reference: &str, extra: &[&str]) -> Result<Value> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{}/{reference}", registry.host()))
        .output()?;
    if !out.status.success() {
        bail!(
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Runs a command, failing with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// sha256 of bytes as `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A free loopback port (bind :0, read it, release it).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_for_http(url: &str, ok: &[u16]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(out) = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output()
        {
            let code: u16 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            if ok.contains(&code) {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{url} did not come up")
}

/// Whether a tool is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether a Docker engine answers (not just the client).
pub fn docker_engine() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A scratch directory for fixtures.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Path helper.
pub fn p(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}
