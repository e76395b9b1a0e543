//! The real thing: images made by the local Docker engine, `docker save`d, pushed through hoist
//! into a loopback registry, then `docker pull`ed back and run. Fails (never skips) when no
//! engine answers: scripts/test.sh installs docker.io.
//! (The engine here is 20.10: `docker save` writes the legacy graphdriver format.)

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Result;
use serde_json::Value;

/// Image references this test created; `docker rmi -f`'d on drop, even when the test fails.
struct Images(Vec<String>);

impl Images {
    fn add(&mut self, reference: &str) {
        self.0.push(reference.to_string());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for r in self.0.iter().rev() {
            let _ = Command::new("docker").args(["rmi", "-f", r]).output();
        }
    }
}

/// A name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "hoist-e2e-{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn docker(args: &[&str]) -> Result<String> {
    support::run(Command::new("docker").args(args))
}

/// A tiny rootfs tar: `bin/busybox` (Debian's busybox-static) and `sh`, `echo`, `cat` links to
/// it, plus `extra` files and `id` (unique per test, so no test's layer is another's).
fn rootfs(dir: &Path, name: &str, id: &str, extra: &[(&str, &[u8])]) -> PathBuf {
    let busybox =
        std::fs::read("/bin/busybox").expect("/bin/busybox (apt-get install busybox-static)");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    for tool in ["sh", "echo", "cat"] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{tool}"), "busybox")
            .unwrap();
    }
    let id_file: (&str, &[u8]) = ("hoist-id", id.as_bytes());
    for (path, data) in std::iter::once(&id_file).chain(extra) {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, *data).unwrap();
    }
    let path = dir.join(name);
    std::fs::write(&path, b.into_inner().unwrap()).unwrap();
    path
}

/// `docker import` of `tar` as `reference` with `cmd` as its CMD; returns the image ID.
fn import(images: &mut Images, tar: &Path, reference: &str, cmd: &str) -> String {
    images.add(reference);
    docker(&[
        "import",
        "--change",
        &format!("CMD {cmd}"),
        &tar.display().to_string(),
        reference,
    ])
    .expect("docker import");
    image_id(reference)
}

fn image_id(reference: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", reference])
        .expect("docker image inspect")
        .trim()
        .to_string()
}

/// `docker pull` from the loopback registry and `docker run --rm`; returns the pulled image ID
/// and what the container printed.
fn pull_and_run(
    images: &mut Images,
    registry: &support::Registry,
    reference: &str,
) -> (String, String) {
    let remote = format!("{}/{reference}", registry.host());
    images.add(&remote);
    docker(&["pull", "-q", &remote]).unwrap_or_else(|e| panic!("docker pull {remote}: {e:#}"));
    let out = docker(&["run", "--rm", "--network", "none", &remote])
        .unwrap_or_else(|e| panic!("docker run {remote}: {e:#}"));
    (image_id(&remote), out.trim().to_string())
}

/// `docker save` of `references` into `file`, optionally piped through gzip.
fn save(references: &[&str], file: &Path, gzip: bool) {
    let mut cmd = format!("docker save {}", references.join(" "));
    if gzip {
        cmd.push_str(" | gzip -c");
    }
    cmd.push_str(&format!(" > '{}'", file.display()));
    support::run(Command::new("bash").args(["-o", "pipefail", "-c", &cmd])).expect("docker save");
}

/// Removes local images, so that the pull must fetch every layer from the registry.
fn forget(references: &[&str]) {
    for r in references {
        docker(&["rmi", r]).expect("docker rmi");
    }
}

fn push(hoist: &support::Hoist, path: &str, file: &Path) -> Value {
    let answer = support::push_file(hoist, path, file).expect("curl");
    assert_eq!(answer.status, 201, "push {path}: {:#}", answer.body);
    answer.body
}

const CMD_OK: &str = r#"["/bin/sh","-c","echo hoist-ok"]"#;

