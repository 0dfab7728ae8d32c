//! The shuffle codec against `memcpy` (issue #13's target: encode + decode of a 1,024-row
//! key batch at memcpy-class speed).
//!
//! - `shuffle_codec/keys_1024`: a batch of 1,024 key names (`person:N`, strings), encoded
//!   in place into a bundle (`bundle_data`, as the shuffle sends it), then split
//!   (`unbundle`) and decoded (`decode_frame`), as the receiving shard does.
//! - `shuffle_codec/hashes_1024`: the same with each key a hash of two fields (the reader
//!   batch of `hot_paths`' `keys_batch/build`).
//! - `.../encode`, `.../decode`: the two halves alone (where the time goes).
//! - `.../memcpy`: a plain copy of as many bytes as that batch's bundle holds, in the same
//!   group, so the two GB/s figures (criterion's throughput, bytes = the bundle's size)
//!   compare directly.
//!
//! Fixed `SEED`; buffers are reused across iterations, as the shuffle's are. Run:
//! `cargo bench -p gearshift-benches --bench shuffle_codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use engine::batch::{BatchData, KeyBuilder, KeyType};
use engine::shuffle::{bundle_data, decode_frame, unbundle, Frame};
use engine::Batch;

const SEED: u64 = 20240613;
const ROWS: usize = 1024;

fn key_batch(hashes: bool) -> Batch {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut k = KeyBuilder::new(hashes);
    for i in 0..ROWS {
        let key = format!("person:{i}");
        if !hashes {
            k.push_key(key.as_bytes(), KeyType::String);
            continue;
        }
        k.push_key(key.as_bytes(), KeyType::Hash);
        let name = format!("First Family{}", rng.random_range(0..100));
        let age = rng.random_range(0..100).to_string();
        k.push_field(b"name", name.as_bytes());
        k.push_field(b"age", age.as_bytes());
    }
    Batch::new(BatchData::Keys(k.finish().expect("a small batch")))
}

/// Encode into a reused bundle, split and decode: one frame's full trip through the codec.
fn round_trip(b: &Batch, bundle: &mut Vec<u8>) -> usize {
    bundle.clear();
    bundle_data(bundle, b).expect("key batches encode");
    let mut rows = 0;
    for frame in unbundle(bundle).expect("a valid bundle") {
        match decode_frame(frame).expect("a valid frame") {
            Frame::Data(got) => rows += got.len(),
            Frame::Done => {}
        }
    }
    rows
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("shuffle_codec");
    for (name, hashes) in [("keys_1024", false), ("hashes_1024", true)] {
        let batch = key_batch(hashes);
        let mut bundle = Vec::new();
        assert_eq!(round_trip(&batch, &mut bundle), ROWS);
        let bytes = bundle.len();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(format!("{name}/encode_decode"), |bch| {
            bch.iter(|| round_trip(black_box(&batch), &mut bundle))
        });
        g.bench_function(format!("{name}/encode"), |bch| {
            bch.iter(|| {
                bundle.clear();
                bundle_data(&mut bundle, black_box(&batch)).expect("key batches encode");
                bundle.len()
            })
        });
        let frame = bundle[4..].to_vec();
        g.bench_function(format!("{name}/decode"), |bch| {
            bch.iter(|| decode_frame(black_box(&frame)).expect("a valid frame"))
        });
        let src = vec![0x5au8; bytes];
        let mut dst = vec![0u8; bytes];
        g.bench_function(format!("{name}/memcpy"), |bch| {
            bch.iter(|| {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
