//! Hostile archives against a real `hoist serve` and a real registry.
//!
//! Each case starts from a tiny valid image (see `hostile_archives`) and breaks one thing. For
//! every rejection we check the contract of docs/API.md: the status, the stable `error.code`,
//! that the message names the entry or digest at fault, that nothing was tagged, that no upload
//! session was left open, and that hoist still accepts a valid push afterwards. The first tests
//! push the unbroken images (and the legitimate shapes hostile cases imitate: symlinked layers,
//! forward links, `./` prefixes, multi-member gzip) so the rejections below are meaningful.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use support::archives::*;
use support::{Answer, Hoist, Registry, push_bytes, push_chunked, read_answer, sha256};

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// One registry and one hoist, per test.
struct Env {
    reg: Registry,
    hoist: Hoist,
}

impl Env {
    fn new() -> Env {
        Env::with(&[])
    }

    /// hoist started with extra environment (limits).
    fn with(vars: &[(&str, &str)]) -> Env {
        let reg = Registry::start().expect("registry starts");
        let hoist = Hoist::with_env(&reg.url(), vars).expect("hoist starts");
        Env { reg, hoist }
    }

    fn push(&self, path: &str, body: &[u8]) -> Answer {
        push_bytes(&self.hoist, path, body).expect("curl runs")
    }

    /// Pushes a body that must be accepted.
    fn accept(&self, path: &str, body: &[u8]) -> Answer {
        let ans = self.push(path, body);
        assert_eq!(ans.status, 201, "{path} should be accepted: {ans:?}");
        ans
    }

    /// Pushes `body` to `/push/hostile/<case>:t` and checks the whole rejection contract.
    fn reject(
        &mut self,
        case: &str,
        body: &[u8],
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) -> Answer {
        let path = format!("/push/hostile/{case}:t");
        self.reject_at(
            &path,
            &format!("hostile/{case}"),
            case,
            body,
            status,
            codes,
            names,
        )
    }

    /// Like `reject`, for any push path; `repo` is where a wrongful tag would land.
    #[expect(clippy::too_many_arguments)]
    fn reject_at(
        &mut self,
        path: &str,
        repo: &str,
        case: &str,
        body: &[u8],
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) -> Answer {
        let ans = self.push(path, body);
        self.check_rejected(case, repo, &ans, status, codes, names);
        ans
    }

    /// (a) status, (b) code, (c) message names one of `names` (if any), (d) nothing tagged,
    /// no upload session left open, (e) hoist alive and a valid push still works.
    fn check_rejected(
        &mut self,
        case: &str,
        repo: &str,
        ans: &Answer,
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) {
        assert!(
            ans.status == status && codes.contains(&ans.code()),
            "{case}: expected {status} {codes:?}, got {} {:?}: {}",
            ans.status,
            ans.code(),
            ans.body
        );
        let message = ans.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.is_empty(),
            "{case}: error without a message: {}",
            ans.body
        );
        if !names.is_empty() {
            assert!(
                names.iter().any(|n| message.contains(n)),
                "{case}: message {message:?} names none of {names:?}"
            );
        }
        self.assert_nothing_tagged(case, repo);
        self.assert_no_open_uploads(case);
        self.assert_still_serves(case);
    }

    fn assert_nothing_tagged(&self, case: &str, repo: &str) {
        assert!(
            self.reg.tags(repo).is_empty(),
            "{case}: {repo} was tagged: {:?}",
            self.reg.tags(repo)
        );
        for r in self.reg.catalog() {
            assert!(
                self.reg.tags(&r).is_empty(),
                "{case}: {r} was tagged: {:?}",
                self.reg.tags(&r)
            );
        }
    }

    /// "open upload sessions are cancelled" (docs/API.md).
    fn assert_no_open_uploads(&self, case: &str) {
        self.reg
            .assert_no_open_uploads(case, Duration::from_secs(10));
    }

    fn assert_still_serves(&mut self, case: &str) {
        assert!(self.hoist.alive(), "{case}: hoist died");
        let repo = format!("hostile/{case}-after");
        self.accept(&format!("/push/{repo}:t"), &Oci::valid("after").archive());
        assert_eq!(
            self.reg.tags(&repo),
            ["t"],
            "{case}: valid push afterwards was not tagged"
        );
    }
}

const REQUEST_TOO_LARGE: &[&str] = &["REQUEST_TOO_LARGE"];
const DECOMPRESSED_TOO_LARGE: &[&str] = &["DECOMPRESSED_TOO_LARGE"];
const TOO_MANY_ENTRIES: &[&str] = &["TOO_MANY_ENTRIES"];
const METADATA_TOO_LARGE: &[&str] = &["METADATA_TOO_LARGE"];
const ENTRY_PATH_INVALID: &[&str] = &["ENTRY_PATH_INVALID"];
const LINK_INVALID: &[&str] = &["LINK_INVALID"];
const ENTRY_HEADER_INVALID: &[&str] = &["ENTRY_HEADER_INVALID"];
const ARCHIVE_INVALID: &[&str] = &["ARCHIVE_INVALID"];
const DUPLICATE_ENTRY: &[&str] = &["DUPLICATE_ENTRY"];
const DIGEST_MISMATCH: &[&str] = &["DIGEST_MISMATCH"];
const BLOB_MISSING: &[&str] = &["BLOB_MISSING"];
const MANIFEST_INVALID: &[&str] = &["MANIFEST_INVALID"];
/// API.md: unparsable or ambiguous metadata JSON is MANIFEST_INVALID.
const BAD_JSON: &[&str] = &["MANIFEST_INVALID"];
const UNSUPPORTED_FORMAT: &[&str] = &["UNSUPPORTED_FORMAT"];
const REFERENCE_INVALID: &[&str] = &["REFERENCE_INVALID"];
const REFERENCE_MISSING: &[&str] = &["REFERENCE_MISSING"];
const REFERENCE_AMBIGUOUS: &[&str] = &["REFERENCE_AMBIGUOUS"];

