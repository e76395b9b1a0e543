//! End-to-end tests of hoist's operating surface: the `hoist push` command, chunked upload
//! mode, the upload page and health route, load shedding (503 BUSY), CORS, config errors,
//! and a client that goes quiet. Real registry, real hoist process, loopback only.

mod support;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use support::archives::{self, OciShape};
use support::fault_proxy::Proxy;
use support::*;

fn oci_bytes(name: &str) -> archives::Built {
    archives::oci_layout(OciShape::Plain, name)
}

#[test]
fn push_command_pushes_a_file_and_reports_json() {
    let reg = Registry::start().unwrap();
    let dir = scratch();
    let built = archives::podman("localhost/fixture/cli:v1");
    let file = p(&dir, "img.tar.gz");
    std::fs::write(&file, built.gzipped()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "push",
            file.to_str().unwrap(),
            "cli/app:1",
            "--registry",
            &reg.url(),
            "--tag",
            "extra",
            "--json",
            "--no-cache",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["repository"], "cli/app");
    let mut tags = reg.tags("cli/app");
    tags.sort();
    assert_eq!(tags, vec!["1", "extra"]);
    let inspect = skopeo_inspect(&reg, "cli/app:1", &["--config"]).unwrap();
    assert_eq!(
        inspect["rootfs"]["diff_ids"].as_array().unwrap().len(),
        built.images[0].diff_ids.len()
    );
}

#[test]
fn push_command_reads_stdin_and_fails_with_error_json() {
    let reg = Registry::start().unwrap();
    let built = oci_bytes("docker.io/fixture/stdin:v1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["push", "-", "--registry", &reg.url(), "--no-cache"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&built.gzipped())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(reg.tags("fixture/stdin"), vec!["v1"]);

    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["push", "-", "bad/x:1", "--registry", &reg.url()])
        .args(["--json", "--no-cache"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // 2: the archive is bad; with --json the error body is on stdout.
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "UNSUPPORTED_FORMAT");
    assert!(reg.tags("bad/x").is_empty());
}

/// One PATCH of chunked mode: `Content-Range` start and end, `Content-Length`.
type Chunk = (u64, u64, u64);

/// One upload session of chunked mode: its URL path and its PATCHes, in order.
type Session = (String, Vec<Chunk>);

/// `upload_chunk_bytes = 65536`: every blob goes in PATCHes of exactly 64 KiB (the last one
/// shorter) with `Content-Range: start-end` and a matching `Content-Length`, contiguous from 0,
/// read off a recording proxy; the pulled image is intact.
#[test]
fn chunked_mode_uploads_in_content_range_chunks() {
    let reg = Registry::start().unwrap();
    let proxy = Proxy::start(&reg.url()).unwrap();
    // 64 KiB chunks: the 1.5 MB layer of the legacy fixture takes many PATCHes.
    let hoist = Hoist::with_env(&proxy.url(), &[("HOIST_UPLOAD_CHUNK_BYTES", "65536")]).unwrap();
    let built = archives::legacy(archives::DupLink::Symlink);
    let a = push_bytes(&hoist, "/push/chunked/app:1", &built.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let sessions = chunk_sessions(&proxy);
    let chunked_blobs = assert_chunks_follow_on(&sessions);
    // The 1.5 MB layer, gzipped by hoist, is far over 64 KiB.
    assert!(
        sessions.iter().any(|(_, c)| c.len() >= 16),
        "no blob went in 16 chunks or more\n  {}",
        proxy.describe()
    );
    assert!(chunked_blobs >= 1);
    assert_pulls_with_diff_ids(&reg, "chunked/app:1", &built.images[0].diff_ids);
}

/// The PATCHes the proxy saw, grouped by upload session, each checked on its own: a
/// `Content-Length` matching its `Content-Range`, that many bytes sent, `202` back. A PATCH
/// without `Content-Range` (a blob held in memory) must fit in one chunk.
fn chunk_sessions(proxy: &Proxy) -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    for s in proxy.log().iter().filter(|s| s.method == "PATCH") {
        // Blobs held in memory (the config) go in one PATCH; within a chunk's size that is
        // what a registry capping bodies accepts.
        let Some(range) = s.header("content-range") else {
            assert!(
                s.body_bytes <= 65536,
                "a {} byte PATCH without Content-Range\n  {}",
                s.body_bytes,
                proxy.describe()
            );
            continue;
        };
        let (start, end) = range.split_once('-').expect("start-end");
        let (start, end): (u64, u64) = (start.parse().unwrap(), end.parse().unwrap());
        let length: u64 = s.header("content-length").unwrap().parse().unwrap();
        assert_eq!(
            length,
            end - start + 1,
            "Content-Length vs Content-Range {range}"
        );
        assert_eq!(s.body_bytes, length, "bytes sent vs Content-Length");
        assert_eq!(s.status, Some(202));
        let session = s.path().to_string();
        match sessions.iter_mut().find(|(p, _)| *p == session) {
            Some((_, chunks)) => chunks.push((start, end, length)),
            None => sessions.push((session, vec![(start, end, length)])),
        }
    }
    sessions
}

/// Checks that each session's chunks run on from 0 without a gap, all 64 KiB but the last
/// (at most 64 KiB); returns how many blobs went in more than one chunk.
fn assert_chunks_follow_on(sessions: &[Session]) -> usize {
    let mut chunked_blobs = 0;
    for (session, chunks) in sessions {
        let mut offset = 0;
        for (i, (start, end, length)) in chunks.iter().enumerate() {
            assert_eq!(*start, offset, "{session}: chunk {i} does not follow on");
            if i + 1 < chunks.len() {
                assert_eq!(*length, 65536, "{session}: chunk {i} is not 64 KiB");
            } else {
                assert!(*length <= 65536, "{session}: last chunk over 64 KiB");
            }
            offset = end + 1;
        }
        if chunks.len() > 1 {
            chunked_blobs += 1;
        }
    }
    chunked_blobs
}

/// skopeo pulls `reference` from `reg` whole, and its config lists `diff_ids`.
fn assert_pulls_with_diff_ids(reg: &Registry, reference: &str, diff_ids: &[String]) {
    let dir = scratch();
    let out = p(&dir, "out");
    run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/{reference}", reg.host()),
        &format!("oci:{}:t", out.display()),
    ]))
    .unwrap();
    let config = skopeo_inspect(reg, reference, &["--config"]).unwrap();
    let want: Vec<&str> = diff_ids.iter().map(String::as_str).collect();
    let got: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(got, want);
}

