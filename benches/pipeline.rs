//! Throughput of the per-byte primitives on hoist's hot path, without a benchmark framework:
//! sha256 (every blob, and the diffID of every uncompressed layer), gzip level 1 and 6
//! compression with zlib-rs on one core, hoist's own level-1 gzip (ISA-L pieces on its pool of
//! one thread per core; uncompressed layers are gzipped on the way, level 1 by default),
//! gzip decompression (a `.tar.gz` archive is decompressed whole) and zstd level 3.
//!
//! `cargo bench --bench pipeline`. The input is ~64 MiB of real files (shared libraries from
//! /usr/lib, concatenated), so it compresses like real image layers. Each case runs 3 times;
//! the median is printed in MB/s of uncompressed bytes (1 MB = 10^6 bytes) and as a ratio to
//! sha256, which is steadier across noisy runs than the absolute numbers.
//!
//! Environment: `PIPELINE_MB` (default 64, MiB of input), `PIPELINE_SRC` (default
//! /usr/lib/x86_64-linux-gnu, falling back to /usr/lib).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::Digest;

/// Chunk size the benchmark feeds the encoders with: hoist's pipeline moves 256 KiB buffers.
const CHUNK: usize = 256 << 10;
const RUNS: usize = 3;

/// A case: its name and one run over the input, returning a size so the work is not
/// optimised away.
type Case<'a> = (&'a str, Box<dyn Fn() -> usize + 'a>);

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects cases by substring.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let cap_mib: usize = std::env::var("PIPELINE_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let data = corpus(cap_mib << 20);
    let gz6 = gzip(&data, 6);
    let gz1 = gzip(&data, 1);
    let zst = zstd::encode_all(&data[..], 3).expect("zstd");
    println!(
        "input: {:.1} MB of real files; compressed size: gzip-1 {:.1}%, gzip-6 {:.1}%, zstd-3 {:.1}%",
        data.len() as f64 / 1e6,
        pct(gz1.len(), data.len()),
        pct(gz6.len(), data.len()),
        pct(zst.len(), data.len()),
    );
    println!("each case {RUNS}x, median; MB/s of uncompressed bytes\n");
    let results = measure(&cases(&data, &gz6, &zst), filter.as_deref(), data.len());
    print_rates(&results);
    print_cpu_per_gb(&results, pct(gz1.len(), data.len()) / 100.0);
}

/// Every case, over `data` or its gzip-6 (`gz6`) and zstd-3 (`zst`) forms.
fn cases<'a>(data: &'a [u8], gz6: &'a [u8], zst: &'a [u8]) -> Vec<Case<'a>> {
    vec![
        ("sha256", Box::new(|| sha256(data))),
        ("sha256 (sha2 crate)", Box::new(|| sha256_sha2(data))),
        ("gzip-1 compress", Box::new(|| gzip(data, 1).len())),
        ("hoist gzip-1 (pool)", Box::new(|| hoist_gzip(data))),
        ("gzip-6 compress", Box::new(|| gzip(data, 6).len())),
        ("gzip decompress (of gzip-6)", Box::new(|| gunzip(gz6))),
        ("zstd-3 compress", Box::new(|| zstd_compress(data))),
        ("zstd decompress", Box::new(|| unzstd(zst))),
    ]
}

/// Runs each case whose name contains `filter` (every case without one) [`RUNS`] times;
/// returns its median rate in MB/s of `input_len` uncompressed bytes.
fn measure<'a>(cases: &[Case<'a>], filter: Option<&str>, input_len: usize) -> Vec<(&'a str, f64)> {
    let mut results = Vec::new();
    for (name, run) in cases {
        if let Some(f) = filter
            && !name.contains(f)
        {
            continue;
        }
        let mut secs: Vec<f64> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(run());
                t.elapsed().as_secs_f64()
            })
            .collect();
        secs.sort_by(|a, b| a.total_cmp(b));
        let median = secs[RUNS / 2];
        results.push((*name, input_len as f64 / 1e6 / median));
    }
    results
}

/// The table: each case's rate, its ratio to sha256, and seconds per GB on one core.
fn print_rates(results: &[(&str, f64)]) {
    let sha = results
        .iter()
        .find(|(n, _)| *n == "sha256")
        .map(|(_, r)| *r);
    println!(
        "{:<30} {:>10} {:>12} {:>14}",
        "case", "MB/s", "vs sha256", "s per GB (1 core)"
    );
    for (name, rate) in results {
        let ratio = sha.map_or("-".to_string(), |s| format!("{:.3}x", rate / s));
        println!(
            "{name:<30} {rate:>10.1} {ratio:>12} {:>14.2}",
            1000.0 / rate
        );
    }
}