/// A tar whose first entries come from `hostile`, followed by a valid OCI layout.
fn before_valid_oci(hostile: impl FnOnce(&mut Tar), seed: &str) -> Vec<u8> {
    let mut t = Tar::new();
    hostile(&mut t);
    t.files(&Oci::valid(seed).files());
    t.finish()
}

/// A docker image (no RepoTags) whose only layer is listed in manifest.json as `layer_entry`;
/// `entries` writes the layer entries (files and links), then config and manifest.json follow.
fn docker_layer_via(layer_entry: &str, entries: impl FnOnce(&mut Tar, &[u8])) -> Vec<u8> {
    let mut d = Docker::valid("linked", Value::Null);
    d.manifest[0]["Layers"] = json!([layer_entry]);
    let layer = d.layers[0].1.clone();
    let mut t = Tar::new();
    entries(&mut t, &layer);
    t.files(&d.metadata_files());
    t.finish()
}

/// A valid image whose layer is ~1 MiB of incompressible bytes, so that cutting the body in
/// half lands inside a blob hoist is uploading.
fn big_oci(seed: &str) -> Vec<u8> {
    let tar = Tar::new()
        .file("big.bin", &noise(0x5eed, MIB as usize))
        .file("seed.txt", seed.as_bytes())
        .finish();
    Oci::from_layer_tar(tar).archive()
}

/// Sends request headers claiming 10 MB and half of a valid archive.
fn send_half(hoist: &Hoist, path: &str) -> TcpStream {
    let body = big_oci("half");
    let mut s = TcpStream::connect(hoist.addr()).expect("connect to hoist");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: hoist\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    s
}

// ---------------------------------------------------------------------------------------------
// Valid images: what the hostile variants are built from
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_oci_layout_is_accepted() {
    let env = Env::new();
    let oci = Oci::valid("valid");
    let ans = env.accept("/push/hostile/valid-oci:t", &oci.archive());
    assert_eq!(env.reg.tags("hostile/valid-oci"), ["t"]);
    assert_eq!(
        ans.body["images"][0]["digest"],
        json!(oci.manifest_digest()),
        "{ans:?}"
    );
    assert!(env.reg.has_blob("hostile/valid-oci", &oci.layer_digest(0)));
}

#[test]
fn valid_gzip_oci_layout_is_accepted() {
    let env = Env::new();
    env.accept(
        "/push/hostile/valid-gz:t",
        &gzip(&Oci::valid("valid").archive()),
    );
    assert_eq!(env.reg.tags("hostile/valid-gz"), ["t"]);
}

#[test]
fn valid_docker_archive_is_accepted() {
    let env = Env::new();
    let docker = Docker::valid("valid", json!(["hostile/named:1"]));
    env.accept("/push/hostile/valid-docker:t", &docker.archive());
    assert_eq!(env.reg.tags("hostile/valid-docker"), ["t"]);
}

#[test]
fn valid_docker_archive_is_accepted_under_its_own_name() {
    let env = Env::new();
    let docker = Docker::valid("valid", json!(["hostile/named:1"]));
    env.accept("/push", &docker.archive());
    assert_eq!(env.reg.tags("hostile/named"), ["1"]);
}

#[test]
fn layer_reached_by_symlink_to_earlier_entry_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .symlink("layer2/layer.tar", "../layer1/layer.tar");
    });
    env.accept("/push/hostile/symlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/symlink-ok"), ["t"]);
}

#[test]
fn layer_reached_by_forward_symlink_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.symlink("layer2/layer.tar", "../layer1/layer.tar")
            .file("layer1/layer.tar", layer);
    });
    env.accept("/push/hostile/forward-symlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/forward-symlink-ok"), ["t"]);
}

#[test]
fn layer_reached_by_hardlink_to_earlier_entry_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .hardlink("layer2/layer.tar", "layer1/layer.tar");
    });
    env.accept("/push/hostile/hardlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/hardlink-ok"), ["t"]);
}

#[test]
fn dot_slash_prefixed_layout_is_accepted() {
    let env = Env::new();
    let files: Vec<_> = Oci::valid("dot")
        .files()
        .into_iter()
        .map(|(n, d)| (format!("./{n}"), d))
        .collect();
    env.accept("/push/hostile/dot-slash-ok:t", &tar_of(&files));
    assert_eq!(env.reg.tags("hostile/dot-slash-ok"), ["t"]);
}

#[test]
fn multi_member_gzip_archive_is_accepted() {
    let env = Env::new();
    let archive = Oci::valid("multi").archive();
    let (a, b) = archive.split_at(archive.len() / 2);
    let mut body = gzip(a);
    body.extend(gzip(b));
    env.accept("/push/hostile/multi-member-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/multi-member-ok"), ["t"]);
}

/// GHSA-3pv8-6f4r-ffg2 / RUSTSEC-2026-0145: a PAX `x` header followed by a GNU `L` long name.
/// The PAX size belongs to the file, not to the `L` entry; a parser that applies it to `L`
/// desyncs and reads the smuggled header (a bogus `index.json`) hidden in the file's data.
#[test]
fn pax_then_gnu_long_name_stays_in_sync() {
    let env = Env::new();
    let oci = Oci::valid("in-sync");
    let long = format!("extra/{}.txt", "l".repeat(150));
    let mut data = header(b"index.json", b'0', 512, b"").to_vec();
    data.extend_from_slice(&[b'{'; 512]);
    let mut t = Tar::new();
    t.pax(b'x', &[("size", b"1024")])
        .long_name(long.as_bytes())
        .entry(&long.as_bytes()[..100], b'0', 1024, b"", &data)
        .files(&oci.files());
    let ans = env.accept("/push/hostile/pax-long-name-ok:t", &t.finish());
    assert_eq!(env.reg.tags("hostile/pax-long-name-ok"), ["t"]);
    assert_eq!(
        ans.body["images"][0]["digest"],
        json!(oci.manifest_digest()),
        "{ans:?}"
    );
}

