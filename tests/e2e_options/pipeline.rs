//! Archives through the whole pipeline: a symlinked layer pointing forward in the tar, a
//! second repository getting its blobs by mount (OCI layout and podman), and a layer bomb
//! stopped while its diffID is hashed.

use std::io::{Read, Write};

use crate::common::oci_bytes;
use crate::support::archives;
use crate::support::*;

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
