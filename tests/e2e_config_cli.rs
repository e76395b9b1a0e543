//! Configuration as documented, and the newcomer's first `hoist push`: flags beat the
//! environment which beats the file, config errors name the key and the file by its absolute
//! path, "registry down" names the registry's host, `hoist push --help` says what the README
//! says. The deploy files themselves: e2e_deploy.rs.

mod support;

use std::process::Command;

use support::archives::image;
use support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoist.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1001\"\ngzip_level = 5\n").unwrap();
    let f = file.to_str().unwrap();
    let env = [
        ("HOIST_LISTEN", "127.0.0.1:1002"),
        ("HOIST_GZIP_LEVEL", "6"),
    ];
    let out = text(
        &run_hoist(
            &["config", "--config", f, "--listen", "127.0.0.1:1003"],
            &env,
        )
        .stdout,
    );
    assert!(
        out.contains("listen = \"127.0.0.1:1003\"  # flag --listen"),
        "{out}"
    );
    assert!(
        out.contains("gzip_level = 6  # environment variable HOIST_GZIP_LEVEL"),
        "{out}"
    );
    let out = text(&run_hoist(&["config", "--config", f], &env[..1]).stdout);
    assert!(
        out.contains("listen = \"127.0.0.1:1002\"  # environment variable HOIST_LISTEN"),
        "{out}"
    );
    assert!(
        out.contains(&format!("gzip_level = 5  # config file {f}")),
        "{out}"
    );
}

#[test]
fn config_errors_name_the_key_and_the_file_by_its_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |content: &str| {
        std::fs::write(dir.path().join("hoist.toml"), content).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["serve", "--config", "hoist.toml"])
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        text(&out.stderr)
    };
    let err = serve("bogus_key = 1\n");
    let abs = dir.path().join("hoist.toml").canonicalize().unwrap();
    assert!(
        err.contains(&format!(
            "config file {}: unknown key \"bogus_key\"",
            abs.display()
        )),
        "{err}"
    );
    assert!(!err.contains("default."), "{err}");
    let err = serve("[limits]\nentriez = 3\n");
    assert!(
        err.contains("\"limits.entriez\" (did you mean \"limits.entries\"?)"),
        "{err}"
    );
    let out = run_hoist(&["config"], &[("HOIST_MAX_CONNECTIONS", "0")]);
    let err = text(&out.stderr);
    assert!(
        err.contains("environment variable HOIST_MAX_CONNECTIONS: max_connections"),
        "{err}"
    );
}

#[test]
fn registry_down_errors_name_the_registry_host() {
    let port = free_port().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar");
    std::fs::write(&file, image(10, &[1000], "cli/app:1").tar).unwrap();
    let registry = format!("http://127.0.0.1:{port}");
    let out = run_hoist(
        &[
            "push",
            file.to_str().unwrap(),
            "cli/app:1",
            "--registry",
            &registry,
            "--no-cache",
        ],
        &[("HOIST_RETRIES", "0")],
    );
    assert_eq!(out.status.code(), Some(3), "the registry failed");
    let err = text(&out.stderr);
    assert!(err.contains("REGISTRY_UNAVAILABLE"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")),
        "the host is not named: {err}"
    );
}

#[test]
fn push_help_describes_file_reference_config_and_registry() {
    let help = text(&run_hoist(&["push", "--help"], &[]).stdout);
    for needle in [
        "<FILE>",
        "[REPOSITORY[:TAG]]",
        "--config <FILE>",
        "--registry <URL>",
        "stdin",
        "Optional",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(
        readme.contains("hoist push FILE|- [REPOSITORY[:TAG]]"),
        "README disagrees"
    );
}
