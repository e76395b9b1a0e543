//! End-to-end tests with archives written by real tools: umoci builds a small three-layer OCI
//! image, skopeo writes it as `oci-archive:` and `docker-archive:`, and gzip, zstd, xz and
//! bzip2 compress the archives as a whole. Each test pushes one archive through a real
//! `hoist serve` into a fresh real registry, then reads the result back with the registry API
//! and with skopeo: image ID (config digest) unchanged, every layer's diffID equal to the
//! config's `rootfs.diff_ids`, media types, tags, the JSON report, and a full pull.
//!
//! The fixture is built once and shared by every test process (nextest runs each test in its
//! own process) under `CARGO_TARGET_TMPDIR/e2e_tools-fixture-v*`; bump `FIXTURE_VERSION` when
//! the recipe changes, or delete that directory to rebuild it.

mod support;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use support::*;

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

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

// Archive files in the fixture directory.
/// `skopeo copy oci:layout:v1 oci-archive:oci.tar:v1` (gzip layers from umoci, ref name `v1`).
const OCI: &str = "oci.tar";
const OCI_GZ: &str = "oci.tar.gz";
/// The same image with ref name `docker.io/fixture/app:v2`.
const OCI_NAMED: &str = "oci-named.tar";
/// `skopeo copy oci:layout:v1 docker-archive:docker.tar:fixture/app:v1` (uncompressed
/// `<diffid>.tar` layers, `<id>/layer.tar` symlinks, `manifest.json` near the end).
const DOCKER: &str = "docker.tar";
const DOCKER_GZ: &str = "docker.tar.gz";
/// Two gzip members, concatenated.
const DOCKER_GZ_MULTI: &str = "docker.multi.tar.gz";
const DOCKER_ZST: &str = "docker.tar.zst";
const DOCKER_XZ: &str = "docker.tar.xz";
const DOCKER_BZ2: &str = "docker.tar.bz2";

/// The image every archive holds, as umoci wrote it.
struct Fixture {
    dir: PathBuf,
    /// Digest of the OCI manifest inside the oci-archive (its layers are already gzip).
    manifest_digest: String,
    /// The config digest: the image ID, which must survive every push.
    config_digest: String,
    /// The gzip layer digests of the OCI manifest.
    oci_layers: Vec<String>,
    /// `rootfs.diff_ids` of the config.
    diff_ids: Vec<String>,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The shared fixture. A missing tool fails the test (naming the package to install): a
/// test that passes because it did not run hides what it checks.
fn fixture() -> &'static Fixture {
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

/// The fixture recipe: three directories of content, an umoci image of them, skopeo's
/// archives of that image, and the archives compressed as a whole.
fn build_fixture(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let content = dir.join("content");
    write_content(&content)?;
    let image = build_umoci_image(&content, &dir.join("layout"))?;
    write_archives(&format!("oci:{image}"), dir)?;
    compress_archives(dir)
}

/// `etc/hello.txt`, 512 KiB of seeded random bytes in `app/random.bin`, 60,000 numbered lines
/// in `data/lines.txt`.
fn write_content(content: &Path) -> Result<()> {
    std::fs::create_dir_all(content.join("etc"))?;
    std::fs::create_dir_all(content.join("app"))?;
    std::fs::create_dir_all(content.join("data"))?;
    std::fs::write(content.join("etc/hello.txt"), "hello from hoist\n")?;
    let mut random = vec![0u8; 512 * 1024];
    fastrand::Rng::with_seed(0x4015).fill(&mut random);
    std::fs::write(content.join("app/random.bin"), random)?;
    let lines: String = (1..=60_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(content.join("data/lines.txt"), lines)?;
    Ok(())
}

/// An OCI layout at `layout` holding image `v1`: one layer per content directory (`/etc`,
/// `/app`, `/data`) and a command that prints `/etc/hello.txt`. Returns the image reference.
fn build_umoci_image(content: &Path, layout: &Path) -> Result<String> {
    let image = format!("{}:v1", layout.display());
    let rootless = run(Command::new("id").arg("-u"))?.trim() != "0";
    run(Command::new("umoci").args(["init", "--layout"]).arg(layout))?;
    run(Command::new("umoci").args(["new", "--image", &image]))?;
    for (from, to) in [("etc", "/etc"), ("app", "/app"), ("data", "/data")] {
        let mut cmd = Command::new("umoci");
        cmd.arg("insert");
        if rootless {
            cmd.arg("--rootless");
        }
        cmd.args(["--image", &image])
            .arg(content.join(from))
            .arg(to);
        run(&mut cmd)?;
    }
    run(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "cat /etc/hello.txt",
        "--config.workingdir",
        "/app",
    ]))?;
    Ok(image)
}