#[test]
fn docker_save_pushed_to_url_name_pulls_and_runs() {
    support::require_docker_engine();
    let mut images = Images(Vec::new());
    let dir = support::scratch();
    let name = unique("one");
    let local = format!("{name}:v1");
    let id = import(
        &mut images,
        &rootfs(dir.path(), "rootfs.tar", &name, &[]),
        &local,
        CMD_OK,
    );
    let file = support::p(&dir, "save.tar");
    save(&[&local], &file, false);
    forget(&[&local]);
    let listing = support::run(Command::new("tar").arg("tf").arg(&file)).unwrap();
    assert!(listing.lines().any(|l| l == "manifest.json"), "{listing}");

    let registry = support::Registry::start().unwrap();
    let hoist = support::Hoist::start(&registry).unwrap();
    let report = push(&hoist, "/push/e2e/docker-one:t1", &file);
    assert_eq!(
        report["images"][0]["repository"], "e2e/docker-one",
        "{report:#}"
    );
    assert_eq!(registry.tags("e2e/docker-one"), ["t1"]);

    let (pulled_id, out) = pull_and_run(&mut images, &registry, "e2e/docker-one:t1");
    assert_eq!(out, "hoist-ok");
    assert_eq!(pulled_id, id, "image ID (config digest) changed on the way");
}

#[test]
fn docker_save_gzip_pushed_to_archive_name_pulls_and_runs() {
    support::require_docker_engine();
    let mut images = Images(Vec::new());
    let dir = support::scratch();
    let name = unique("gz");
    let local = format!("{name}:v1");
    let id = import(
        &mut images,
        &rootfs(dir.path(), "rootfs.tar", &name, &[]),
        &local,
        CMD_OK,
    );
    let file = support::p(&dir, "save.tar.gz");
    save(&[&local], &file, true);
    forget(&[&local]);

    let registry = support::Registry::start().unwrap();
    let hoist = support::Hoist::start(&registry).unwrap();
    let report = push(&hoist, "/push", &file);
    assert_eq!(
        report["images"][0]["repository"],
        name.as_str(),
        "{report:#}"
    );
    assert_eq!(registry.tags(&name), ["v1"]);

    let (pulled_id, out) = pull_and_run(&mut images, &registry, &local);
    assert_eq!(out, "hoist-ok");
    assert_eq!(pulled_id, id);
}

#[test]
fn docker_save_of_two_images_pushes_both_and_they_run() {
    support::require_docker_engine();
    let mut images = Images(Vec::new());
    let dir = support::scratch();
    let name = unique("base");
    let first = format!("{name}:v1");
    let first_id = import(
        &mut images,
        &rootfs(dir.path(), "rootfs.tar", &name, &[]),
        &first,
        CMD_OK,
    );

    // The second image builds on the first (sharing its layer) with the classic builder, which
    // uses the local image and never pulls; if that fails offline, import a second rootfs.
    let second = format!("{}:v1", unique("child"));
    images.add(&second);
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hoist-ok-two\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {first}\nCOPY hello.txt /hello.txt\nCMD [\"/bin/cat\",\"/hello.txt\"]\n"),
    )
    .unwrap();
    let built = support::run(
        Command::new("docker")
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &second])
            .arg(&ctx),
    );
    let second_id = match built {
        Ok(_) => image_id(&second),
        Err(e) => {
            println!("docker build failed ({e:#}); importing the second image instead");
            let tar = rootfs(
                dir.path(),
                "rootfs2.tar",
                &second,
                &[("hello.txt", b"hoist-ok-two\n")],
            );
            import(&mut images, &tar, &second, r#"["/bin/cat","/hello.txt"]"#)
        }
    };
    let file = support::p(&dir, "two.tar");
    save(&[&first, &second], &file, false);
    forget(&[&second, &first]);

    let registry = support::Registry::start().unwrap();
    let hoist = support::Hoist::start(&registry).unwrap();
    let report = push(&hoist, "/push", &file);
    assert_eq!(
        report["images"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    for reference in [&first, &second] {
        let (repo, tag) = reference.split_once(':').unwrap();
        assert_eq!(registry.tags(repo), [tag], "{repo}");
    }

    let (id1, out1) = pull_and_run(&mut images, &registry, &first);
    assert_eq!(out1, "hoist-ok");
    assert_eq!(id1, first_id);
    let (id2, out2) = pull_and_run(&mut images, &registry, &second);
    assert_eq!(out2, "hoist-ok-two");
    assert_eq!(id2, second_id);
}
