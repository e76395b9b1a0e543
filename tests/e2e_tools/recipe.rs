//! The fixture recipe: content directories, an umoci image of them, skopeo's archives of that
//! image, and those archives compressed as a whole (gzip, zstd, xz, bzip2, two-member gzip).
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};

use crate::fixture::{
    DOCKER, DOCKER_BZ2, DOCKER_GZ, DOCKER_GZ_MULTI, DOCKER_XZ, DOCKER_ZST, OCI, OCI_GZ, OCI_NAMED,
};
use crate::support::run;

/// The fixture recipe: three directories of content, an umoci image of them, skopeo's
/// archives of that image, and the archives compressed as a whole.
pub(crate) fn build_fixture(dir: &Path) -> Result<()> {
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