/// skopeo copies of `oci_src` into `dir`: [`OCI`], [`OCI_NAMED`] and [`DOCKER`].
fn write_archives(oci_src: &str, dir: &Path) -> Result<()> {
    let out = |name: &str| dir.join(name).display().to_string();
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        oci_src,
        &format!("oci-archive:{}:v1", out(OCI)),
    ]))?;
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        oci_src,
        &format!("oci-archive:{}:docker.io/fixture/app:v2", out(OCI_NAMED)),
    ]))?;
    run(Command::new("skopeo").args([
        "copy",
        "-q",
        oci_src,
        &format!("docker-archive:{}:fixture/app:v1", out(DOCKER)),
    ]))?;
    Ok(())
}

/// The archives compressed as a whole: gzip of both, zstd, xz, bzip2 and two-member gzip of
/// the docker-archive.
fn compress_archives(dir: &Path) -> Result<()> {
    compress(&["gzip", "-c", "-n"], &dir.join(OCI), &dir.join(OCI_GZ))?;
    compress(
        &["gzip", "-c", "-n"],
        &dir.join(DOCKER),
        &dir.join(DOCKER_GZ),
    )?;
    compress(
        &["zstd", "-q", "-c"],
        &dir.join(DOCKER),
        &dir.join(DOCKER_ZST),
    )?;
    compress(&["xz", "-c"], &dir.join(DOCKER), &dir.join(DOCKER_XZ))?;
    compress(&["bzip2", "-c"], &dir.join(DOCKER), &dir.join(DOCKER_BZ2))?;
    multi_member_gzip(&dir.join(DOCKER), &dir.join(DOCKER_GZ_MULTI), dir)
}

/// `tool args < input > output`.
fn compress(tool: &[&str], input: &Path, output: &Path) -> Result<()> {
    let status = Command::new(tool[0])
        .args(&tool[1..])
        .stdin(File::open(input)?)
        .stdout(File::create(output)?)
        .status()
        .with_context(|| format!("running {}", tool[0]))?;
    ensure!(status.success(), "{tool:?} failed on {}", input.display());
    Ok(())
}

/// gzip of the first part of `input` followed by gzip of the rest: a two-member gzip file
/// (what pigz -i, bgzip or `cat a.gz b.gz` produce). Checked to really be two members.
fn multi_member_gzip(input: &Path, output: &Path, dir: &Path) -> Result<()> {
    let bytes = std::fs::read(input)?;
    // Split inside a layer, not on a tar block boundary.
    let split = bytes.len() / 2 + 77;
    let (a, b) = (dir.join("part-a"), dir.join("part-b"));
    std::fs::write(&a, &bytes[..split])?;
    std::fs::write(&b, &bytes[split..])?;
    let (a_gz, b_gz) = (dir.join("part-a.gz"), dir.join("part-b.gz"));
    compress(&["gzip", "-c", "-n"], &a, &a_gz)?;
    compress(&["gzip", "-c", "-n"], &b, &b_gz)?;
    let mut joined = std::fs::read(&a_gz)?;
    let first_member_len = joined.len();
    joined.extend(std::fs::read(&b_gz)?);
    std::fs::write(output, &joined)?;
    for f in [a, b, a_gz, b_gz] {
        std::fs::remove_file(f)?;
    }

    // A single-member decoder stops after the first member; a multi-member one reads all.
    let mut first = Vec::new();
    flate2::read::GzDecoder::new(&joined[..]).read_to_end(&mut first)?;
    ensure!(
        first.len() == split,
        "first gzip member should hold {split} bytes"
    );
    ensure!(
        joined[first_member_len..].starts_with(&[0x1f, 0x8b]),
        "no second gzip member"
    );
    let mut all = Vec::new();
    flate2::read::MultiGzDecoder::new(&joined[..]).read_to_end(&mut all)?;
    ensure!(all == bytes, "multi-member gzip does not round-trip");
    Ok(())
}

fn oci_blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs").join(digest.replace(':', "/"))
}

fn read_json(path: &Path) -> Result<Value> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh registry and a hoist in front of it. Hoist is declared first so it stops first.
struct Env {
    hoist: Hoist,
    registry: Registry,
}

