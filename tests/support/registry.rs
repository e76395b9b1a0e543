//! A real registry (Debian's `docker-registry`, CNCF distribution 2.8) on a loopback port,
//! storing into a temp dir, and the read-backs the tests check it with: tags, manifests,
//! blobs, the catalog, its access log, and the upload sessions left in its storage. It may
//! sit behind htpasswd Basic auth, and be stopped while a test goes on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{free_port, get_json};

/// `Accept` for every manifest and index media type.
pub const ACCEPT_ALL: &str = "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A `docker-registry` process; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// Serving https (the extra YAML configured `tls:` under `http:`).
    pub tls: bool,
}

impl Registry {
    /// Starts a fresh registry. Extra YAML (an `auth:` section, or `  tls:` under `http:`) is
    /// appended to the config.
    pub fn start_with(extra_yaml: &str) -> Result<Registry> {
        Registry::start_in(tempfile::tempdir()?, extra_yaml)
    }

    /// Behind htpasswd Basic auth, one line a `(user, password)`; the file sits in the
    /// registry's own temp dir.
    pub fn start_htpasswd(users: &[(&str, &str)]) -> Result<Registry> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("htpasswd");
        let mut lines = String::new();
        for (user, password) in users {
            // distribution's htpasswd is bcrypt only; cost 4 keeps the test fast.
            let hash =
                bcrypt::hash_with_result(password, 4)?.format_for_version(bcrypt::Version::TwoY);
            lines.push_str(&format!("{user}:{hash}\n"));
        }
        std::fs::write(&file, lines)?;
        let yaml = format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            file.display()
        );
        Registry::start_in(dir, &yaml)
    }

    fn start_in(dir: tempfile::TempDir, extra_yaml: &str) -> Result<Registry> {
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

    /// Kills the registry (hoist then finds it down); the drop does it too.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `host:port`, as skopeo and docker want it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Tags of a repository as the registry lists them (empty when the repository is unknown).
    pub fn tags(&self, repository: &str) -> Vec<String> {
        self.tags_as(repository, "")
    }

    /// [`Registry::tags`] read with an `Authorization` value ("" for none): behind htpasswd.
    pub fn tags_as(&self, repository: &str, authorization: &str) -> Vec<String> {
        let url = format!("{}/v2/{repository}/tags/list", self.url());
        let out = self.curl(authorization).arg(url).output();
        match out {
            Ok(o) if o.status.success() => serde_json::from_slice::<serde_json::Value>(&o.stdout)
                .ok()
                .and_then(|v| v["tags"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `curl -skf`, with an `Authorization` header unless `authorization` is "".
    fn curl(&self, authorization: &str) -> Command {
        let mut cmd = Command::new("curl");
        cmd.arg("-skf");
        if !authorization.is_empty() {
            cmd.arg("-H").arg(format!("Authorization: {authorization}"));
        }
        cmd
    }

    /// Every `repository:tag` the registry holds, sorted.
    pub fn all_tags(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .catalog()
            .iter()
            .flat_map(|r| self.tags(r).into_iter().map(move |t| format!("{r}:{t}")))
            .collect();
        out.sort();
        out
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
        self.has_blob_as(repository, digest, "")
    }

    /// [`Registry::has_blob`] asked with an `Authorization` value ("" for none).
    pub fn has_blob_as(&self, repository: &str, digest: &str, authorization: &str) -> bool {
        self.curl(authorization)
            .arg("-I")
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
        get_json(&format!("{}/v2/_catalog?n=10000", self.url()))
            .ok()
            .and_then(|v| v["repositories"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.as_str().map(String::from))
            .collect()
    }

    /// The registry's access log: `(method, target, status)` of every request it logged.
    pub fn access_log(&self) -> Vec<(String, String, u16)> {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        // `... "METHOD /v2/... HTTP/1.1" STATUS ...`
        log.lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once('"')?;
                let (req, after) = rest.split_once('"')?;
                let mut parts = req.split(' ');
                let method = parts.next()?.to_string();
                let target = parts.next()?.to_string();
                let status = after.split_whitespace().next()?.parse().ok()?;
                Some((method, target, status))
            })
            .collect()
    }

    /// The requests of the access log that could write: everything but GET and HEAD.
    pub fn writes(&self) -> Vec<(String, String, u16)> {
        let mut log = self.access_log();
        log.retain(|(method, _, _)| !matches!(method.as_str(), "GET" | "HEAD"));
        log
    }

    /// For each upload session of `repo` that got a PATCH (by uuid, in order), the status of
    /// the last DELETE sent on it (None: never cancelled).
    pub fn cancels(&self, repo: &str) -> Vec<(String, Option<u16>)> {
        let prefix = format!("/v2/{repo}/blobs/uploads/");
        let requests: Vec<(String, String, u16)> = self
            .access_log()
            .into_iter()
            .filter_map(|(m, target, status)| {
                let uuid = target.strip_prefix(&prefix)?.split('?').next()?.to_string();
                (!uuid.is_empty()).then_some((m, uuid, status))
            })
            .collect();
        let mut out: Vec<(String, Option<u16>)> = Vec::new();
        for (m, uuid, _) in &requests {
            if m == "PATCH" && !out.iter().any(|(u, _)| u == uuid) {
                let deleted = requests
                    .iter()
                    .filter(|(m2, u2, _)| m2 == "DELETE" && u2 == uuid)
                    .map(|r| r.2)
                    .next_back();
                out.push((uuid.clone(), deleted));
            }
        }
        out
    }

    /// [`Registry::cancels`], once every session has its DELETE logged or `within` passed
    /// (the registry writes an access log line just after answering).
    pub fn cancels_within(&self, repo: &str, within: Duration) -> Vec<(String, Option<u16>)> {
        let deadline = Instant::now() + within;
        loop {
            let sessions = self.cancels(repo);
            if sessions.iter().all(|(_, d)| d.is_some()) || Instant::now() > deadline {
                return sessions;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where distribution keeps repositories (`<root>/docker/registry/v2/repositories`).
    pub fn repositories_dir(&self) -> PathBuf {
        self.dir.path().join("data/docker/registry/v2/repositories")
    }

    /// Upload sessions still open in the registry's storage. distribution keeps each
    /// session's `data` and `startedat` under `<repo>/_uploads/<id>/` until it is committed
    /// or cancelled (a cancelled one keeps at most `hashstates/`).
    ///
    /// Panics when the storage cannot be read: an unreadable directory must never pass for
    /// "no open sessions". Before the registry has stored anything the storage root does not
    /// exist yet, which is the one case that answers "none" without reading.
    pub fn open_uploads(&self) -> Vec<String> {
        let data = self.dir.path().join("data");
        let root = self.repositories_dir();
        match std::fs::metadata(&data) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("registry storage {} unreadable: {e}", data.display()),
            Ok(_) => {}
        }
        if !root.exists() {
            // The registry wrote something but not where sessions live: the path is wrong.
            let seen = walk_names(&data);
            assert!(
                seen.is_empty() || !seen.iter().any(|p| p.contains("_uploads")),
                "upload sessions exist outside {}: {seen:?}",
                root.display()
            );
            return Vec::new();
        }
        let mut open = Vec::new();
        collect_open_uploads(&root, &mut open);
        open
    }

    /// How many open upload sessions hold data (`_uploads/<id>/data`): bytes of a blob have
    /// reached the registry and no commit or cancel has taken them away yet.
    pub fn uploads_with_data(&self) -> usize {
        let open = self.open_uploads();
        open.iter()
            .filter(|session| Path::new(session).join("data").is_file())
            .count()
    }

    /// Waits up to `within` for every upload session to be closed; panics naming the ones
    /// still open.
    pub fn assert_no_open_uploads(&self, case: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let open = self.open_uploads();
            if open.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: upload sessions left open: {open:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_dir_or_panic(dir: &Path) -> Vec<std::fs::DirEntry> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("registry storage {} unreadable: {e}", dir.display()));
    entries
        .map(|e| e.unwrap_or_else(|e| panic!("registry storage {}: {e}", dir.display())))
        .collect()
}

fn collect_open_uploads(dir: &Path, open: &mut Vec<String>) {
    for entry in read_dir_or_panic(dir) {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if entry.file_name() == "_uploads" {
            for session in read_dir_or_panic(&path) {
                let dir = session.path();
                if dir.join("data").exists() || dir.join("startedat").exists() {
                    open.push(dir.display().to_string());
                }
            }
        } else if entry.file_name() != "_layers" && entry.file_name() != "_manifests" {
            collect_open_uploads(&path, open);
        }
    }
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in read_dir_or_panic(dir) {
        let path = entry.path();
        out.push(path.display().to_string());
        if path.is_dir() {
            out.extend(walk_names(&path));
        }
    }
    out
}

/// Polls `url` until it answers one of `ok` (20 s at most).
pub fn wait_for_http(url: &str, ok: &[u16]) -> Result<()> {
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