fn nested_index(absent_platform: bool) -> (Oci, Option<String>) {
    let mut oci = Oci::valid("nested");
    let manifest = oci.manifest_bytes();
    let mut children = vec![json!({
        "mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
        "platform": {"architecture": "amd64", "os": "linux"},
    })];
    let mut absent = None;
    if absent_platform {
        let other = Oci::valid("nested-arm64").manifest_bytes();
        absent = Some(sha256(&other));
        children.push(json!({
            "mediaType": OCI_MANIFEST, "digest": sha256(&other), "size": other.len(),
            "platform": {"architecture": "arm64", "os": "linux"},
        }));
    }
    let inner = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
    )
    .unwrap();
    oci.index["manifests"][0] = json!({
        "mediaType": OCI_INDEX, "digest": sha256(&inner), "size": inner.len(),
        "annotations": {REF_NAME: "1.0"},
    });
    oci.extra_blobs.push(inner);
    (oci, absent)
}

#[test]
fn nested_index_with_every_child_present_is_accepted() {
    let env = Env::new();
    let (oci, _) = nested_index(false);
    env.accept("/push/hostile/nested-ok:t", &oci.archive());
    assert_eq!(env.reg.tags("hostile/nested-ok"), ["t"]);
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

fn padded_oci(seed: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.file("padding.bin", &noise(7, 200 * 1024))
        .files(&Oci::valid(seed).files());
    t.finish()
}

#[test]
fn request_body_over_limit_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__REQUEST_BYTES", "65536")]);
    env.reject(
        "request-too-large",
        &padded_oci("big"),
        413,
        REQUEST_TOO_LARGE,
        &[],
    );
}

#[test]
fn chunked_request_body_over_limit_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__REQUEST_BYTES", "65536")]);
    let ans = push_chunked(
        &env.hoist,
        "/push/hostile/chunked-too-large:t",
        &padded_oci("big"),
    )
    .expect("hoist answered the chunked upload");
    env.check_rejected(
        "chunked-too-large",
        "hostile/chunked-too-large",
        &ans,
        413,
        REQUEST_TOO_LARGE,
        &[],
    );
}

/// 200 MiB of zeros in one tar entry, compressed as it is generated (a few hundred KB).
fn bomb(mut enc: impl Write) {
    let size = 200 * MIB;
    enc.write_all(&header(b"bomb.bin", b'0', size, b""))
        .unwrap();
    let zeros = vec![0u8; MIB as usize];
    for _ in 0..200 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&Oci::valid("bomb").archive()).unwrap();
}

#[test]
fn gzip_bomb_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__DECOMPRESSED_BYTES", "10000000")]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    bomb(&mut enc);
    let body = enc.finish().unwrap();
    assert!(body.len() < 2 * MIB as usize);
    env.reject("gzip-bomb", &body, 413, DECOMPRESSED_TOO_LARGE, &[]);
}

#[test]
fn zstd_bomb_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__DECOMPRESSED_BYTES", "10000000")]);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    bomb(&mut enc);
    let body = enc.finish().unwrap();
    assert!(body.len() < 2 * MIB as usize);
    env.reject("zstd-bomb", &body, 413, DECOMPRESSED_TOO_LARGE, &[]);
}

/// A gzip archive whose first entry is 80 MiB of zeros in a file hoist reads and drops (a
/// legacy `<id>/json`), then a valid image: about 1000:1 once past 64 MiB.
fn compressible_archive() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let size = 80 * MIB;
    enc.write_all(&header(b"pad/json", b'0', size, b""))
        .unwrap();
    let zeros = vec![0u8; MIB as usize];
    for _ in 0..80 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&Oci::valid("ratio").archive()).unwrap();
    enc.finish().unwrap()
}

/// The archive-level branch of DECOMPRESSED_TOO_LARGE: under the size limit, over
/// `limits.max_ratio` (default 200:1) once 64 MiB are decompressed.
#[test]
fn archive_over_max_ratio_is_rejected() {
    let mut env = Env::new();
    let ans = env.reject(
        "archive-ratio",
        &compressible_archive(),
        413,
        DECOMPRESSED_TOO_LARGE,
        &["limits.max_ratio"],
    );
    assert!(ans.message().contains("200:1"), "{ans:?}");
}

/// `limits.max_ratio` raised: the same archive goes through.
#[test]
fn max_ratio_setting_lets_a_compressible_archive_through() {
    let env = Env::with(&[("HOIST_LIMITS__MAX_RATIO", "5000")]);
    env.accept("/push/hostile/ratio-ok:t", &compressible_archive());
    assert_eq!(env.reg.tags("hostile/ratio-ok"), ["t"]);
}

/// An entry name of 91 bytes: fine by default (4096), ENTRY_PATH_INVALID under
/// `limits.path_bytes = 80` (which still admits the 77-byte `blobs/sha256/<hex>` names).
#[test]
fn entry_name_over_path_bytes_is_rejected() {
    let name = format!("long/{}", "n".repeat(86));
    let body = before_valid_oci(
        |t| {
            t.file(&name, b"x");
        },
        "path-bytes",
    );
    Env::new().accept("/push/hostile/path-bytes-ok:t", &body);
    let mut env = Env::with(&[("HOIST_LIMITS__PATH_BYTES", "80")]);
    env.reject("path-bytes", &body, 400, ENTRY_PATH_INVALID, &["too long"]);
}