/// `patch_content_length = true`: a streamed PATCH of a blob whose size is known (passed
/// through) declares `Content-Length` instead of chunked transfer encoding; by default it
/// does not.
#[test]
fn patch_content_length_declares_the_blob_size() {
    let reg = Registry::start().unwrap();
    let proxy = Proxy::start(&reg.url()).unwrap();
    let built = oci_bytes("length/app:1");
    let layer_sizes: Vec<u64> = built.images[0]
        .layer_digests
        .iter()
        .map(|d| {
            let name = format!("blobs/sha256/{}", archives::hex_of(d));
            archives::entry_bytes(&built.bytes, &name).unwrap().len() as u64
        })
        .collect();
    for (setting, repo) in [(None, "length/off"), (Some("true"), "length/on")] {
        let mut opts = Hoist::options(&proxy.url());
        if let Some(v) = setting {
            opts = opts.env("HOIST_PATCH_CONTENT_LENGTH", v);
        }
        let hoist = opts.start().unwrap();
        proxy.set_rules(Vec::new());
        let a = push_bytes(&hoist, &format!("/push/{repo}:1"), &built.bytes).unwrap();
        assert_eq!(a.status, 201, "{}", a.body);
        let patches: Vec<_> = proxy
            .log()
            .into_iter()
            .filter(|s| s.method == "PATCH" && layer_sizes.contains(&s.body_bytes))
            .collect();
        assert_eq!(patches.len(), layer_sizes.len(), "{}", proxy.describe());
        for s in &patches {
            let length = s.header("content-length");
            let chunked = s
                .header("transfer-encoding")
                .is_some_and(|v| v.contains("chunked"));
            match setting {
                Some(_) => {
                    assert_eq!(length, Some(s.body_bytes.to_string().as_str()), "{s:?}");
                    assert!(!chunked, "{s:?}");
                }
                None => {
                    assert!(length.is_none() && chunked, "{s:?}");
                }
            }
        }
        assert_eq!(reg.tags(repo), vec!["1"]);
    }
}

#[test]
fn upload_page_and_health_answer() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let page = run(Command::new("curl").args(["-sf", &format!("{}/", hoist.url)])).unwrap();
    assert!(
        page.contains("<form") && page.contains("type=\"file\""),
        "{page}"
    );
    let health =
        run(Command::new("curl").args(["-sf", &format!("{}/healthz", hoist.url)])).unwrap();
    assert_eq!(health.trim(), "ok");
}

