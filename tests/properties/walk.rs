//! The tar walk (guard, reader, validation): any block sequence is answered with entries or a
//! typed error and never buffers what a header merely claims; generated archives walk back
//! exactly as written.

use std::io::Cursor;

use hoist::archive::ArchiveError;
use hoist::archive::walk::{Item, Walker};
use hoist::limits::Limits;
use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use super::memory::budget;
use crate::support::archives::raw::{BLOCK, Tar, header, put_octal, seal};

/// What a walk gave: each file's path and bytes, links as `path -> target`.
type Walked = Vec<(String, Vec<u8>)>;

/// Walks `tar` to its end, reading every file body.
async fn walk(tar: Vec<u8>, limits: Limits) -> Result<Walked, ArchiveError> {
    let mut walker = Walker::new(Cursor::new(tar), limits)?;
    let mut out = Vec::new();
    while let Some(item) = walker.next().await? {
        match item {
            Item::File {
                path, mut entry, ..
            } => {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .await
                    .map_err(|e| ArchiveError::Malformed {
                        at: path.clone(),
                        detail: e.to_string(),
                    })?;
                out.push((path, data));
            }
            Item::Symlink { path, target } | Item::Hardlink { path, target } => {
                out.push((path, format!("-> {target}").into_bytes()));
            }
        }
    }
    walker.finish().await?;
    Ok(out)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// One header of any kind, with a name, a claimed size and data that may disagree.
#[derive(Debug, Clone)]
struct Block {
    name: Vec<u8>,
    typeflag: u8,
    claimed: u64,
    link: Vec<u8>,
    data: Vec<u8>,
}

fn block() -> impl Strategy<Value = Block> {
    let typeflag = prop::sample::select(b"0125LKxgS3467\0V".to_vec());
    let name = prop_oneof![
        "[a-z]{1,8}(/[a-z.]{1,8}){0,3}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..100),
        Just(b"../etc/passwd".to_vec()),
        Just(b"/abs".to_vec()),
    ];
    let claimed = prop_oneof![0u64..4096, 0u64..(1 << 33) - 1];
    let data = prop::collection::vec(any::<u8>(), 0..2048);
    (name, typeflag, claimed, name_like(), data).prop_map(
        |(name, typeflag, claimed, link, data)| Block {
            name,
            typeflag,
            claimed,
            link,
            data,
        },
    )
}

fn name_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        "[a-z./]{1,20}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn assemble(blocks: &[Block]) -> Vec<u8> {
    let mut tar = Tar::new();
    for b in blocks {
        let mut h = header(
            &b.name[..b.name.len().min(100)],
            b.typeflag,
            0,
            &b.link[..b.link.len().min(100)],
        );
        put_octal(&mut h[124..136], b.claimed);
        seal(&mut h);
        tar.block(&h).data(&b.data);
    }
    tar.finish()
}

proptest! {
    #[test]
    fn any_block_sequence_is_answered(blocks in prop::collection::vec(block(), 0..12)) {
        let rt = runtime();
        let _b = budget(32 << 20);
        let result = rt.block_on(walk(assemble(&blocks), Limits::default()));
        if let Err(e) = result {
            prop_assert!((400..500).contains(&e.status()), "{}: {e}", e.code());
        }
    }

    #[test]
    fn damaged_archives_are_answered(
        files in files(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut tar = Tar::new().files(&files).finish();
        for (at, x) in flips {
            let i = at.index(tar.len());
            tar[i] ^= x;
        }
        let rt = runtime();
        let _b = budget(32 << 20);
        if let Err(e) = rt.block_on(walk(tar, Limits::default())) {
            prop_assert!((400..500).contains(&e.status()), "{}: {e}", e.code());
        }
    }

    #[test]
    fn generated_archives_walk_back_as_written(files in files()) {
        let rt = runtime();
        let _b = budget(32 << 20);
        let walked = rt.block_on(walk(Tar::new().files(&files).finish(), Limits::default()));
        prop_assert_eq!(walked.map_err(|e| e.to_string()), Ok(files));
    }

    #[test]
    fn header_extensions_are_refused_before_they_are_buffered(
        typeflag in prop::sample::select(b"LKx".to_vec()),
        claimed in (4096u64 + 4097)..(1 << 33) - 1,
        sent in 0usize..64 << 10,
    ) {
        // The header claims up to 8 GiB of name; the body sends a little of it. Nothing is
        // read into memory beyond the limit: the budget is far below what is claimed.
        let mut h = header(b"././@LongLink", typeflag, 0, b"");
        put_octal(&mut h[124..136], claimed);
        seal(&mut h);
        let mut tar = h.to_vec();
        tar.extend(std::iter::repeat_n(b'a', sent));
        tar.extend([0u8; 2 * BLOCK]);
        let rt = runtime();
        let _b = budget(4 << 20);
        let err = rt.block_on(walk(tar, Limits::default())).expect_err("an oversized extension walked");
        prop_assert_eq!(err.code(), "ENTRY_HEADER_INVALID", "{}", err);
    }
}

/// Regular files with unique, valid paths, none of them the directory of another
/// (directories are implied, not listed).
fn files() -> impl Strategy<Value = Walked> {
    prop::collection::btree_map(
        "[a-z0-9]{1,10}(/[a-z0-9][a-z0-9_.-]{0,9}){0,3}",
        prop::collection::vec(any::<u8>(), 0..3000),
        0..12,
    )
    .prop_map(|m| {
        let is_dir = |p: &String| m.keys().any(|q| q.starts_with(&format!("{p}/")));
        m.iter()
            .filter(|(p, _)| !is_dir(p))
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect()
    })
}