/// `limits.path_bytes` raised to 8192: a docker archive whose layer sits at a 5000-byte path
/// (a PAX `path`) and is listed under that path in manifest.json must go through.
#[test]
fn raised_path_bytes_applies_to_layer_references() {
    let env = Env::with(&[("HOIST_LIMITS__PATH_BYTES", "8192")]);
    let long = format!("{}/layer.tar", "d".repeat(4990));
    let body = docker_layer_via(&long, |t, layer| {
        t.pax(b'x', &[("path", long.as_bytes())]).entry(
            b"placeholder",
            b'0',
            layer.len() as u64,
            b"",
            layer,
        );
    });
    env.accept("/push/hostile/long-path:t", &body);
    assert_eq!(env.reg.tags("hostile/long-path"), ["t"]);
}

#[test]
fn too_many_entries_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__ENTRIES", "10")]);
    let body = before_valid_oci(
        |t| {
            for i in 0..50 {
                t.file(&format!("junk/{i:02}.txt"), b"x");
            }
        },
        "entries",
    );
    env.reject("too-many-entries", &body, 413, TOO_MANY_ENTRIES, &[]);
}

const METADATA_LIMIT: &[(&str, &str)] = &[("HOIST_LIMITS__METADATA_FILE_BYTES", "65536")];

fn pad_json(mut bytes: Vec<u8>, to: usize) -> Vec<u8> {
    bytes.resize(to, b' '); // trailing whitespace: still the same, valid JSON
    bytes
}

#[test]
fn oversized_manifest_json_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let d = Docker::valid("big-manifest-json", Value::Null);
    let mut files = d.files();
    let last = files.last_mut().unwrap();
    last.1 = pad_json(last.1.clone(), 70_000);
    env.reject(
        "big-manifest-json",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &["manifest.json"],
    );
}

#[test]
fn oversized_index_json_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let mut files = Oci::valid("big-index").files();
    let last = files.last_mut().unwrap();
    assert_eq!(last.0, "index.json");
    last.1 = pad_json(last.1.clone(), 70_000);
    env.reject(
        "big-index-json",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &["index.json"],
    );
}

#[test]
fn oversized_config_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let mut d = Docker::valid("big-config", Value::Null);
    d.raw_config = Some(pad_json(d.config_bytes(), 70_000));
    d.relink_config();
    let name = d.config_name();
    env.reject(
        "big-config",
        &d.archive(),
        413,
        METADATA_TOO_LARGE,
        &[&name[..12]],
    );
}

#[test]
fn metadata_over_total_limit_is_rejected() {
    let mut env = Env::with(&[
        ("HOIST_LIMITS__METADATA_FILE_BYTES", "65536"),
        ("HOIST_LIMITS__METADATA_TOTAL_BYTES", "100000"),
    ]);
    let mut d = Docker::valid("big-total", Value::Null);
    d.raw_config = Some(pad_json(d.config_bytes(), 60_000));
    d.relink_config();
    let mut files = d.files();
    let last = files.last_mut().unwrap();
    last.1 = pad_json(last.1.clone(), 60_000);
    env.reject(
        "metadata-total",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &[],
    );
}

// ---------------------------------------------------------------------------------------------
// Entry paths
// ---------------------------------------------------------------------------------------------

fn bad_name(case: &str, name: &[u8], names: &[&str]) {
    let mut env = Env::new();
    let body = before_valid_oci(
        |t| {
            t.entry(name, b'0', 1, b"", b"x");
        },
        case,
    );
    env.reject(case, &body, 400, ENTRY_PATH_INVALID, names);
}

#[test]
fn absolute_entry_name_is_rejected() {
    bad_name("absolute-path", b"/tmp/hostile.txt", &["tmp/hostile.txt"]);
}

#[test]
fn dot_dot_entry_name_is_rejected() {
    bad_name("dot-dot-path", b"../escape.txt", &["../escape.txt"]);
}

#[test]
fn inner_dot_dot_escaping_entry_name_is_rejected() {
    bad_name(
        "inner-dot-dot-path",
        b"a/../../escape.txt",
        &["a/../../escape.txt"],
    );
}

#[test]
fn backslash_entry_name_is_rejected() {
    bad_name("backslash-path", b"dir\\escape.txt", &["escape.txt"]);
}

#[test]
fn non_utf8_entry_name_is_rejected() {
    bad_name("non-utf8-path", b"bad-\xff-name.txt", &["bad-"]);
}

#[test]
fn empty_entry_name_is_rejected() {
    bad_name("empty-path", b"", &[]);
}

#[test]
fn nul_in_pax_path_is_rejected() {
    let mut env = Env::new();
    let body = before_valid_oci(
        |t| {
            t.pax(b'x', &[("path", b"nul\0name.txt")])
                .file("placeholder.txt", b"x");
        },
        "nul-path",
    );
    env.reject("nul-path", &body, 400, ENTRY_PATH_INVALID, &["nul"]);
}

// ---------------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------------

fn bad_link(case: &str, entries: impl FnOnce(&mut Tar, &[u8]), names: &[&str]) {
    let mut env = Env::new();
    let body = docker_layer_via("a/layer.tar", entries);
    env.reject(case, &body, 400, LINK_INVALID, names);
}