#[test]
fn cors_preflight_allows_configured_origin_only() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(
        &reg.url(),
        &[("HOIST_CORS_ALLOW_ORIGINS", "[\"https://portal.example\"]")],
    )
    .unwrap();
    let preflight = |origin: &str| {
        run(Command::new("curl").args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Access-Control-Request-Method: PUT",
            &format!("{}/push/x/y:1", hoist.url),
        ]))
        .unwrap()
        .to_ascii_lowercase()
    };
    assert!(
        preflight("https://portal.example")
            .contains("access-control-allow-origin: https://portal.example")
    );
    assert!(!preflight("https://evil.example").contains("access-control-allow-origin"));
}

#[test]
fn unknown_config_keys_stop_the_server_at_start() {
    let dir = scratch();
    let cfg = p(&dir, "hoist.toml");
    std::fs::write(&cfg, "listne = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listne"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_config_file_is_valid() {
    let reg = Registry::start().unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hoist.toml");
    let hoist = Hoist::options(&reg.url())
        .args(&["--config", cfg])
        .start()
        .unwrap();
    let a = push_bytes(&hoist, "/push/cfg/app:1", &oci_bytes("cfg/app:1").bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
}

#[test]
fn pushes_over_the_limit_are_shed_with_busy() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_MAX_CONCURRENT_PUSHES", "1")]).unwrap();
    let built = oci_bytes("busy/app:1");
    let half = &built.bytes[..built.bytes.len() / 2];
    let held = hold_upload(&hoist, "/push/busy/held:1", built.bytes.len(), half);
    // Give the server a moment to take the held push's slot (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let a = push_bytes(&hoist, "/push/busy/app:1", &built.bytes).unwrap();
        if a.status == 503 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shed.status, 503, "{}", shed.body);
    assert_eq!(shed.code(), "BUSY");
    assert_eq!(
        shed.header("retry-after"),
        Some("5"),
        "BUSY says when to retry: {:?}",
        shed.headers
    );
    drop(held);
    // The slot comes back once the held push has failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = push_bytes(&hoist, "/push/busy/app:1", &built.bytes).unwrap();
        if a.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot never came back: {}",
            a.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reg.tags("busy/held").is_empty());
}

#[test]
fn a_client_that_goes_quiet_gets_408_and_nothing_is_tagged() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_CLIENT_IDLE_TIMEOUT", "1s")]).unwrap();
    let built = oci_bytes("quiet/app:1");
    let half = &built.bytes[..built.bytes.len() / 2];
    let mut s = hold_upload(&hoist, "/push/quiet/app:1", built.bytes.len(), half);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BODY_TIMEOUT"), "{answer}");
    assert!(reg.tags("quiet/app").is_empty());
}

