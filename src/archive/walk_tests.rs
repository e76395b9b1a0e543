//! The tar walk in process: one broken thing per archive, the error code it must give. The
//! end-to-end suite (tests/hostile/) pushes the same shapes through a real server; these
//! pin the walk itself, fast.

use std::io::Cursor;

use super::{Item, Walker};
use crate::archive::ArchiveError;
use crate::limits::Limits;

const BLOCK: usize = 512;

/// A ustar header block with a valid checksum.
fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn entry(name: &str, typeflag: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut out = header(
        name.as_bytes(),
        typeflag,
        data.len() as u64,
        link.as_bytes(),
    );
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend(vec![0u8; 2 * BLOCK]);
    out
}

/// Walks to the end; the first error, or the paths seen.
async fn walk(bytes: Vec<u8>, limits: Limits) -> Result<Vec<String>, ArchiveError> {
    let mut walker = Walker::new(Cursor::new(bytes), limits)?;
    let mut seen = Vec::new();
    while let Some(item) = walker.next().await? {
        match item {
            Item::File {
                path, mut entry, ..
            } => {
                tokio::io::copy(&mut entry, &mut tokio::io::sink())
                    .await
                    .unwrap();
                seen.push(path);
            }
            Item::Symlink { path, .. } | Item::Hardlink { path, .. } => seen.push(path),
        }
    }
    Ok(seen)
}

async fn code(entries: &[Vec<u8>]) -> &'static str {
    match walk(archive(entries), Limits::default()).await {
        Ok(_) => "OK",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn names_are_normalised_and_checked() {
    let seen = walk(
        archive(&[entry("./a//b", b'0', b"x", "")]),
        Limits::default(),
    )
    .await;
    assert_eq!(seen.unwrap(), ["a/b"]);
    assert_eq!(
        code(&[entry("/etc/passwd", b'0', b"x", "")]).await,
        "ENTRY_PATH_INVALID"
    );
    assert_eq!(
        code(&[entry("a/../../x", b'0', b"x", "")]).await,
        "ENTRY_PATH_INVALID"
    );
    assert_eq!(
        code(&[entry("a\\b", b'0', b"x", "")]).await,
        "ENTRY_PATH_INVALID"
    );
    assert_eq!(
        code(&[entry("./", b'0', b"x", "")]).await,
        "ENTRY_PATH_INVALID"
    );
}

#[tokio::test]
async fn duplicates_are_found_after_normalising() {
    let twice = [
        entry("manifest.json", b'0', b"{}", ""),
        entry("./manifest.json", b'0', b"{}", ""),
    ];
    assert_eq!(code(&twice).await, "DUPLICATE_ENTRY");
}

#[tokio::test]
async fn links_stay_inside_and_hard_links_point_back() {
    assert_eq!(
        code(&[entry("a", b'2', b"", "../../etc")]).await,
        "LINK_INVALID"
    );
    assert_eq!(
        code(&[entry("a", b'2', b"", "/etc/passwd")]).await,
        "LINK_INVALID"
    );
    assert_eq!(
        code(&[
            entry("a", b'1', b"", "later"),
            entry("later", b'0', b"x", "")
        ])
        .await,
        "LINK_INVALID"
    );
    let back = [
        entry("first", b'0', b"x", ""),
        entry("a", b'1', b"", "first"),
    ];
    assert_eq!(code(&back).await, "OK");
    assert_eq!(
        code(&[
            entry("fwd", b'2', b"", "later"),
            entry("later", b'0', b"x", "")
        ])
        .await,
        "OK"
    );
}

#[tokio::test]
async fn only_files_links_and_directories_are_accepted() {
    assert_eq!(
        code(&[entry("dev", b'3', b"", "")]).await,
        "ENTRY_HEADER_INVALID"
    );
    assert_eq!(
        code(&[entry("fifo", b'6', b"", "")]).await,
        "ENTRY_HEADER_INVALID"
    );
    assert_eq!(
        code(&[entry("global", b'g', b"", "")]).await,
        "ENTRY_HEADER_INVALID"
    );
    assert_eq!(
        code(&[entry("sparse", b'S', b"", "")]).await,
        "ENTRY_HEADER_INVALID"
    );
    assert_eq!(
        code(&[entry("dir/", b'5', b"", ""), entry("dir/f", b'0', b"x", "")]).await,
        "OK"
    );
}

#[tokio::test]
async fn a_pax_size_must_agree_with_the_ustar_size() {
    let record = b"12 size=100\n";
    let pax = entry("pax", b'x', record, "");
    let file = entry("f", b'0', &[7u8; 10], "");
    assert_eq!(code(&[pax, file]).await, "ENTRY_HEADER_INVALID");
}

#[tokio::test]
async fn limits_apply() {
    let many: Vec<Vec<u8>> = (0..5)
        .map(|i| entry(&format!("f{i}"), b'0', b"x", ""))
        .collect();
    let limits = Limits {
        entries: 4,
        ..Limits::default()
    };
    let err = walk(archive(&many), limits).await.unwrap_err();
    assert_eq!(err.code(), "TOO_MANY_ENTRIES");
    let limits = Limits {
        path_bytes: 8,
        ..Limits::default()
    };
    let err = walk(archive(&[entry("a-long-name", b'0', b"x", "")]), limits)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ENTRY_PATH_INVALID");
}

#[tokio::test]
async fn what_is_not_a_tar_says_so() {
    let err = walk(b"hello".to_vec(), Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNSUPPORTED_FORMAT");
    let mut broken = archive(&[entry("f", b'0', b"x", "")]);
    broken[148] ^= 1;
    let err = walk(broken, Limits::default()).await.unwrap_err();
    assert_eq!(err.code(), "ARCHIVE_INVALID", "{err}");
}