#[test]
fn symlink_escaping_archive_is_rejected() {
    bad_link(
        "symlink-escape",
        |t, layer| {
            t.file("b/layer.tar", layer)
                .symlink("a/layer.tar", "../../etc/passwd");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn absolute_symlink_is_rejected() {
    bad_link(
        "symlink-absolute",
        |t, layer| {
            t.file("b/layer.tar", layer)
                .symlink("a/layer.tar", "/etc/passwd");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn symlink_cycle_is_rejected() {
    bad_link(
        "symlink-cycle",
        |t, _| {
            t.symlink("a/layer.tar", "../b/layer.tar")
                .symlink("b/layer.tar", "../a/layer.tar");
        },
        &["a/layer.tar", "b/layer.tar"],
    );
}

#[test]
fn dangling_symlink_layer_is_rejected() {
    bad_link(
        "symlink-dangling",
        |t, _| {
            t.symlink("a/layer.tar", "../missing/layer.tar");
        },
        &["a/layer.tar", "missing/layer.tar"],
    );
}

#[test]
fn symlink_to_directory_is_rejected() {
    bad_link(
        "symlink-to-dir",
        |t, _| {
            t.dir("somedir/").symlink("a/layer.tar", "../somedir");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn hardlink_to_later_entry_is_rejected() {
    bad_link(
        "hardlink-forward",
        |t, layer| {
            t.hardlink("a/layer.tar", "b/layer.tar")
                .file("b/layer.tar", layer);
        },
        &["a/layer.tar"],
    );
}

#[test]
fn hardlink_to_missing_entry_is_rejected() {
    bad_link(
        "hardlink-missing",
        |t, _| {
            t.hardlink("a/layer.tar", "missing/layer.tar");
        },
        &["a/layer.tar", "missing/layer.tar"],
    );
}

// ---------------------------------------------------------------------------------------------
// Tar headers
// ---------------------------------------------------------------------------------------------

fn bad_header(case: &str, hostile: impl FnOnce(&mut Tar), codes: &[&str], names: &[&str]) {
    let mut env = Env::new();
    let body = before_valid_oci(hostile, case);
    env.reject(case, &body, 400, codes, names);
}

/// CVE-2026-33055: PAX size 1024 vs ustar size 512; the data is 1024 bytes (the PAX reading).
#[test]
fn pax_size_disagreeing_with_ustar_size_is_rejected() {
    bad_header(
        "pax-size-mismatch",
        |t| {
            t.pax(b'x', &[("size", b"1024")])
                .entry(b"pad.bin", b'0', 512, b"", &[b'p'; 1024]);
        },
        ENTRY_HEADER_INVALID,
        &["pad.bin"],
    );
}

/// TARmageddon (CVE-2025-62518): PAX size 2048, ustar size 0; the data hides a tar header that
/// a parser honouring the ustar size would read as the next entry.
#[test]
fn pax_size_with_zero_ustar_size_is_rejected() {
    let mut smuggled = header(b"index.json", b'0', 512, b"").to_vec();
    smuggled.extend_from_slice(&[b'{'; 512]);
    smuggled.extend_from_slice(&[b'A'; 1024]);
    bad_header(
        "pax-size-zero",
        |t| {
            t.pax(b'x', &[("size", b"2048")])
                .entry(b"pad.bin", b'0', 0, b"", &smuggled);
        },
        ENTRY_HEADER_INVALID,
        &["pad.bin"],
    );
}

#[test]
fn global_pax_header_is_rejected() {
    bad_header(
        "pax-global",
        |t| {
            t.pax(b'g', &[("path", b"manifest.json")]);
        },
        ENTRY_HEADER_INVALID,
        &[],
    );
}

/// A PAX `x` entry whose record's length prefix (30) is not its length (12).
fn malformed_pax(t: &mut Tar) {
    let body = b"30 size=100\n";
    t.entry(b"PaxHeaders/pad.bin", b'x', body.len() as u64, b"", body)
        .file("pad.bin", &[b'p'; 16]);
}

/// RUSTSEC-2026-0066: a PAX record whose length prefix is wrong must not be skipped silently.
/// Malformed tar (ARCHIVE_INVALID) and invalid entry header are both fair names for it. The
/// entry comes second, after `oci-layout`, so this pins the in-stream check.
#[test]
fn malformed_pax_record_is_rejected() {
    let mut env = Env::new();
    let files = Oci::valid("pax-malformed").files();
    let mut t = Tar::new();
    t.files(&files[..1]);
    malformed_pax(&mut t);
    t.files(&files[1..]);
    env.reject(
        "pax-malformed",
        &t.finish(),
        400,
        &["ENTRY_HEADER_INVALID", "ARCHIVE_INVALID"],
        &[],
    );
}

/// The same bad entry first: the first block is a well-formed ustar header, so the upload *is*
/// a tar (a malformed one), not an unsupported format.
#[test]
fn malformed_first_entry_is_not_called_unsupported_format() {
    bad_header(
        "pax-malformed-first",
        malformed_pax,
        &["ENTRY_HEADER_INVALID", "ARCHIVE_INVALID"],
        &[],
    );
}

#[test]
fn sparse_entry_is_rejected() {
    let mut b = header(b"sparse.bin", b'S', 512, b"");
    b[257..265].copy_from_slice(b"ustar  \0"); // GNU magic
    // A well-formed map: a 3.5 KiB hole, then 512 data bytes, ending at the real size.
    put_octal(&mut b[386..398], 3584); // sparse[0].offset
    put_octal(&mut b[398..410], 512); // sparse[0].numbytes
    put_octal(&mut b[483..495], 4096); // realsize
    seal(&mut b);
    bad_header(
        "sparse",
        |t| {
            t.block(&b).data(&[b's'; 512]);
        },
        ENTRY_HEADER_INVALID,
        &["sparse.bin"],
    );
}

#[test]
fn device_entry_is_rejected() {
    let mut b = header(b"console-device", b'3', 0, b"");
    put_octal(&mut b[329..337], 5);
    put_octal(&mut b[337..345], 1);
    seal(&mut b);
    bad_header(
        "device",
        |t| {
            t.block(&b);
        },
        ENTRY_HEADER_INVALID,
        &["console-device"],
    );
}

#[test]
fn fifo_entry_is_rejected() {
    bad_header(
        "fifo",
        |t| {
            t.entry(b"a-fifo", b'6', 0, b"", b"");
        },
        ENTRY_HEADER_INVALID,
        &["a-fifo"],
    );
}

#[test]
fn unknown_entry_type_is_rejected() {
    bad_header(
        "unknown-type",
        |t| {
            t.entry(b"mystery.bin", b'Z', 16, b"", &[b'm'; 16]);
        },
        ENTRY_HEADER_INVALID,
        &["mystery.bin"],
    );
}

// ---------------------------------------------------------------------------------------------
// Duplicates
// ---------------------------------------------------------------------------------------------

#[test]
fn manifest_json_twice_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("dup-manifest", json!(["hostile/first:1"]));
    let mut files = d.files();
    d.manifest[0]["RepoTags"] = json!(["hostile/second:1"]);
    files.push(("manifest.json".into(), d.manifest_bytes()));
    env.reject(
        "dup-manifest-json",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &["manifest.json"],
    );
    assert!(env.reg.tags("hostile/first").is_empty() && env.reg.tags("hostile/second").is_empty());
}

#[test]
fn dot_slash_manifest_json_beside_manifest_json_is_rejected() {
    let mut env = Env::new();
    let d = Docker::valid("dup-dot-manifest", Value::Null);
    let mut files = d.files();
    let (_, manifest) = files.last().unwrap().clone();
    files.insert(files.len() - 1, ("./manifest.json".into(), manifest));
    env.reject(
        "dup-dot-manifest-json",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &["manifest.json"],
    );
}

#[test]
fn layer_path_twice_with_different_bytes_is_rejected() {
    let mut env = Env::new();
    let body = docker_layer_via("layer1/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .file("layer1/layer.tar", &layer_tar("impostor"));
    });
    env.reject(
        "dup-layer",
        &body,
        400,
        DUPLICATE_ENTRY,
        &["layer1/layer.tar"],
    );
}

#[test]
fn blob_path_twice_with_different_bytes_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("dup-blob");
    let mut files = oci.files();
    let path = blob_path(&oci.layer_digest(0));
    let at = files.iter().position(|(n, _)| *n == path).unwrap();
    files.insert(at + 1, (path, gzip(&layer_tar("impostor"))));
    env.reject(
        "dup-blob",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &[&short(&oci.layer_digest(0))],
    );
}

// ---------------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------------

#[test]
fn blob_not_matching_its_name_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("mismatch");
    let named = oci.layer_digest(0);
    let mut files = oci.files();
    let path = blob_path(&named);
    files.iter_mut().find(|(n, _)| *n == path).unwrap().1 = gzip(&layer_tar("impostor"));
    env.reject(
        "blob-digest-mismatch",
        &tar_of(&files),
        400,
        DIGEST_MISMATCH,
        &[&short(&named)],
    );
}

#[test]
fn descriptor_size_not_matching_blob_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("size-mismatch");
    let size = oci.manifest["layers"][0]["size"].as_u64().unwrap();
    oci.manifest["layers"][0]["size"] = json!(size + 7);
    oci.relink_index();
    env.reject(
        "descriptor-size",
        &oci.archive(),
        400,
        DIGEST_MISMATCH,
        &[&short(&oci.layer_digest(0))],
    );
}

#[test]
fn docker_layer_not_matching_diff_id_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("diffid", Value::Null);
    let expected = sha256(&d.layers[0].1);
    d.layers[0].1 = layer_tar("impostor");
    let actual = sha256(&d.layers[0].1);
    env.reject(
        "docker-diff-id",
        &d.archive(),
        400,
        DIGEST_MISMATCH,
        &[&short(&expected), &short(&actual)],
    );
}

#[test]
fn oci_layer_not_matching_diff_id_is_rejected() {
    // Compressed OCI layers are checked against their digest always, against the config's
    // diff_ids when asked to (it costs an inflate of every layer).
    let mut env = Env::with(&[("HOIST_VERIFY_LAYER_DIFF_IDS", "true")]);
    let mut oci = Oci::valid("oci-diffid");
    let wrong = sha256(&layer_tar("impostor"));
    oci.config["rootfs"]["diff_ids"] = json!([wrong]);
    oci.relink();
    let names = [short(&wrong), short(&oci.layer_digest(0))];
    env.reject(
        "oci-diff-id",
        &oci.archive(),
        400,
        DIGEST_MISMATCH,
        &[&names[0], &names[1]],
    );
}

#[test]
fn docker_layer_count_not_matching_diff_ids_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("count", Value::Null);
    d.config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(sha256(b"another layer")));
    d.relink_config();
    env.reject(
        "docker-layer-count",
        &d.archive(),
        400,
        MANIFEST_INVALID,
        &[],
    );
}

#[test]
fn oci_layer_count_not_matching_diff_ids_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("oci-count");
    oci.config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(sha256(b"another layer")));
    oci.relink();
    env.reject(
        "oci-layer-count",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[],
    );
}

