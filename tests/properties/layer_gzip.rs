//! hoist's layer gzip (`ParallelGzip`: 512 KiB blocks on the pool, each cut into 64 KiB pieces
//! that ISA-L deflates and hoist makes sync-flushed by hand, or stores, or leaves to zlib-rs):
//! any layer, however it is handed over, becomes one gzip member that inflates to exactly that
//! layer, and the same bytes every time.

use std::io::Read;

use hoist::codec::ParallelGzip;
use proptest::prelude::*;

use super::support::archives::noise;

/// Layer-like bytes: runs of repetition (dynamic blocks with their own Huffman tables) and of
/// noise (pieces ISA-L stores), up to about 1.8 MB, so that blocks, pieces and short last
/// pieces (fixed codes) of every kind meet.
fn layer() -> impl Strategy<Value = Vec<u8>> {
    let repeated = (prop::collection::vec(any::<u8>(), 1..48), 1usize..3000)
        .prop_map(|(run, n)| run.repeat(n));
    let random = (any::<u64>(), 1usize..150_000).prop_map(|(seed, n)| noise(seed, n));
    prop::collection::vec(prop_oneof![repeated, random], 0..12).prop_map(|parts| parts.concat())
}

/// How the walk hands a layer over: chunks of these sizes, round and round.
fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..300_000, 1..6)
}

fn gzip(layer: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut z = ParallelGzip::new(1);
    let mut out = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < layer.len() {
        let end = (at + chunks[i % chunks.len()]).min(layer.len());
        z.push(&layer[at..end])
            .unwrap()
            .iter()
            .for_each(|b| out.extend_from_slice(b));
        (at, i) = (end, i + 1);
    }
    z.finish()
        .unwrap()
        .iter()
        .for_each(|b| out.extend_from_slice(b));
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases / 4, ..ProptestConfig::default() })]

    #[test]
    fn a_layer_gzips_to_one_member_that_inflates_to_it(layer in layer(), chunks in chunks()) {
        let gz = gzip(&layer, &chunks);
        // GzDecoder reads one member and checks its CRC-32 and length.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        prop_assert!(back == layer, "inflated {} bytes of {}", back.len(), layer.len());
    }

    #[test]
    fn a_layer_gzips_to_the_same_bytes_however_it_is_handed_over(
        layer in layer(), a in chunks(), b in chunks()
    ) {
        prop_assert!(gzip(&layer, &a) == gzip(&layer, &b));
    }
}
