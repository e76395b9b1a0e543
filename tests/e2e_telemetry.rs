//! What hoist tells an operator: JSON log lines followed by request id through a good and a
//! failed push, the Prometheus exposition parsed by a real parser, the admin listener, and
//! no secret in any log line, metric or answer. Real registry, real hoist, loopback only.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::archives::{image, image_corrupt};
use support::*;

/// The registry's one htpasswd user.
const REGISTRY_USER: &str = "ops-user";

/// The lines of one request.
fn lines_of<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["request_id"] == id).collect()
}

fn find<'a>(lines: &[&'a Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} line among {lines:#?}"))
}

#[test]
fn json_logs_follow_a_good_and_a_failed_push_by_request_id() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[("HOIST_LOG_FORMAT", "json")]).unwrap();
    let good = image(3, &[200_000], "logs/app:1").tar;
    let a = request(
        &hoist.addr(),
        "PUT",
        "/push/logs/app:1?tag=extra",
        &[("x-request-id", "ci-job-42")],
        &good,
    )
    .unwrap();
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(a.header("x-request-id"), Some("ci-job-42"));
    let digest = a.body["images"][0]["digest"].as_str().unwrap().to_string();

    let bad = image_corrupt(4, &[200_000], "logs/app:2").tar;
    let b = request(&hoist.addr(), "PUT", "/push/logs/app:2", &[], &bad).unwrap();
    assert_eq!(b.status, 400, "{}", b.text());
    let generated = b.header("x-request-id").unwrap().to_string();
    assert_eq!(generated.len(), 32, "{generated}");

    hoist.wait_for_line(&["push finished", "ci-job-42"]);
    hoist.wait_for_line(&["push finished", &generated]);
    let all = hoist.json_lines();
    let ok = lines_of(&all, "ci-job-42");
    // The access line, the pipeline's own lines (from its tasks) and the summary.
    find(&ok, "archive read");
    let access = find(&ok, "request");
    assert_eq!(access["status"], 201);
    assert_eq!(access["method"], "PUT");
    let s = find(&ok, "push finished");
    assert_eq!(s["client"], "anonymous", "{s}");
    assert_eq!(s["peer"], "127.0.0.1");
    assert_eq!(s["repository"], "logs/app");
    assert_eq!(s["tags"], "1,extra");
    assert_eq!(s["digest"], digest.as_str());
    assert_eq!(s["status"], 201);
    assert!(s.get("code").is_none(), "{s}");
    assert_eq!(s["bytes_received"], good.len() as u64);
    assert!(s["bytes_sent"].as_u64().unwrap() > 100_000, "{s}");
    assert_eq!(s["blobs_uploaded"], 2, "{s}");
    assert!(s["seconds"].as_f64().unwrap() > 0.0);

    let failed = lines_of(&all, &generated);
    let s = find(&failed, "push finished");
    assert_eq!(s["code"], "DIGEST_MISMATCH", "{s}");
    assert_eq!(s["status"], 400);
    assert_eq!(s["repository"], "logs/app");
    assert_eq!(s["tags"], "2");
    assert_eq!(s["bytes_received"], bad.len() as u64);
    assert!(s["bytes_sent"].as_u64().unwrap() > 100_000, "{s}");
    assert_eq!(find(&failed, "request")["status"], 400);
    assert!(
        failed
            .iter()
            .any(|l| l["code"] == "DIGEST_MISMATCH" && l["level"] == "INFO")
    );
}

#[test]
fn a_push_that_streams_its_progress_is_summarised_when_it_ends() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[("HOIST_LOG_FORMAT", "json")]).unwrap();
    let body = image(11, &[100_000], "ndjson/app:1").tar;
    let headers = [
        ("accept", "application/x-ndjson"),
        ("x-request-id", "ndjson-1"),
    ];
    let a = request(&hoist.addr(), "PUT", "/push/ndjson/app:1", &headers, &body).unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("\"done\""), "{}", a.text());
    hoist.wait_for_line(&["push finished", "ndjson-1"]);
    let all = hoist.json_lines();
    let s = find(&lines_of(&all, "ndjson-1"), "push finished");
    assert_eq!(s["outcome"], "success", "{s}");
    assert_eq!(s["repository"], "ndjson/app");
    assert_eq!(s["bytes_received"], body.len() as u64);
    assert!(s["digest"].as_str().unwrap().starts_with("sha256:"), "{s}");
}