fn env() -> Result<Env> {
    let registry = Registry::start()?;
    let hoist = Hoist::start(&registry)?;
    Ok(Env { hoist, registry })
}

/// How the pushed layers must be compressed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Layers {
    /// gzip: `tar+gzip` (OCI) or `rootfs.diff.tar.gzip` (docker).
    Gzip,
    /// zstd: `tar+zstd` (OCI only).
    Zstd,
    /// uncompressed: `application/vnd.oci.image.layer.v1.tar`.
    Tar,
}

/// What a successful push must have produced.
struct Expect<'a> {
    repository: &'a str,
    tags: &'a [&'a str],
    layers: Layers,
    /// The oci-archive's manifest was pushed as it is (its digest unchanged), or hoist
    /// rewrote it (uncompressed docker layers compressed or re-typed).
    byte_exact: bool,
    /// Blob outcomes must all be `exists` (a repeat push), or all `uploaded`/`mounted`.
    all_exist: bool,
    /// For a raw body: its size, which must be `bytes_received`.
    body_size: Option<u64>,
}

/// Checks the JSON report, the registry's content and a skopeo pull; returns the report's
/// image entry.
fn verify(registry: &Registry, fx: &Fixture, answer: &Answer, expect: &Expect) -> Result<Value> {
    let (image, digest, want_tags) = check_report(fx, answer, expect)?;
    let (manifest, content_type) =
        check_manifest(registry, fx, expect, &image, &digest, &want_tags)?;
    let docker = content_type == DOCKER_MANIFEST;
    check_layers(registry, fx, expect, &manifest, &content_type)?;
    check_report_blobs(fx, expect, &image, &manifest)?;
    check_with_skopeo(registry, fx, expect, &digest, &manifest, docker)?;
    Ok(image)
}

/// The report's image: repository, tags, sizes, digest. Returns it, its digest and the tags.
fn check_report(
    fx: &Fixture,
    answer: &Answer,
    expect: &Expect,
) -> Result<(Value, String, BTreeSet<String>)> {
    ensure!(
        answer.status == 201,
        "push answered {} {}",
        answer.status,
        answer.body
    );
    let report = &answer.body;
    let images = report["images"]
        .as_array()
        .context("report has no images[]")?;
    ensure!(
        images.len() == 1,
        "one image expected in the report: {report}"
    );
    let image = images[0].clone();
    ensure!(
        image["repository"] == expect.repository,
        "report repository {} != {}",
        image["repository"],
        expect.repository
    );
    let want_tags: BTreeSet<String> = expect.tags.iter().map(|t| t.to_string()).collect();
    let report_tags: BTreeSet<String> = strings(&image["tags"]).into_iter().collect();
    ensure!(
        report_tags == want_tags,
        "report tags {report_tags:?} != {want_tags:?}"
    );
    let digest = image["digest"]
        .as_str()
        .context("report digest")?
        .to_string();
    ensure!(
        report["bytes_received"].is_u64(),
        "bytes_received: {report}"
    );
    ensure!(report["bytes_sent"].is_u64(), "bytes_sent: {report}");
    ensure!(report["seconds"].is_number(), "seconds: {report}");
    if let Some(size) = expect.body_size {
        ensure!(
            report["bytes_received"] == size,
            "bytes_received {} != body size {size}",
            report["bytes_received"]
        );
    }
    ensure!(
        image["manifests"].as_array().is_some_and(|m| m.is_empty()),
        "a single image has no child manifests: {}",
        image["manifests"]
    );
    ensure!(
        image["manifest_rewritten"] == !expect.byte_exact,
        "manifest_rewritten is {}, expected {}",
        image["manifest_rewritten"],
        !expect.byte_exact
    );
    if expect.byte_exact {
        ensure!(
            digest == fx.manifest_digest,
            "manifest digest changed: {digest} != archive's {}",
            fx.manifest_digest
        );
    }

    Ok((image, digest, want_tags))
}

