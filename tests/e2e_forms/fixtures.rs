//! Fixture shape checks: the archives built in `support/archives/` are shaped like the tools'
//! output (entry order, links, names, digests). They need neither hoist nor a registry.

use serde_json::Value;

use crate::support;
use crate::support::archives::{self, Built, DupLink, ImageFacts, OciShape};

fn json_entry(b: &Built, name: &str) -> Value {
    serde_json::from_slice(
        &archives::entry_bytes(&b.bytes, name).unwrap_or_else(|| panic!("no {name}")),
    )
    .unwrap()
}

/// Every regular `blobs/sha256/<hex>` entry (under `prefix`) hashes to its name.
fn assert_blobs_named_by_digest(b: &Built, prefix: &str) -> usize {
    let mut n = 0;
    for (name, kind, _) in b.entries() {
        if let Some(hex) = name.strip_prefix(&format!("{prefix}blobs/sha256/"))
            && kind == '0'
            && !hex.is_empty()
        {
            let data = archives::entry_bytes(&b.bytes, &name).unwrap();
            assert_eq!(support::sha256(&data), format!("sha256:{hex}"), "{name}");
            n += 1;
        }
    }
    n
}

fn assert_config_diff_ids(config: &[u8], img: &ImageFacts) {
    let v: Value = serde_json::from_slice(config).unwrap();
    let ids: Vec<String> = v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, img.diff_ids);
}

#[test]
fn fixture_legacy_symlink_is_shaped_like_docker_save() {
    let b = archives::legacy(DupLink::Symlink);
    let entries = b.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let n = names.len();
    assert_eq!(&names[n - 2..], &["manifest.json", "repositories"]);
    // walk order: per directory, lexical
    let mut sorted = names[..n - 2].to_vec();
    sorted.sort_by_key(|s| {
        s.trim_end_matches('/')
            .split('/')
            .map(String::from)
            .collect::<Vec<_>>()
    });
    assert_eq!(sorted, names[..n - 2].to_vec());
    let img = &b.images[0];
    assert_eq!(img.archive_name, "fixture/legacy:v1");
    assert_eq!(img.diff_ids.len(), 3);
    assert_eq!(img.diff_ids[0], img.diff_ids[2]);
    let m = json_entry(&b, "manifest.json");
    assert_eq!(
        m[0]["Config"],
        format!("{}.json", archives::hex_of(&img.config_digest))
    );
    assert_eq!(m[0]["RepoTags"][0], "fixture/legacy:v1");
    let layers: Vec<&str> = m[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 3);
    let config = archives::entry_bytes(&b.bytes, m[0]["Config"].as_str().unwrap()).unwrap();
    assert_eq!(support::sha256(&config), img.config_digest);
    assert_config_diff_ids(&config, img);
    for (i, l) in layers.iter().take(2).enumerate() {
        let data = archives::entry_bytes(&b.bytes, l).unwrap();
        assert_eq!(support::sha256(&data), img.diff_ids[i]);
    }
    // the duplicate is a symlink to the first, which comes earlier in the stream
    let dup = entries.iter().find(|e| e.0 == layers[2]).unwrap();
    assert_eq!(dup.1, '2');
    assert_eq!(dup.2, format!("../{}", layers[0]));
    let pos = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(pos(layers[0]) < pos(layers[2]));
    assert!(names.contains(&format!("{}/", layers[0].trim_end_matches("/layer.tar")).as_str()));
    assert!(
        names.iter().any(|n| n.ends_with("/VERSION")) && names.iter().any(|n| n.ends_with("/json"))
    );
    let big = archives::entry_bytes(&b.bytes, layers[1]).unwrap();
    assert!(
        big.len() > 1_000_000 && archives::gzip(&big).len() > 1_000_000,
        "big layer is incompressible"
    );
    let repos = json_entry(&b, "repositories");
    assert_eq!(
        repos["fixture/legacy"]["v1"],
        layers[2].trim_end_matches("/layer.tar")
    );
    // deterministic
    assert_eq!(archives::legacy(DupLink::Symlink).bytes, b.bytes);
}

