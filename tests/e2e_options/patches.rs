//! How blobs are PATCHed, read off a recording proxy: chunked mode (`upload_chunk_bytes`,
//! contiguous `Content-Range` chunks) and `patch_content_length` (a declared length instead
//! of chunked transfer encoding).

use std::process::Command;

use crate::common::oci_bytes;
use crate::support::archives;
use crate::support::fault_proxy::Proxy;
use crate::support::*;

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