/// The registry: tags, manifest bytes and type, config. Returns the manifest and its type.
fn check_manifest(
    registry: &Registry,
    fx: &Fixture,
    expect: &Expect,
    image: &Value,
    digest: &str,
    want_tags: &BTreeSet<String>,
) -> Result<(Value, String)> {
    let mut registry_tags = registry.tags(expect.repository);
    registry_tags.sort();
    ensure!(
        registry_tags.iter().cloned().collect::<BTreeSet<_>>() == *want_tags,
        "registry tags {registry_tags:?} != {want_tags:?}"
    );
    let (manifest_bytes, content_type) = registry.manifest(expect.repository, digest)?;
    ensure!(
        sha256(&manifest_bytes) == digest,
        "registry manifest bytes do not hash to {digest}"
    );
    ensure!(
        image["media_type"] == content_type.as_str(),
        "report media_type {} != registry content type {content_type}",
        image["media_type"]
    );
    for tag in expect.tags {
        let (bytes, _) = registry.manifest(expect.repository, tag)?;
        ensure!(
            sha256(&bytes) == digest,
            "tag {tag} does not point at {digest}"
        );
    }
    let manifest: Value = serde_json::from_slice(&manifest_bytes)?;
    if let Some(mt) = manifest["mediaType"].as_str() {
        ensure!(
            mt == content_type,
            "manifest mediaType {mt} != content type {content_type}"
        );
    }
    let docker = content_type == DOCKER_MANIFEST;
    ensure!(
        docker || content_type == OCI_MANIFEST,
        "unexpected manifest type {content_type}"
    );
    ensure!(
        manifest["config"]["digest"] == fx.config_digest.as_str(),
        "config digest (image ID) changed: {} != {}",
        manifest["config"]["digest"],
        fx.config_digest
    );
    let config_type = manifest["config"]["mediaType"].as_str().unwrap_or_default();
    ensure!(
        config_type == if docker { DOCKER_CONFIG } else { OCI_CONFIG },
        "config media type {config_type} in a {content_type} manifest"
    );
    let config = registry.blob(expect.repository, &fx.config_digest)?;
    ensure!(
        sha256(&config) == fx.config_digest,
        "config blob bytes changed"
    );

    Ok((manifest, content_type))
}

/// Every layer in the registry: media type, digest, size, and its tar's diffID.
fn check_layers(
    registry: &Registry,
    fx: &Fixture,
    expect: &Expect,
    manifest: &Value,
    content_type: &str,
) -> Result<()> {
    let docker = content_type == DOCKER_MANIFEST;
    let layers = manifest["layers"].as_array().context("manifest layers")?;
    ensure!(
        layers.len() == fx.diff_ids.len(),
        "{} layers pushed, image has {}",
        layers.len(),
        fx.diff_ids.len()
    );
    for (i, layer) in layers.iter().enumerate() {
        let layer_digest = layer["digest"].as_str().context("layer digest")?;
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let want_type = match (expect.layers, docker) {
            (Layers::Gzip, true) => DOCKER_GZIP,
            (Layers::Gzip, false) => OCI_GZIP,
            (Layers::Zstd, false) => OCI_ZSTD,
            (Layers::Tar, false) => OCI_TAR,
            (kind, true) => bail!("{kind:?} layers need an OCI manifest, got {content_type}"),
        };
        ensure!(
            media_type == want_type,
            "layer {i} media type {media_type}, expected {want_type}"
        );
        if expect.byte_exact {
            ensure!(layer_digest == fx.oci_layers[i], "layer {i} digest changed");
        }
        let blob = registry.blob(expect.repository, layer_digest)?;
        ensure!(
            sha256(&blob) == layer_digest,
            "layer {i} bytes do not hash to {layer_digest}"
        );
        ensure!(
            layer["size"] == blob.len() as u64,
            "layer {i} size {} != {}",
            layer["size"],
            blob.len()
        );
        let tar = match expect.layers {
            Layers::Gzip => {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&blob[..])
                    .read_to_end(&mut out)
                    .with_context(|| format!("layer {i} is not gzip"))?;
                out
            }
            Layers::Zstd => zstd::stream::decode_all(&blob[..])
                .with_context(|| format!("layer {i} is not zstd"))?,
            Layers::Tar => blob,
        };
        ensure!(
            sha256(&tar) == fx.diff_ids[i],
            "layer {i} diffID {} != rootfs.diff_ids[{i}] {}",
            sha256(&tar),
            fx.diff_ids[i]
        );
    }

    Ok(())
}