#[test]
fn fixture_legacy_hardlink_links_to_first_layer() {
    let b = archives::legacy(DupLink::Hardlink);
    let m = json_entry(&b, "manifest.json");
    let layers: Vec<&str> = m[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let entries = b.entries();
    let dup = entries.iter().find(|e| e.0 == layers[2]).unwrap();
    assert_eq!(dup.1, '1');
    assert_eq!(dup.2, layers[0]);
}

#[test]
fn fixture_podman_is_shaped_like_containers_image() {
    let b = archives::podman("localhost/fixture/podman:v1");
    let img = &b.images[0];
    assert_eq!(
        (img.repository.as_str(), img.tag.as_str()),
        ("fixture/podman", "v1")
    );
    let entries = b.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    for (i, d) in img.diff_ids.iter().enumerate() {
        assert_eq!(names[i], format!("{}.tar", archives::hex_of(d)));
        assert_eq!(
            support::sha256(&archives::entry_bytes(&b.bytes, names[i]).unwrap()),
            *d
        );
    }
    assert_eq!(
        names[3],
        format!("{}.json", archives::hex_of(&img.config_digest))
    );
    assert_config_diff_ids(&archives::entry_bytes(&b.bytes, names[3]).unwrap(), img);
    assert_eq!(
        &names[names.len() - 2..],
        &["manifest.json", "repositories"]
    );
    let links: Vec<_> = entries.iter().filter(|e| e.1 == '2').collect();
    assert_eq!(links.len(), 3);
    for (l, d) in links.iter().zip(&img.diff_ids) {
        assert!(l.0.ends_with("/layer.tar"));
        assert_eq!(l.2, format!("../{}.tar", archives::hex_of(d)));
    }
    assert!(
        entries.iter().all(|e| e.1 != '5'),
        "containers/image writes no directory entries"
    );
    let m = json_entry(&b, "manifest.json");
    assert_eq!(m[0]["RepoTags"][0], "localhost/fixture/podman:v1");
    assert_eq!(m[0]["Layers"][0], names[0]);
}

#[test]
fn fixture_docker25_is_shaped_like_docker_save_25() {
    let b = archives::docker25();
    let img = &b.images[0];
    let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
    assert_eq!(&names[..2], &["blobs/", "blobs/sha256/"]);
    assert_eq!(
        &names[names.len() - 4..],
        &["index.json", "manifest.json", "oci-layout", "repositories"]
    );
    let blobs = &names[2..names.len() - 4];
    assert_eq!(blobs.len(), 4);
    assert!(blobs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(assert_blobs_named_by_digest(&b, ""), 4);
    let index = json_entry(&b, "index.json");
    let d = &index["manifests"][0];
    assert_eq!(d["digest"], img.manifest_digest.clone().unwrap());
    assert_eq!(
        d["annotations"]["io.containerd.image.name"],
        "docker.io/fixture/d25:v1"
    );
    assert_eq!(d["annotations"]["org.opencontainers.image.ref.name"], "v1");
    let man = json_entry(
        &b,
        &format!(
            "blobs/sha256/{}",
            archives::hex_of(d["digest"].as_str().unwrap())
        ),
    );
    assert_eq!(man["mediaType"], archives::OCI_MANIFEST);
    assert_eq!(man["config"]["digest"], img.config_digest);
    for (i, l) in man["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(l["mediaType"], archives::OCI_LAYER_TAR);
        assert_eq!(l["digest"], img.diff_ids[i]);
    }
    let m = json_entry(&b, "manifest.json");
    assert_eq!(
        m[0]["Config"],
        format!("blobs/sha256/{}", archives::hex_of(&img.config_digest))
    );
    assert_eq!(
        m[0]["Layers"][1],
        format!("blobs/sha256/{}", archives::hex_of(&img.diff_ids[1]))
    );
    assert_eq!(m[0]["RepoTags"][0], "fixture/d25:v1");
}

#[test]
fn fixture_oci_layouts_have_their_prefixes() {
    for (shape, prefix) in [
        (OciShape::Plain, ""),
        (OciShape::DotSlash, "./"),
        (OciShape::Folder, "myimage/"),
    ] {
        let b = archives::oci_layout(shape, "docker.io/fixture/oci:v1");
        let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
        assert!(
            names.iter().all(|n| n.starts_with(prefix)),
            "{shape:?}: {names:?}"
        );
        assert_eq!(assert_blobs_named_by_digest(&b, prefix), 4, "{shape:?}");
        let index = json_entry(&b, &format!("{prefix}index.json"));
        let img = &b.images[0];
        assert_eq!(
            index["manifests"][0]["digest"],
            img.manifest_digest.clone().unwrap()
        );
        let man = json_entry(
            &b,
            &format!(
                "{prefix}blobs/sha256/{}",
                archives::hex_of(img.manifest_digest.as_ref().unwrap())
            ),
        );
        assert_eq!(man["layers"][0]["mediaType"], archives::OCI_LAYER_GZIP);
        assert_eq!(man["layers"][0]["digest"], img.layer_digests[0]);
        assert_eq!(
            (img.repository.as_str(), img.tag.as_str()),
            ("fixture/oci", "v1")
        );
        if shape == OciShape::Folder {
            assert_eq!(
                &names[..3],
                &["myimage/", "myimage/index.json", "myimage/oci-layout"]
            );
        } else {
            assert_eq!(names.last().unwrap(), &format!("{prefix}oci-layout"));
        }
        if shape == OciShape::DotSlash {
            assert_eq!(names[0], "./");
        }
    }
}

#[test]
fn fixture_multi_platform_nests_an_index() {
    let b = archives::oci_multi_platform();
    let idx = b.index.as_ref().unwrap();
    assert_eq!(assert_blobs_named_by_digest(&b, ""), 8); // 3 layers, 2 configs, 2 manifests, 1 index
    let top = json_entry(&b, "index.json");
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(top["manifests"][0]["mediaType"], archives::OCI_INDEX);
    assert_eq!(top["manifests"][0]["digest"], idx.digest);
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    let nested: Value = serde_json::from_slice(&idx.bytes).unwrap();
    let platforms: Vec<String> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(b.images[0].layer_digests[0], b.images[1].layer_digests[0]);
    assert_ne!(b.images[0].config_digest, b.images[1].config_digest);
}

#[test]
fn fixture_multi_image_shares_a_layer_directory() {
    let b = archives::legacy_multi();
    let m = json_entry(&b, "manifest.json");
    assert_eq!(m.as_array().unwrap().len(), 2);
    assert_eq!(m[0]["RepoTags"][0], "fixture/one:v1");
    assert_eq!(m[1]["RepoTags"][0], "fixture/two:v1");
    assert_eq!(m[0]["Layers"][0], m[1]["Layers"][0]);
    assert_ne!(m[0]["Layers"][1], m[1]["Layers"][1]);
    let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
    let shared = m[0]["Layers"][0].as_str().unwrap();
    assert_eq!(names.iter().filter(|n| *n == shared).count(), 1);
}

/// Writes every fixture to `$HOIST_FIXTURE_DIR` for inspection with other tools
/// (`skopeo inspect docker-archive:…`, `docker load`): `cargo test --test e2e_forms -- --ignored dump`.
#[test]
#[ignore = "a tool, not a test: writes the fixtures to $HOIST_FIXTURE_DIR"]
fn dump_fixtures() {
    let dir =
        std::path::PathBuf::from(std::env::var("HOIST_FIXTURE_DIR").expect("HOIST_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let all = [
        ("legacy-symlink.tar", archives::legacy(DupLink::Symlink)),
        ("legacy-hardlink.tar", archives::legacy(DupLink::Hardlink)),
        ("legacy-multi.tar", archives::legacy_multi()),
        (
            "podman.tar",
            archives::podman("localhost/fixture/podman:v1"),
        ),
        ("docker25.tar", archives::docker25()),
        (
            "oci-plain.tar",
            archives::oci_layout(OciShape::Plain, "docker.io/fixture/oci:v1"),
        ),
        (
            "oci-dot.tar",
            archives::oci_layout(OciShape::DotSlash, "docker.io/fixture/oci-dot:v1"),
        ),
        (
            "oci-folder.tar",
            archives::oci_layout(OciShape::Folder, "docker.io/fixture/oci-folder:v1"),
        ),
        ("oci-multi.tar", archives::oci_multi_platform()),
    ];
    for (name, b) in all {
        std::fs::write(dir.join(name), &b.bytes).unwrap();
    }
}
