//! The deploy files kept honest: the compose file's environment (and the Dockerfile's ENV,
//! CMD and HEALTHCHECK) starts a hoist that serves; the Kubernetes manifests pass a real
//! schema validator and their ConfigMap is a config hoist accepts; scripts/run-local.sh
//! refuses a taken port. Loopback only. Configuration precedence and errors, and the
//! newcomer's `hoist push`: e2e_config_cli.rs.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::*;
use yaml_rust2::{Yaml, YamlLoader};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// `KEY=value` pairs of the Dockerfile's ENV lines, its CMD and HEALTHCHECK CMD as argv.
struct Dockerfile {
    env: Vec<(String, String)>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
}

fn json_argv(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not a JSON argv ({e}): {s}"))
}

fn dockerfile() -> Dockerfile {
    let raw = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let joined = raw.replace("\\\n", " ");
    let stage = joined.rsplit("\nFROM ").next().unwrap();
    let mut d = Dockerfile {
        env: Vec::new(),
        cmd: Vec::new(),
        healthcheck: Vec::new(),
    };
    for line in stage.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=value");
                d.env.push((k.into(), v.into()));
            }
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            d.cmd = json_argv(rest);
        } else if let Some(rest) = line.strip_prefix("HEALTHCHECK ") {
            let cmd = rest.split_once("CMD ").expect("HEALTHCHECK ... CMD").1;
            d.healthcheck = json_argv(cmd);
        }
    }
    assert!(raw.contains("COPY config/hoist.toml /etc/hoist/hoist.toml"));
    assert!(raw.contains("EXPOSE 8080") && raw.contains("USER 65534"));
    assert!(!raw.contains("strip "), "line tables are kept: no strip");
    d
}

/// The image's paths, mapped to the repository's files.
fn local(arg: &str) -> String {
    match arg {
        "/etc/hoist/hoist.toml" => repo_root().join("config/hoist.toml").display().to_string(),
        other => other.to_string(),
    }
}

fn compose_environment() -> Vec<(String, String)> {
    let raw = std::fs::read_to_string(repo_root().join("deploy/compose.yaml")).unwrap();
    let doc = YamlLoader::load_from_str(&raw).unwrap().remove(0);
    let env = &doc["services"]["hoist"]["environment"];
    let Yaml::Hash(map) = env else {
        panic!("services.hoist.environment is not a map: {env:?}")
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                other => panic!("{k:?}: {other:?}"),
            };
            (k.as_str().unwrap().to_string(), value)
        })
        .collect()
}