/// The report's blobs: the config and the layers, with their sizes and outcomes.
fn check_report_blobs(
    fx: &Fixture,
    expect: &Expect,
    image: &Value,
    manifest: &Value,
) -> Result<()> {
    let layers = manifest["layers"].as_array().context("manifest layers")?;
    let mut want_blobs: BTreeSet<String> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    want_blobs.insert(fx.config_digest.clone());
    let blobs = image["blobs"].as_array().context("report blobs")?;
    let report_blobs: BTreeSet<String> = blobs
        .iter()
        .map(|b| b["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    ensure!(
        report_blobs == want_blobs,
        "report blobs {report_blobs:?} != manifest's {want_blobs:?}"
    );
    for blob in blobs {
        let outcome = blob["outcome"].as_str().unwrap_or_default();
        let ok = if expect.all_exist {
            outcome == "exists"
        } else {
            outcome == "uploaded" || outcome == "mounted"
        };
        ensure!(
            ok,
            "blob {} outcome {outcome:?} (all_exist: {})",
            blob["digest"],
            expect.all_exist
        );
        let descriptor = layers
            .iter()
            .chain(std::iter::once(&manifest["config"]))
            .find(|d| d["digest"] == blob["digest"])
            .context("blob not in manifest")?;
        ensure!(
            blob["size"] == descriptor["size"],
            "report size of {} is wrong",
            blob["digest"]
        );
        ensure!(
            blob["media_type"] == descriptor["mediaType"],
            "report media_type of {} is {}, manifest says {}",
            blob["digest"],
            blob["media_type"],
            descriptor["mediaType"]
        );
    }

    Ok(())
}

/// Real clients: skopeo inspect (manifest, raw, config) and a full pull.
fn check_with_skopeo(
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

fn file_size(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

/// Pushes `archive` raw to `path_and_query` on a fresh registry and verifies the result.
fn push_and_verify(
    fx: &Fixture,
    archive: &str,
    path_and_query: &str,
    expect: Expect,
) -> Result<Value> {
    let env = env()?;
    let file = fx.path(archive);
    let answer = push_file(&env.hoist, path_and_query, &file)?;
    let expect = Expect {
        body_size: Some(file_size(&file)?),
        ..expect
    };
    verify(&env.registry, fx, &answer, &expect)
}

/// A docker-archive whose uncompressed layers hoist gzips: a new manifest.
fn docker_gzip<'a>(repository: &'a str, tags: &'a [&'a str]) -> Expect<'a> {
    Expect {
        repository,
        tags,
        layers: Layers::Gzip,
        byte_exact: false,
        all_exist: false,
        body_size: None,
    }
}

/// An oci-archive whose gzip layers pass through: the archive's manifest, byte-exact.
fn oci_exact<'a>(repository: &'a str, tags: &'a [&'a str]) -> Expect<'a> {
    Expect {
        repository,
        tags,
        layers: Layers::Gzip,
        byte_exact: true,
        all_exist: false,
        body_size: None,
    }
}

#[test]
fn oci_archive_raw_is_pushed_byte_exact() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        OCI,
        "/push/team/app:1.0",
        oci_exact("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn oci_archive_gzip_is_pushed_byte_exact() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        OCI_GZ,
        "/push/team/app:1.0",
        oci_exact("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn oci_archive_second_push_reports_every_blob_exists() -> Result<()> {
    let fx = fixture();
    let env = env()?;
    let file = fx.path(OCI);
    let first = push_file(&env.hoist, "/push/team/app:1.0", &file)?;
    verify(&env.registry, fx, &first, &oci_exact("team/app", &["1.0"]))?;
    let second = push_file(&env.hoist, "/push/team/app:1.0", &file)?;
    let expect = Expect {
        all_exist: true,
        ..oci_exact("team/app", &["1.0"])
    };
    verify(&env.registry, fx, &second, &expect)?;
    Ok(())
}

#[test]
fn docker_archive_raw_layers_are_gzipped() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn docker_archive_gzip() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_GZ,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn docker_archive_gzip_multi_member() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_GZ_MULTI,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn docker_archive_zstd() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_ZST,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn docker_archive_xz() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_XZ,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn docker_archive_bzip2() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_BZ2,
        "/push/team/app:1.0",
        docker_gzip("team/app", &["1.0"]),
    )?;
    Ok(())
}

#[test]
fn multipart_upload_with_tag_field() -> Result<()> {
    let fx = fixture();
    let env = env()?;
    let answer = push_multipart(
        &env.hoist,
        "/push/team/app:1.0",
        &fx.path(DOCKER_GZ),
        &[("tag", "extra")],
    )?;
    verify(
        &env.registry,
        fx,
        &answer,
        &docker_gzip("team/app", &["1.0", "extra"]),
    )?;
    Ok(())
}

#[test]
fn query_tags_are_added() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        OCI,
        "/push/team/app:1.0?tag=extra&tag=more",
        oci_exact("team/app", &["1.0", "extra", "more"]),
    )?;
    Ok(())
}