#[test]
fn a_symlinked_layer_may_point_forward() {
    // Real docker save names layer folders by hash, so `<a>/layer.tar -> ../<b>/layer.tar`
    // can point at an entry that comes later in the tar.
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let built = archives::legacy(archives::DupLink::Symlink);
    let entries = archives::list_entries(&built.bytes);
    let (link, _, target) = entries
        .iter()
        .find(|(_, kind, _)| *kind == '2')
        .expect("a symlink")
        .clone();
    // Rebuild the tar with the symlink moved to the front.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    tar.append_link(&mut h, &link, &target).unwrap();
    let mut archive = tar::Archive::new(&built.bytes[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().to_string();
        if path == link {
            continue;
        }
        let mut header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if header.entry_type() == tar::EntryType::Symlink
            || header.entry_type() == tar::EntryType::Link
        {
            let t = e
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .to_string();
            tar.append_link(&mut header, &path, &t).unwrap();
        } else {
            tar.append_data(&mut header, &path, &data[..]).unwrap();
        }
    }
    let bytes = tar.into_inner().unwrap();
    assert_eq!(archives::list_entries(&bytes)[0].0, link);
    let a = push_bytes(&hoist, "/push/forward/app:1", &bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(reg.tags("forward/app"), vec!["1"]);
}

#[test]
fn a_second_repository_gets_blobs_by_mount() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let outcomes = |a: &Answer| -> Vec<String> {
        a.body["images"][0]["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    // OCI layout: blobs named by digest, known before their bytes arrive.
    let oci = oci_bytes("mount/src:1");
    let first = push_bytes(&hoist, "/push/mount/one:1", &oci.bytes).unwrap();
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(
        outcomes(&first).iter().all(|o| o == "uploaded"),
        "{}",
        first.body
    );
    let second = push_bytes(&hoist, "/push/mount/two:1", &oci.bytes).unwrap();
    assert_eq!(second.status, 201, "{}", second.body);
    let o = outcomes(&second);
    // The layers stream by and are mounted from mount/one; the config (kept in memory) too.
    assert!(o.iter().all(|o| o == "mounted"), "{}", second.body);
    assert_eq!(reg.tags("mount/two"), vec!["1"]);
    // podman docker-archive: layers named by diffID, compressed by hoist. The second push
    // finds the compressed blob by diffID and mounts it without compressing again.
    let podman = archives::podman("localhost/fixture/m:v1");
    let a = push_bytes(&hoist, "/push/mount/three:1", &podman.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let b = push_bytes(&hoist, "/push/mount/four:1", &podman.bytes).unwrap();
    assert_eq!(b.status, 201, "{}", b.body);
    assert!(outcomes(&b).iter().all(|o| o == "mounted"), "{}", b.body);
    assert_eq!(a.body["images"][0]["digest"], b.body["images"][0]["digest"]);
    assert!(
        b.body["bytes_sent"].as_u64().unwrap() < 10_000,
        "{}",
        b.body
    );
}

#[test]
fn metrics_count_pushes_and_rejections_by_code() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let built = oci_bytes("metrics/app:1");
    assert_eq!(
        push_bytes(&hoist, "/push/metrics/app:1", &built.bytes)
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        push_bytes(&hoist, "/push/metrics/app:1", b"not an archive")
            .unwrap()
            .status,
        415
    );
    let text = get_text(&format!("{}/metrics", hoist.url)).unwrap();
    // Whole series names and exact values: `hoist_pushes_total 1` must not match `... 10`.
    for (series, value) in [
        ("hoist_pushes_total{outcome=\"success\"}", 1.0),
        ("hoist_push_errors_total{code=\"UNSUPPORTED_FORMAT\"}", 1.0),
        ("hoist_pushes_in_flight", 0.0),
        ("hoist_blobs_total{outcome=\"uploaded\"}", 3.0),
    ] {
        assert_eq!(metric(&text, series), Some(value), "{series}\n{text}");
    }
    let received = metric(&text, "hoist_bytes_received_total").unwrap();
    assert!(
        received >= built.bytes.len() as f64,
        "bytes received {received}\n{text}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn repeated_pushes_do_not_grow_the_process() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    // The legacy fixture has a 1.5 MB layer that hoist gzips on the way: every push runs
    // the whole pipeline (decode, walk, compression pool, upload) into a new repository.
    let built = archives::legacy(archives::DupLink::Symlink);
    let gz = built.gzipped();
    let mut after_warmup = 0;
    for i in 0..30 {
        let a = push_bytes(&hoist, &format!("/push/soak/r{i}:1"), &gz).unwrap();
        assert_eq!(a.status, 201, "{}", a.body);
        if i == 4 {
            after_warmup = rss_kib(hoist.pid());
        }
    }
    let end = rss_kib(hoist.pid());
    assert!(
        end < after_warmup + 16 * 1024,
        "RSS grew from {after_warmup} KiB after 5 pushes to {end} KiB after 30"
    );
}

#[test]
fn sigterm_lets_a_push_in_flight_finish_then_exits() {
    let reg = Registry::start().unwrap();
    let mut hoist = Hoist::start(&reg).unwrap();
    let built = oci_bytes("drain/app:1");
    let (first, rest) = built.bytes.split_at(built.bytes.len() / 2);
    let mut s = hold_upload(&hoist, "/push/drain/app:1", built.bytes.len(), first);
    std::thread::sleep(Duration::from_millis(300));
    run(Command::new("kill").args(["-TERM", &hoist.pid().to_string()])).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(hoist.alive(), "hoist exited with a push in flight");
    s.write_all(rest).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(reg.tags("drain/app"), vec!["1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hoist.alive() {
        assert!(
            Instant::now() < deadline,
            "hoist did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_layer_bomb_is_stopped_while_hashing_its_diff_id() {
    // crane-style docker archive: a gzip layer named by path, so hoist inflates it to check
    // its diffID. 200 MB of zeros gzip to ~200 KB: far past limits.max_ratio.
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..200 {
        gz.write_all(&zeros).unwrap();
    }
    let layer = gz.finish().unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(b"whatever")]},
    })
    .to_string();
    let config_name = format!("{}.json", archives::hex_of(&sha256(config.as_bytes())));
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": ["bomb/app:1"], "Layers": ["bomb.tar.gz"],
    }])
    .to_string();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("bomb.tar.gz", &layer[..]),
        (config_name.as_str(), config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    }
    let a = push_bytes(&hoist, "/push/bomb/app:1", &tar.into_inner().unwrap()).unwrap();
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.code(), "DECOMPRESSED_TOO_LARGE");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bomb.tar.gz"),
        "{}",
        a.body
    );
    assert!(reg.tags("bomb/app").is_empty());
}