#[test]
fn the_compose_environment_starts_a_hoist_that_serves() {
    let reg = Registry::start().unwrap();
    let image = dockerfile();
    let mut env = image.env.clone();
    for (k, v) in compose_environment() {
        env.retain(|(key, _)| *key != k);
        env.push((k, v));
    }
    // The registry service's host, swapped for the loopback registry; nothing else changed.
    for (k, v) in env.iter_mut() {
        if k == "HOIST_REGISTRY" {
            assert_eq!(v, "http://registry:5000");
            *v = reg.url();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The image's CMD, as the container runs it; a --listen flag beats HOIST_LISTEN, so the
    // test need not bind 0.0.0.0:8080.
    assert_eq!(image.cmd[0], "serve");
    let mut args: Vec<String> = image.cmd[1..].iter().map(|a| local(a)).collect();
    args.extend(["--listen".into(), "127.0.0.1:0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hoist = Hoist::serve(&args)
        .clear_env()
        .log(VERBOSE_LOG)
        .envs(&env)
        .start()
        .unwrap();
    wait_until(Duration::from_secs(15), || {
        get(&format!("{}/readyz", hoist.url)).is_ok_and(|a| a.status == 200)
    })
    .unwrap_or_else(|_| panic!("not ready:\n{}", hoist.stderr()));
    let body = archives::image(9, &[50_000], "compose/app:1").tar;
    let a = request(&hoist.addr(), "PUT", "/push/compose/app:1", &[], &body).unwrap();
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(reg.tags("compose/app"), vec!["1"]);
    // The image's HEALTHCHECK, with the same environment, asks this server.
    assert_eq!(image.healthcheck[0], "/usr/local/bin/hoist");
    let mut check: Vec<String> = image.healthcheck[1..].iter().map(|a| local(a)).collect();
    check.extend(["--listen".into(), hoist.addr()]);
    let check: Vec<&str> = check.iter().map(String::as_str).collect();
    let out = hoist_with_env_only(&check, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn hoist_with_env_only(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `kubernetes-validate`: on PATH, or where scripts/test.sh installs it.
fn validator() -> Option<std::path::PathBuf> {
    let local = repo_root().join("target/k8s-validate/bin/kubernetes-validate");
    if local.is_file() {
        return Some(local);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v kubernetes-validate"])
        .output()
        .ok()?;
    found
        .status
        .success()
        .then(|| text(&found.stdout).trim().into())
}

fn manifests() -> Vec<std::path::PathBuf> {
    let dir = repo_root().join("deploy/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_manifests_pass_the_schema_validator() {
    // Like every tool the suite drives, a missing validator fails the test (under CI=true
    // and everywhere else): scripts/test.sh installs it.
    let validate = validator().expect(
        "kubernetes-validate is missing: scripts/test.sh installs it into target/k8s-validate",
    );
    let files = manifests();
    assert!(files.len() >= 6, "{files:?}");
    // The oldest Kubernetes the manifests claim to suit, and the validator's newest.
    for version in [&["--kubernetes-version", "1.30.0"][..], &[]] {
        let out = Command::new(&validate)
            .arg("--strict")
            .args(version)
            .args(&files)
            .output()
            .unwrap();
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{version:?}: {report}");
        assert!(
            !report.contains("WARN") && !report.contains("ERROR"),
            "{report}"
        );
        assert_eq!(
            report.matches("passed for resource").count(),
            files.len() + 1,
            "{report}"
        );
    }
}

fn load_yaml(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn kind(docs: &[Yaml], kind: &str) -> Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
        .clone()
}

#[test]
fn the_kubernetes_config_is_one_hoist_accepts_and_the_probes_match_it() {
    let docs: Vec<Yaml> = manifests().iter().flat_map(|p| load_yaml(p)).collect();
    let config = kind(&docs, "ConfigMap")["data"]["hoist.toml"]
        .as_str()
        .expect("ConfigMap data hoist.toml")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoist.toml");
    std::fs::write(&file, &config).unwrap();
    let out = run_hoist(&["config", "--config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    the_example_tokens_let_hoist_start(&docs, dir.path(), &file);
    let deployment = kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    probes_ask_ports_hoist_listens_on(container, &shown);
    // The pod may take the drain: terminationGracePeriodSeconds > drain_timeout.
    let drain = shown
        .lines()
        .find_map(|l| l.strip_prefix("drain_timeout = \""))
        .map(|v| seconds(v.split('"').next().unwrap()))
        .expect("drain_timeout");
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() > drain);
    let sc = &container["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
}

/// Listening on 0.0.0.0, hoist starts only when [auth] says who may push: the ConfigMap's
/// tokens_file (`file`), holding the example Secret's tokens, passes that check.
fn the_example_tokens_let_hoist_start(docs: &[Yaml], dir: &Path, file: &Path) {
    let tokens = kind(docs, "Secret");
    let tokens = docs
        .iter()
        .find(|d| d["metadata"]["name"].as_str() == Some("hoist-tokens"))
        .unwrap_or(&tokens)["stringData"]["tokens"]
        .as_str()
        .expect("the hoist-tokens Secret's tokens")
        .to_string();
    let tokens_file = dir.join("tokens");
    std::fs::write(&tokens_file, tokens).unwrap();
    // `::hoist`: the crate (`hoist` alone is `support::hoist`).
    let flags = ::hoist::config::Flags::default();
    let config = ::hoist::config::Config::load(Some(file), &flags).unwrap();
    let mut auth = config.auth.clone();
    assert_eq!(
        auth.tokens_file.as_deref(),
        Some(Path::new("/run/secrets/hoist/tokens"))
    );
    auth.tokens_file = Some(tokens_file.clone());
    ::hoist::auth::Authenticator::new(&auth, config.listen)
        .expect("the ConfigMap and the example Secret let hoist start");
}

/// Every container port is one hoist's config listens on, and each probe asks one of them on
/// its path.
fn probes_ask_ports_hoist_listens_on(container: &Yaml, shown: &str) {
    let ports: Vec<(String, i64)> = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    for (name, port) in &ports {
        assert!(
            shown.contains(&format!(":{port}\"")),
            "port {name} {port} not in\n{shown}"
        );
    }
    let port_of = |probe: &str| {
        container[probe]["httpGet"]["port"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(
            container[probe]["httpGet"]["path"].as_str(),
            Some(path),
            "{probe}"
        );
        assert!(ports.iter().any(|(n, _)| *n == port_of(probe)), "{probe}");
    }
}

/// Seconds in a humantime duration as `hoist config` prints it (`1m 30s`, `45s`).
fn seconds(d: &str) -> i64 {
    d.split_whitespace()
        .map(|part| {
            let (n, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit()).unwrap());
            let n: i64 = n.parse().unwrap();
            match unit {
                "h" => n * 3600,
                "m" => n * 60,
                "s" => n,
                other => panic!("unit {other} in {d}"),
            }
        })
        .sum()
}

#[test]
fn run_local_refuses_a_taken_port_before_building_and_names_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = free_port().unwrap();
    // Bounded: were the check broken, the script would go on to serve until stopped.
    let out = Command::new("timeout")
        .arg("60")
        .arg("bash")
        .arg(repo_root().join("scripts/run-local.sh"))
        .env("RUN_LOCAL_HOIST_PORT", port.to_string())
        .env("RUN_LOCAL_REGISTRY_PORT", free.to_string())
        .env("RUN_LOCAL_NO_BUILD", "1")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port} is already in use")),
        "{err}"
    );
    assert!(
        !err.contains("docker-registry service"),
        "blames the packaged registry: {err}"
    );
    assert!(
        !err.contains("Push an image archive"),
        "printed the banner: {err}"
    );
}
