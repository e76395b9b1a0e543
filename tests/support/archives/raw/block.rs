//! Raw tar writing: 512-byte blocks, headers filled field by field (any size claim, any type
//! flag, any name bytes), PAX records, GNU long names, with or without the end marker.

/// The tar block size: a header is one block, data is padded to whole blocks.
pub const BLOCK: usize = 512;

/// Writes `value` into a numeric header field: zero-padded octal, then NUL.
pub fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    assert!(
        text.len() <= width,
        "{value} does not fit a {width}-digit octal field"
    );
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

/// Recomputes the header checksum (after any field was changed by hand).
pub fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// A ustar header block: `name` ≤ 100 bytes, `size` is what the header *claims*.
pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    assert!(name.len() <= 100, "name too long for a plain header");
    assert!(link.len() <= 100, "link too long for a plain header");
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    let mode = if typeflag == b'5' { 0o755 } else { 0o644 };
    put_octal(&mut b[100..108], mode);
    put_octal(&mut b[108..116], 0);
    put_octal(&mut b[116..124], 0);
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], 1_700_000_000);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[265..269].copy_from_slice(b"root");
    b[297..301].copy_from_slice(b"root");
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    seal(&mut b);
    b
}

/// One PAX extended-header record: `"<len> <key>=<value>\n"`, `len` counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1; // " key=value\n"
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    assert_eq!(out.len(), len);
    out
}

/// A tar stream written block by block.
#[derive(Default, Clone)]
pub struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends one raw header block.
    pub fn block(&mut self, block: &[u8; BLOCK]) -> &mut Tar {
        self.buf.extend_from_slice(block);
        self
    }

    /// Appends entry data, zero-padded to a whole block.
    pub fn data(&mut self, data: &[u8]) -> &mut Tar {
        self.buf.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A header claiming `size_field`, followed by `data` (which may disagree with the claim).
    pub fn entry(
        &mut self,
        name: &[u8],
        typeflag: u8,
        size_field: u64,
        link: &[u8],
        data: &[u8],
    ) -> &mut Tar {
        self.block(&header(name, typeflag, size_field, link));
        self.data(data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.entry(name.as_bytes(), b'0', data.len() as u64, b"", data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'5', 0, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'2', 0, target.as_bytes(), b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'1', 0, target.as_bytes(), b"")
    }

    /// A PAX header (`x` for the next entry, `g` global) holding `records`.
    pub fn pax(&mut self, typeflag: u8, records: &[(&str, &[u8])]) -> &mut Tar {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let name: &[u8] = if typeflag == b'g' {
            b"pax_global_header"
        } else {
            b"PaxHeaders/entry"
        };
        self.entry(name, typeflag, body.len() as u64, b"", &body)
    }

    /// A GNU `L` long-name header for the next entry.
    pub fn long_name(&mut self, name: &[u8]) -> &mut Tar {
        let mut data = name.to_vec();
        data.push(0);
        self.entry(b"././@LongLink", b'L', data.len() as u64, b"", &data)
    }

    /// Regular files, in order.
    pub fn files(&mut self, files: &[(String, Vec<u8>)]) -> &mut Tar {
        for (name, data) in files {
            self.file(name, data);
        }
        self
    }

    /// The bytes so far, without the end-of-archive marker.
    pub fn unterminated(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// The bytes so far plus the end-of-archive marker (two zero blocks).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        out
    }
}

/// A tar of regular files, in order.
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    Tar::new().files(files).finish()
}