/// What one core spends per GB of image for the two archive kinds hoist is judged on, when
/// the cases it needs ran; `gz1_ratio` is gzip-1's output size over its input.
fn print_cpu_per_gb(results: &[(&str, f64)], gz1_ratio: f64) {
    let rate = |n: &str| results.iter().find(|(m, _)| *m == n).map(|(_, r)| *r);
    if let (Some(s), Some(g1), Some(gd)) = (
        rate("sha256"),
        rate("gzip-1 compress"),
        rate("gzip decompress (of gzip-6)"),
    ) {
        // docker-archive .tar.gz: gunzip the archive, sha256 the layer (diffID), gzip-1 it,
        // sha256 the gzip output (blob digest).
        let docker = 1000.0 / gd + 1000.0 / s + 1000.0 / g1 + gz1_ratio * 1000.0 / s;
        // oci-archive .tar.gz: gunzip the archive (layers already gzip, so this is mostly
        // stored/incompressible data and faster than measured here), sha256 each blob.
        let oci = 1000.0 / gd + 1000.0 / s;
        println!(
            "\nCPU seconds per GB of uncompressed image (one core, primitives only):\n  \
             docker-archive .tar.gz -> gunzip + sha256 + gzip-1 + sha256(out): {docker:.1} s\n  \
             oci-archive .tar.gz    -> gunzip + sha256 (upper bound):          {oci:.1} s"
        );
    }
}

fn pct(a: usize, b: usize) -> f64 {
    a as f64 * 100.0 / b as f64
}

/// Up to `cap` bytes of real files, concatenated in a fixed (sorted) order.
fn corpus(cap: usize) -> Vec<u8> {
    let root = std::env::var_os("PIPELINE_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu"));
    let roots = [root, PathBuf::from("/usr/lib")];
    let mut out = Vec::with_capacity(cap);
    for r in &roots {
        collect(r, cap, &mut out);
        if out.len() >= cap {
            break;
        }
    }
    assert!(
        out.len() >= 8 << 20,
        "found only {} bytes of files under {roots:?}",
        out.len()
    );
    out.truncate(cap);
    out
}

fn collect(dir: &Path, cap: usize, out: &mut Vec<u8>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if out.len() >= cap {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            collect(&p, cap, out);
        } else if meta.is_file()
            && let Ok(f) = std::fs::File::open(&p)
        {
            let want = (cap - out.len()) as u64;
            let _ = f.take(want).read_to_end(out);
        }
    }
}

/// hoist's own hasher (aws-lc).
fn sha256(data: &[u8]) -> usize {
    let mut h = hoist::oci::Sha256::new();
    for c in data.chunks(CHUNK) {
        h.update(c);
    }
    h.finish().as_str().len()
}

/// The `sha2` crate, the pure-Rust alternative, for comparison.
fn sha256_sha2(data: &[u8]) -> usize {
    let mut h = sha2::Sha256::new();
    for c in data.chunks(CHUNK) {
        h.update(c);
    }
    h.finalize().len()
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::new(level),
    );
    for c in data.chunks(CHUNK) {
        e.write_all(c).expect("gzip");
    }
    e.finish().expect("gzip")
}

/// What hoist does to an uncompressed layer: 512 KiB blocks on its pool of one thread per
/// core, ISA-L where the build has it (the `isal` feature), one gzip member.
fn hoist_gzip(data: &[u8]) -> usize {
    let mut z = hoist::codec::ParallelGzip::new(1);
    let mut n = 0;
    for c in data.chunks(CHUNK) {
        n += z
            .push(c)
            .expect("gzip")
            .iter()
            .map(|b| b.len())
            .sum::<usize>();
    }
    n + z
        .finish()
        .expect("gzip")
        .iter()
        .map(|b| b.len())
        .sum::<usize>()
}

fn gunzip(gz: &[u8]) -> usize {
    let mut d = flate2::read::MultiGzDecoder::new(gz);
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0;
    loop {
        let k = d.read(&mut buf).expect("gunzip");
        if k == 0 {
            return n;
        }
        n += k;
    }
}

fn zstd_compress(data: &[u8]) -> usize {
    let mut e =
        zstd::stream::write::Encoder::new(Vec::with_capacity(data.len() / 2), 3).expect("zstd");
    for c in data.chunks(CHUNK) {
        e.write_all(c).expect("zstd");
    }
    e.finish().expect("zstd").len()
}

fn unzstd(z: &[u8]) -> usize {
    let mut d = zstd::stream::read::Decoder::new(z).expect("zstd");
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0;
    loop {
        let k = d.read(&mut buf).expect("unzstd");
        if k == 0 {
            return n;
        }
        n += k;
    }
}