#[test]
fn push_without_reference_uses_docker_repo_tags() -> Result<()> {
    let fx = fixture();
    // RepoTags is `docker.io/fixture/app:v1`; the registry host is dropped.
    push_and_verify(fx, DOCKER, "/push", docker_gzip("fixture/app", &["v1"]))?;
    Ok(())
}

#[test]
fn push_without_reference_uses_oci_ref_name() -> Result<()> {
    let fx = fixture();
    // ref.name is `docker.io/fixture/app:v2`; the registry host is dropped.
    push_and_verify(fx, OCI_NAMED, "/push", oci_exact("fixture/app", &["v2"]))?;
    Ok(())
}

#[test]
fn push_without_reference_plus_query_tag() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER_GZ,
        "/push?tag=extra",
        docker_gzip("fixture/app", &["v1", "extra"]),
    )?;
    Ok(())
}

/// skopeo's oci-archive ref name is only a tag (`v1`): with `/push` that image has no
/// repository (an extra `?tag=` does not give it one), so the push is refused with
/// `REFERENCE_MISSING` and nothing may be tagged.
#[test]
fn push_without_reference_rejects_oci_tag_only_name() -> Result<()> {
    let fx = fixture();
    let env = env()?;
    for path in ["/push", "/push?tag=extra"] {
        let answer = push_file(&env.hoist, path, &fx.path(OCI))?;
        ensure!(
            answer.status == 400 && answer.code() == "REFERENCE_MISSING",
            "{path}: expected 400 REFERENCE_MISSING, got {} {}",
            answer.status,
            answer.body
        );
        ensure!(
            answer.body["error"]["message"].is_string(),
            "{path}: error without message: {}",
            answer.body
        );
    }
    for repository in env.registry.catalog() {
        let tags = env.registry.tags(&repository);
        ensure!(
            tags.is_empty(),
            "failed push left {repository} tagged {tags:?}"
        );
    }
    Ok(())
}

#[test]
fn repository_without_tag_keeps_docker_archive_tag() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        DOCKER,
        "/push/team/app",
        docker_gzip("team/app", &["v1"]),
    )?;
    Ok(())
}

#[test]
fn repository_without_tag_keeps_oci_archive_tag() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        OCI,
        "/push/team/sub/app",
        oci_exact("team/sub/app", &["v1"]),
    )?;
    Ok(())
}

#[test]
fn layer_compression_keep_pushes_uncompressed_oci_layers() -> Result<()> {
    let fx = fixture();
    let expect = Expect {
        layers: Layers::Tar,
        ..docker_gzip("team/app", &["1.0"])
    };
    push_and_verify(
        fx,
        DOCKER,
        "/push/team/app:1.0?layer_compression=keep",
        expect,
    )?;
    Ok(())
}

#[test]
fn layer_compression_zstd() -> Result<()> {
    let fx = fixture();
    let expect = Expect {
        layers: Layers::Zstd,
        ..docker_gzip("team/app", &["1.0"])
    };
    push_and_verify(
        fx,
        DOCKER_XZ,
        "/push/team/app:1.0?layer_compression=zstd",
        expect,
    )?;
    Ok(())
}

/// `layer_compression` only applies to uncompressed layers: umoci's gzip layers pass through.
#[test]
fn layer_compression_zstd_leaves_gzip_layers_alone() -> Result<()> {
    let fx = fixture();
    push_and_verify(
        fx,
        OCI_GZ,
        "/push/team/app:1.0?layer_compression=zstd",
        oci_exact("team/app", &["1.0"]),
    )?;
    Ok(())
}

/// `hoist push FILE REPO:TAG --registry URL --tag T --json` runs the same pipeline without a
/// server and prints the server's report.
#[test]
fn cli_push_docker_archive() -> Result<()> {
    let fx = fixture();
    let registry = Registry::start()?;
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("push")
        .arg(fx.path(DOCKER_BZ2))
        .args([
            "team/cli:1.0",
            "--registry",
            &registry.url(),
            "--tag",
            "extra",
            "--json",
            "--no-cache",
        ])
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "hoist push failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("hoist push printed no JSON report: {stdout}"))?;
    let answer = Answer::new(201, body);
    let expect = Expect {
        body_size: Some(file_size(&fx.path(DOCKER_BZ2))?),
        ..docker_gzip("team/cli", &["1.0", "extra"])
    };
    verify(&registry, fx, &answer, &expect)?;
    Ok(())
}
