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
//!
//! [`fixture`] loads the shared fixture (its path and `FIXTURE_VERSION`) and
//! [`recipe`] builds it; [`push`] pushes one archive to a fresh registry; [`expect`] says what
//! a push must have produced and [`verify`] checks it in the report and the registry, [`skopeo`]
//! with a real client. The tests stay here, at the crate root, under the names they always had.

mod expect;
mod fixture;
mod push;
mod recipe;
mod skopeo;
mod verify;

#[path = "../support/mod.rs"]
mod support;

use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use expect::{Expect, Layers, docker_gzip, oci_exact};
use fixture::{
    DOCKER, DOCKER_BZ2, DOCKER_GZ, DOCKER_GZ_MULTI, DOCKER_XZ, DOCKER_ZST, OCI, OCI_GZ, OCI_NAMED,
    fixture,
};
use push::{env, file_size, push_and_verify};
use support::*;
use verify::verify;

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
