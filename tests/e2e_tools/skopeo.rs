//! The pushed image read back by a real client: `skopeo inspect` (manifest, raw, config) and
//! a full pull into an OCI layout.
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::expect::Expect;
use crate::fixture::{Fixture, oci_blob, read_json, strings};
use crate::support::{Registry, run, scratch, skopeo_inspect};

/// Real clients: skopeo inspect (manifest, raw, config) and a full pull.
pub(crate) fn check_with_skopeo(
    registry: &Registry,
    fx: &Fixture,
    expect: &Expect,
    digest: &str,
    manifest: &Value,
    docker: bool,
) -> Result<()> {
    let reference = format!("{}:{}", expect.repository, expect.tags[0]);
    let inspect = skopeo_inspect(registry, &reference, &[])?;
    ensure!(
        inspect["Digest"] == digest,
        "skopeo sees digest {}",
        inspect["Digest"]
    );
    ensure!(
        inspect["Layers"].as_array().map(Vec::len) == Some(fx.diff_ids.len()),
        "skopeo sees layers {}",
        inspect["Layers"]
    );
    let raw = skopeo_inspect(registry, &reference, &["--raw"])?;
    ensure!(
        raw == *manifest,
        "skopeo --raw differs from the registry manifest"
    );
    let skopeo_config = skopeo_inspect(registry, &reference, &["--config"])?;
    ensure!(
        strings(&skopeo_config["rootfs"]["diff_ids"]) == fx.diff_ids,
        "skopeo --config diff_ids {}",
        skopeo_config["rootfs"]["diff_ids"]
    );
    ensure!(
        skopeo_config["config"]["Cmd"][2] == "cat /etc/hello.txt",
        "config Cmd lost: {}",
        skopeo_config["config"]
    );
    pull(registry, &reference, fx, !docker)
}

/// `skopeo copy docker://registry/reference oci:OUT:t`, then checks what was pulled. skopeo
/// rewrites a docker config into an OCI one when it converts, so the config digest is only
/// compared for an OCI source; the layers' diffIDs always are.
fn pull(registry: &Registry, reference: &str, fx: &Fixture, oci_source: bool) -> Result<()> {
    let out = scratch();
    let layout = out.path().join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{}/{reference}", registry.host()))
        .arg(format!("oci:{}:t", layout.display())))
    .context("skopeo copy (pull) of the pushed image")?;
    let index = read_json(&layout.join("index.json"))?;
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .context("pulled index")?;
    let manifest = read_json(&oci_blob(&layout, manifest_digest))?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .context("pulled config")?;
    if oci_source {
        ensure!(
            config_digest == fx.config_digest,
            "pulled image has config {config_digest}, not {}",
            fx.config_digest
        );
    }
    let config = read_json(&oci_blob(&layout, config_digest))?;
    ensure!(
        strings(&config["rootfs"]["diff_ids"]) == fx.diff_ids,
        "pulled image has diff_ids {}",
        config["rootfs"]["diff_ids"]
    );
    Ok(())
}
