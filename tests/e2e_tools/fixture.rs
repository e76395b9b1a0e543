//! The shared fixture: the image umoci wrote and the archive files made of it, built once per
//! [`FIXTURE_VERSION`] under `CARGO_TARGET_TMPDIR` for every test process, and the helpers that
//! read an OCI layout on disk.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::recipe::build_fixture;
use crate::support::require_tools;

/// Tools the fixture and the tests drive; a test fails when one is missing.
const TOOLS: &[&str] = &[
    "docker-registry",
    "skopeo",
    "umoci",
    "curl",
    "gzip",
    "zstd",
    "xz",
    "bzip2",
];

/// Bump when the fixture recipe changes, so a stale shared fixture is not reused.
const FIXTURE_VERSION: u32 = 1;

// Archive files in the fixture directory.
/// `skopeo copy oci:layout:v1 oci-archive:oci.tar:v1` (gzip layers from umoci, ref name `v1`).
pub(crate) const OCI: &str = "oci.tar";
pub(crate) const OCI_GZ: &str = "oci.tar.gz";
/// The same image with ref name `docker.io/fixture/app:v2`.
pub(crate) const OCI_NAMED: &str = "oci-named.tar";
/// `skopeo copy oci:layout:v1 docker-archive:docker.tar:fixture/app:v1` (uncompressed
/// `<diffid>.tar` layers, `<id>/layer.tar` symlinks, `manifest.json` near the end).
pub(crate) const DOCKER: &str = "docker.tar";
pub(crate) const DOCKER_GZ: &str = "docker.tar.gz";
/// Two gzip members, concatenated.
pub(crate) const DOCKER_GZ_MULTI: &str = "docker.multi.tar.gz";
pub(crate) const DOCKER_ZST: &str = "docker.tar.zst";
pub(crate) const DOCKER_XZ: &str = "docker.tar.xz";
pub(crate) const DOCKER_BZ2: &str = "docker.tar.bz2";

/// The image every archive holds, as umoci wrote it.
pub(crate) struct Fixture {
    dir: PathBuf,
    /// Digest of the OCI manifest inside the oci-archive (its layers are already gzip).
    pub(crate) manifest_digest: String,
    /// The config digest: the image ID, which must survive every push.
    pub(crate) config_digest: String,
    /// The gzip layer digests of the OCI manifest.
    pub(crate) oci_layers: Vec<String>,
    /// `rootfs.diff_ids` of the config.
    pub(crate) diff_ids: Vec<String>,
}

impl Fixture {
    /// The file `name` of the fixture directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The shared fixture. A missing tool fails the test (naming the package to install): a
/// test that passes because it did not run hides what it checks.
pub(crate) fn fixture() -> &'static Fixture {
    require_tools(TOOLS);
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| load_fixture().expect("building the umoci/skopeo fixture"))
}

fn load_fixture() -> Result<Fixture> {
    let dir = shared_fixture_dir()?;
    let layout = dir.join("layout");
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("layout index has no manifest")?
        .to_string();
    let manifest = read_json(&oci_blob(&layout, &manifest_digest))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("config")?
        .to_string();
    let oci_layers = manifest["layers"]
        .as_array()
        .context("layers")?
        .iter()
        .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    let config = read_json(&oci_blob(&layout, &config_digest))?;
    let diff_ids = strings(&config["rootfs"]["diff_ids"]);
    ensure!(
        diff_ids.len() == 3,
        "fixture should have 3 layers: {diff_ids:?}"
    );
    Ok(Fixture {
        dir,
        manifest_digest,
        config_digest,
        oci_layers,
        diff_ids,
    })
}

/// Builds the fixture once into a private directory and renames it into place, so that
/// parallel test processes never see a half-built one.
fn shared_fixture_dir() -> Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join(format!("e2e_tools-fixture-v{FIXTURE_VERSION}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let tmp = root.join(format!(
        "e2e_tools-fixture-tmp-{}-{nanos}",
        std::process::id()
    ));
    build_fixture(&tmp).with_context(|| format!("building the fixture in {}", tmp.display()))?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process won the race; use its fixture.
        let _ = std::fs::remove_dir_all(&tmp);
        ensure!(
            dir.is_dir(),
            "could not move the fixture to {}",
            dir.display()
        );
    }
    Ok(dir)
}

/// The file of blob `digest` in the OCI layout at `layout`.
pub(crate) fn oci_blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs").join(digest.replace(':', "/"))
}

/// A JSON file, parsed.
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

/// The strings of a JSON array (none when it is not one).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