/// CVE-2024-3727: a digest string used as a path or URL must be validated first.
#[test]
fn descriptor_with_malformed_digest_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("bad-digest");
    oci.manifest["layers"][0]["digest"] = json!("sha256:../../../etc/passwd");
    oci.relink_index();
    let names = [short(&oci.manifest_digest()), "etc/passwd".to_string()];
    env.reject(
        "malformed-digest",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}

// ---------------------------------------------------------------------------------------------
// Completeness
// ---------------------------------------------------------------------------------------------

#[test]
fn layer_absent_from_archive_and_registry_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("missing-layer");
    let path = blob_path(&oci.layer_digest(0));
    let files: Vec<_> = oci
        .files()
        .into_iter()
        .filter(|(n, _)| *n != path)
        .collect();
    env.reject(
        "missing-layer",
        &tar_of(&files),
        400,
        BLOB_MISSING,
        &[&short(&oci.layer_digest(0))],
    );
}

#[test]
fn docker_layer_absent_from_archive_is_rejected() {
    let mut env = Env::new();
    let d = Docker::valid("missing-docker-layer", Value::Null);
    let name = d.layers[0].0.clone();
    env.reject(
        "missing-docker-layer",
        &tar_of(&d.metadata_files()),
        400,
        BLOB_MISSING,
        &[&name[..12]],
    );
}