#[test]
fn a_request_id_that_could_forge_log_lines_is_replaced() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[]).unwrap();
    let a = request(
        &hoist.addr(),
        "GET",
        "/healthz",
        &[("x-request-id", "a b\"{")],
        b"",
    )
    .unwrap();
    let id = a.header("x-request-id").unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

/// A real API token, checked by hoist on every push (`hoist token`), and the tokens file in
/// `dir` that holds its entry.
fn api_token(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["token", "--name", "ci-secret", "--repository", "secret/**"])
        .output()
        .unwrap();
    let made = String::from_utf8(made.stdout).unwrap();
    let token = made
        .lines()
        .nth(1)
        .expect("the token line")
        .trim()
        .to_string();
    let entry = &made[made.find("[[token]]").expect("the entry")..];
    let tokens = dir.join("tokens.toml");
    std::fs::write(&tokens, entry).unwrap();
    (token, tokens)
}

#[test]
fn no_secret_reaches_a_log_line_a_metric_or_an_answer() {
    const PASSWORD: &str = "pw-Zq8vK2mX9sLr";
    let reg = Registry::start_htpasswd(&[(REGISTRY_USER, PASSWORD)]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (token, tokens) = api_token(dir.path());
    let tokens_file = tokens.to_str().unwrap();
    let mut outputs = Vec::new();
    for format in ["text", "json"] {
        let hoist = Hoist::verbose(
            &reg.url(),
            &[
                FAST_PROBES,
                // As chatty as it gets, dependencies (hyper, reqwest, h2) included.
                ("RUST_LOG", "trace"),
                ("HOIST_LOG_FORMAT", format),
                ("HOIST_REGISTRY_USERNAME", REGISTRY_USER),
                ("HOIST_REGISTRY_PASSWORD", PASSWORD),
                ("HOIST_AUTH__TOKENS_FILE", tokens_file),
            ],
        )
        .unwrap();
        hoist.readyz_becomes(200);
        let auth = format!("Bearer {token}");
        let cookie = format!("session={token}");
        let headers = [
            ("authorization", auth.as_str()),
            ("proxy-authorization", auth.as_str()),
            ("cookie", cookie.as_str()),
        ];
        for (seed, corrupt) in [(5, false), (6, true)] {
            let build = if corrupt { image_corrupt } else { image };
            let body = build(seed, &[50_000], "secret/app:1").tar;
            let a = request(&hoist.addr(), "PUT", "/push/secret/app:1", &headers, &body).unwrap();
            assert_eq!(a.status, if corrupt { 400 } else { 201 }, "{}", a.text());
            outputs.push(a.text());
        }
        outputs.push(hoist.readyz().text());
        outputs.push(get(&format!("{}/metrics", hoist.url)).unwrap().text());
        hoist.wait_for_line(&["push finished", "DIGEST_MISMATCH"]);
        outputs.push(hoist.stderr());
    }
    let config = std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("config")
        .env("HOIST_REGISTRY_USERNAME", REGISTRY_USER)
        .env("HOIST_REGISTRY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&config.stdout).to_string();
    assert!(
        shown.contains("registry_password = \"<redacted>\""),
        "{shown}"
    );
    outputs.push(shown);
    let all = outputs.join("\n");
    assert!(all.contains("push finished"), "the logs were not captured");
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{REGISTRY_USER}:{PASSWORD}"));
    assert!(
        all.contains("ci-secret"),
        "the token's client was not named"
    );
    for secret in [PASSWORD, token.as_str(), basic.as_str()] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

/// The samples named `name` whose labels include `labels`.
fn samples<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value::*;
    let found = samples(scrape, name, labels);
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:#?}");
    match &found[0].value {
        Counter(v) | Gauge(v) | Untyped(v) => *v,
        other => panic!("{name} is {other:?}"),
    }
}

/// The `+Inf` bucket of a histogram: how many observations it holds.
fn observations(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, name, labels);
    let mut total = 0.0;
    for s in &found {
        let prometheus_parse::Value::Histogram(buckets) = &s.value else {
            panic!("{name} is not a histogram: {s:?}");
        };
        total += buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap_or(0.0);
    }
    total
}

/// A good and a failed push, then a scrape parsed by a Prometheus text parser.
fn pushes_then_scrape(
    hoist: &Hoist,
    good: &[u8],
    bad: &[u8],
) -> (prometheus_parse::Scrape, String) {
    hoist.readyz_becomes(200);
    let put = |path: &str, body: &[u8]| request(&hoist.addr(), "PUT", path, &[], body).unwrap();
    assert_eq!(put("/push/metrics/app:1", good).status, 201);
    assert_eq!(put("/push/metrics/app:2", bad).status, 400);
    let a = get(&format!("{}/metrics", hoist.url)).unwrap();
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/plain"));
    let text = a.text();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    (scrape, text)
}

#[test]
fn metrics_are_prometheus_text_with_every_series() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[FAST_PROBES]).unwrap();
    let good = image(7, &[100_000], "metrics/app:1").tar;
    let bad = image_corrupt(8, &[100_000], "metrics/app:2").tar;
    let (s, text) = pushes_then_scrape(&hoist, &good, &bad);
    assert_eq!(
        value(&s, "hoist_pushes_total", &[("outcome", "success")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&s, "hoist_pushes_total", &[("outcome", "failure")]),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "hoist_push_errors_total",
            &[("code", "DIGEST_MISMATCH")]
        ),
        1.0
    );
    assert_eq!(value(&s, "hoist_pushes_in_flight", &[]), 0.0);
    let received = value(&s, "hoist_bytes_received_total", &[]);
    assert_eq!(
        received,
        (good.len() + bad.len()) as f64,
        "failed pushes count too"
    );
    // The failed push sent its corrupt layer before the digest check failed.
    assert!(
        value(&s, "hoist_bytes_sent_total", &[]) > 2.0 * 90_000.0,
        "{text}"
    );
    assert_eq!(
        value(&s, "hoist_blobs_total", &[("outcome", "uploaded")]),
        2.0
    );
    assert_eq!(observations(&s, "hoist_push_duration_seconds", &[]), 2.0);
    assert_eq!(observations(&s, "hoist_archive_bytes", &[]), 2.0);
    let ops = [
        "ping",
        "blob_head",
        "upload_start",
        "upload_patch",
        "upload_commit",
        "manifest_put",
    ];
    for op in ops {
        let n = observations(
            &s,
            "hoist_registry_request_duration_seconds",
            &[("operation", op)],
        );
        assert!(n >= 1.0, "no registry {op} requests recorded:\n{text}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(value(&s, "hoist_build_info", &[("version", version)]), 1.0);
    assert_eq!(value(&s, "hoist_ready", &[]), 1.0);
    let described = [
        "hoist_pushes_total",
        "hoist_push_duration_seconds",
        "hoist_registry_request_duration_seconds",
    ];
    for name in described {
        assert!(s.docs.contains_key(name), "no HELP for {name}");
    }
}

#[test]
fn admin_listen_serves_metrics_apart_from_the_public_port() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(
        &reg.url(),
        &[FAST_PROBES, ("HOIST_ADMIN_LISTEN", "127.0.0.1:0")],
    )
    .unwrap();
    let admin = hoist.admin.clone().expect("admin address on stdout");
    assert_eq!(get(&format!("{}/metrics", hoist.url)).unwrap().status, 404);
    let m = get(&format!("http://{admin}/metrics")).unwrap();
    assert_eq!(m.status, 200);
    assert!(m.text().contains("hoist_build_info"));
    assert_eq!(get(&format!("http://{admin}/healthz")).unwrap().status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&format!("http://{admin}/readyz")).unwrap().status != 200 {
        assert!(Instant::now() < deadline, "admin /readyz never 200");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        request(&admin, "PUT", "/push/x/y:1", &[], b"x")
            .unwrap()
            .status,
        404
    );
}
