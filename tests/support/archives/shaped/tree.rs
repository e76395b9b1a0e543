//! Raw tar writing for the shaped archives: names and link targets byte-exact (no
//! normalisation of `./` or slashes), and a directory tree written in Go's walk order.
use std::collections::BTreeMap;

use super::MTIME;

/// One entry of a shaped archive.
pub(super) enum Item {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

/// A tar written entry by entry: ustar headers, [`MTIME`], owner 0, names as given.
pub(super) struct TarOut {
    b: tar::Builder<Vec<u8>>,
}

impl TarOut {
    pub(super) fn new() -> TarOut {
        TarOut {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub(super) fn put(&mut self, name: &str, item: &Item) {
        let mut h = tar::Header::new_ustar();
        let (kind, mode, data, link): (tar::EntryType, u32, &[u8], &str) = match item {
            Item::Dir => (tar::EntryType::Directory, 0o755, &[], ""),
            Item::File(d) => (tar::EntryType::Regular, 0o644, d, ""),
            Item::Symlink(t) => (tar::EntryType::Symlink, 0o777, &[], t),
            Item::Hardlink(t) => (tar::EntryType::Link, 0o644, &[], t),
        };
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "fixture name too long: {name}"
        );
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len()].copy_from_slice(name.as_bytes());
        u.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A directory tree written the way Go's `filepath.Walk` + `archive/tar` does it (Docker's
/// `archive.Tar` of its temp dir): per directory, names in lexical order, a directory's entry
/// (with a trailing `/`) right before its children. Keys are path components, so BTreeMap
/// order is exactly walk order.
#[derive(Default)]
pub(super) struct Tree(BTreeMap<Vec<String>, Item>);

impl Tree {
    pub(super) fn add(&mut self, path: &str, item: Item) {
        let key: Vec<String> = path.split('/').map(String::from).collect();
        self.0.insert(key, item);
    }

    /// Writes the tree; `root` (e.g. `./`) is written as an entry of its own and prefixed to
    /// every name when not empty.
    pub(super) fn write(&self, out: &mut TarOut, root: &str) {
        if !root.is_empty() {
            out.put(root, &Item::Dir);
        }
        for (key, item) in &self.0 {
            let mut name = format!("{root}{}", key.join("/"));
            if matches!(item, Item::Dir) {
                name.push('/');
            }
            out.put(&name, item);
        }
    }
}