#[test]
fn manifest_listed_in_index_but_absent_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("missing-manifest");
    let path = blob_path(&oci.manifest_digest());
    let files: Vec<_> = oci
        .files()
        .into_iter()
        .filter(|(n, _)| *n != path)
        .collect();
    env.reject(
        "missing-manifest",
        &tar_of(&files),
        400,
        BLOB_MISSING,
        &[&short(&oci.manifest_digest())],
    );
}

#[test]
fn index_child_manifest_absent_is_rejected() {
    let mut env = Env::new();
    let (oci, absent) = nested_index(true);
    let absent = short(&absent.unwrap());
    env.reject(
        "missing-child-manifest",
        &oci.archive(),
        400,
        BLOB_MISSING,
        &[&absent],
    );
}

// ---------------------------------------------------------------------------------------------
// JSON documents
// ---------------------------------------------------------------------------------------------

#[test]
fn manifest_json_not_json_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("not-json", Value::Null).files();
    files.last_mut().unwrap().1 = b"this is not json".to_vec();
    env.reject(
        "manifest-json-not-json",
        &tar_of(&files),
        400,
        BAD_JSON,
        &["manifest.json"],
    );
}

#[test]
fn config_not_json_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("config-not-json");
    oci.raw_config = Some(b"{\"architecture\": ".to_vec());
    oci.relink();
    env.reject(
        "config-not-json",
        &oci.archive(),
        400,
        BAD_JSON,
        &[&short(&oci.config_digest())],
    );
}

#[test]
fn null_manifests_in_index_json_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("null-manifests");
    let files: Vec<_> = {
        oci.index["manifests"] = Value::Null;
        oci.files()
    };
    env.reject(
        "null-manifests",
        &tar_of(&files),
        400,
        MANIFEST_INVALID,
        &["index.json"],
    );
}

/// CVE-2021-41190: a document that is both an index and a manifest.
#[test]
fn index_json_with_layers_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("index-layers");
    oci.index["layers"] = oci.manifest["layers"].clone();
    env.reject(
        "index-with-layers",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &["index.json"],
    );
}

/// CVE-2021-41190, the other way round: a manifest that also lists manifests.
#[test]
fn manifest_with_manifests_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("manifest-manifests");
    oci.manifest["manifests"] = oci.index["manifests"].clone();
    oci.relink_index();
    env.reject(
        "manifest-with-manifests",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

/// image-spec: a descriptor's `mediaType` is REQUIRED.
#[test]
fn descriptor_without_media_type_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("no-media-type");
    oci.index["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("mediaType");
    let names = ["index.json".to_string(), short(&oci.manifest_digest())];
    env.reject(
        "descriptor-no-media-type",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}

#[test]
fn manifest_media_type_not_matching_descriptor_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("media-type-mismatch");
    oci.manifest["mediaType"] = json!(DOCKER_MANIFEST);
    oci.relink_index();
    let names = ["index.json".to_string(), short(&oci.manifest_digest())];
    env.reject(
        "media-type-mismatch",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}

#[test]
fn manifest_with_unknown_schema_version_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("schema-version");
    oci.manifest["schemaVersion"] = json!(3);
    oci.relink_index();
    env.reject(
        "schema-version",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

/// Go keeps the last of duplicate keys, some parsers the first: a parser differential.
#[test]
fn manifest_with_duplicate_keys_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("dup-keys");
    let text = String::from_utf8(oci.manifest_bytes()).unwrap();
    oci.raw_manifest = Some(text.replacen('{', "{\"layers\":[],", 1).into_bytes());
    oci.relink_index();
    env.reject(
        "manifest-dup-keys",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

#[test]
fn manifest_json_with_duplicate_keys_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("dup-keys-docker", Value::Null).files();
    let text = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
    files.last_mut().unwrap().1 = text.replacen("[{", "[{\"Layers\":[],", 1).into_bytes();
    env.reject(
        "manifest-json-dup-keys",
        &tar_of(&files),
        400,
        MANIFEST_INVALID,
        &["manifest.json"],
    );
}

#[test]
fn deeply_nested_manifest_json_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("deep", Value::Null).files();
    let text = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    files.last_mut().unwrap().1 = text
        .replacen("[{", &format!("[{{\"Deep\":{deep},"), 1)
        .into_bytes();
    env.reject(
        "deep-json",
        &tar_of(&files),
        400,
        BAD_JSON,
        &["manifest.json"],
    );
}

// ---------------------------------------------------------------------------------------------
// Archive structure
// ---------------------------------------------------------------------------------------------

#[test]
fn random_bytes_are_unsupported() {
    let mut env = Env::new();
    env.reject(
        "random-bytes",
        &noise(42, 64 * 1024),
        415,
        UNSUPPORTED_FORMAT,
        &[],
    );
}

#[test]
fn empty_body_is_unsupported() {
    let mut env = Env::new();
    env.reject("empty-body", b"", 415, UNSUPPORTED_FORMAT, &[]);
}

#[test]
fn tar_without_image_metadata_is_unsupported() {
    let mut env = Env::new();
    env.reject(
        "rootfs-tar",
        &layer_tar("just a rootfs"),
        415,
        UNSUPPORTED_FORMAT,
        &[],
    );
}

#[test]
fn archive_truncated_inside_layer_is_rejected() {
    let mut env = Env::new();
    let archive = Docker::valid("truncated", Value::Null).archive();
    // The layer is the first entry: header at 0, data from 512 for about 2 KiB.
    env.reject(
        "truncated-in-layer",
        &archive[..512 + 1000],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn archive_truncated_inside_header_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("truncated-header");
    let index_len = oci.index_bytes().len().div_ceil(BLOCK) * BLOCK;
    let archive = oci.archive();
    let index_header = archive.len() - 2 * BLOCK - index_len - BLOCK;
    assert_eq!(&archive[index_header..index_header + 10], b"index.json");
    env.reject(
        "truncated-in-header",
        &archive[..index_header + 256],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn truncated_gzip_stream_is_rejected() {
    let mut env = Env::new();
    let body = gzip(&Oci::valid("truncated-gzip").archive());
    env.reject(
        "truncated-gzip",
        &body[..body.len() / 2],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn trailing_garbage_after_gzip_stream_is_rejected() {
    let mut env = Env::new();
    let mut body = gzip(&Oci::valid("trailing-garbage").archive());
    body.extend(noise(9, 1000));
    env.reject("gzip-trailing-garbage", &body, 400, ARCHIVE_INVALID, &[]);
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

#[test]
fn uppercase_repository_in_url_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("upper").archive();
    env.reject_at(
        "/push/UPPER/case:t",
        "UPPER/case",
        "url-upper",
        &body,
        400,
        REFERENCE_INVALID,
        &[],
    );
}

#[test]
fn invalid_tag_in_url_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("bad-tag").archive();
    env.reject_at(
        "/push/hostile/bad-tag:-bad",
        "hostile/bad-tag",
        "url-bad-tag",
        &body,
        400,
        REFERENCE_INVALID,
        &["-bad"],
    );
}

#[test]
fn invalid_tag_in_query_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("bad-query-tag").archive();
    env.reject_at(
        "/push/hostile/bad-query:t?tag=-bad",
        "hostile/bad-query",
        "query-bad-tag",
        &body,
        400,
        REFERENCE_INVALID,
        &["-bad"],
    );
}

#[test]
fn invalid_repo_tag_in_archive_is_rejected() {
    let mut env = Env::new();
    let body = Docker::valid("bad-repo-tag", json!(["hostile/BAD:1"])).archive();
    env.reject_at(
        "/push",
        "hostile/BAD",
        "repo-tags-invalid",
        &body,
        400,
        REFERENCE_INVALID,
        &["hostile/BAD"],
    );
}

#[test]
fn unnamed_image_without_url_reference_is_rejected() {
    let mut env = Env::new();
    let body = Docker::valid("no-name", Value::Null).archive();
    env.reject_at(
        "/push",
        "hostile/no-name",
        "no-name",
        &body,
        400,
        REFERENCE_MISSING,
        &[],
    );
}

#[test]
fn untagged_image_without_url_tag_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("no-tag");
    oci.index["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    env.reject_at(
        "/push/hostile/no-tag",
        "hostile/no-tag",
        "no-tag",
        &oci.archive(),
        400,
        REFERENCE_MISSING,
        &[],
    );
}

#[test]
fn url_tag_with_several_images_is_ambiguous() {
    let mut env = Env::new();
    let a = Docker::valid("first", json!(["hostile/first:1"]));
    let b = Docker::valid("second", json!(["hostile/second:1"]));
    let mut files = a.layers.clone();
    files.extend(b.layers.clone());
    files.push((a.config_name(), a.config_bytes()));
    files.push((b.config_name(), b.config_bytes()));
    let both = json!([a.manifest[0], b.manifest[0]]);
    files.push(("manifest.json".into(), serde_json::to_vec(&both).unwrap()));
    env.reject("ambiguous", &tar_of(&files), 400, REFERENCE_AMBIGUOUS, &[]);
}

// ---------------------------------------------------------------------------------------------
// Clients that go away
// ---------------------------------------------------------------------------------------------

/// Waits (10 s at most) until the registry's storage holds an open upload session.
fn wait_for_open_session(env: &Env, case: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open = env.reg.open_uploads();
        if !open.is_empty() {
            return open;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{case}: no upload session was ever opened, so the checks below would prove nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The "no open upload sessions" check is not vacuous: it sees the session of a push held
/// in the middle of its layer, and sees it closed once the push completes.
#[test]
fn open_upload_check_sees_a_live_session() {
    let env = Env::new();
    let body = big_oci("live");
    let half = body.len() / 2;
    let mut s = support::hold_upload(
        &env.hoist,
        "/push/hostile/live:t",
        body.len(),
        &body[..half],
    );
    let open = wait_for_open_session(&env, "live");
    assert!(
        open.iter().any(|p| p.contains("hostile/live/_uploads/")),
        "{open:?}"
    );
    s.write_all(&body[half..]).unwrap();
    let ans = read_answer(&mut s).expect("hoist answered");
    assert_eq!(ans.status, 201, "{ans:?}");
    env.reg
        .assert_no_open_uploads("live", Duration::from_secs(10));
    assert_eq!(env.reg.tags("hostile/live"), ["t"]);
}

/// A client that disconnects while its layer is being uploaded: once the session is open,
/// the client goes away; the session must be cancelled and nothing tagged.
#[test]
fn client_disconnecting_mid_upload_cancels_its_session() {
    let mut env = Env::new();
    let s = send_half(&env.hoist, "/push/hostile/disconnect:t");
    wait_for_open_session(&env, "disconnect");
    drop(s);
    env.assert_nothing_tagged("disconnect", "hostile/disconnect");
    env.assert_no_open_uploads("disconnect");
    let cancels = env
        .reg
        .cancels_within("hostile/disconnect", Duration::from_secs(5));
    assert!(
        !cancels.is_empty() && cancels.iter().all(|(_, d)| matches!(d, Some(200..=299))),
        "sessions and their DELETE status: {cancels:?}"
    );
    env.assert_still_serves("disconnect");
}

/// A client that half-closes its connection before the body it announced is complete is
/// answered 400 BODY_INCOMPLETE (it can still read), nothing is tagged and no session stays.
#[test]
fn half_closed_upload_is_answered_body_incomplete() {
    let mut env = Env::new();
    let mut s = send_half(&env.hoist, "/push/hostile/half-closed:t");
    wait_for_open_session(&env, "half-closed");
    s.shutdown(Shutdown::Write).unwrap();
    let ans = read_answer(&mut s).expect("hoist answered the half-closed upload");
    drop(s);
    env.check_rejected(
        "half-closed",
        "hostile/half-closed",
        &ans,
        400,
        &["BODY_INCOMPLETE"],
        &[],
    );
}
