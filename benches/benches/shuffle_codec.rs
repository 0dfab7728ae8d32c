//! The shuffle codec against `memcpy` (issue #13's target: encode + decode of a 1,024-row
//! key batch at memcpy-class speed).
//!
//! - `shuffle_codec/keys_1024`: a batch of 1,024 key names (`person:N`, strings), encoded
//!   in place into a pooled bundle (`bundle_data`, as the shuffle sends it), the bundle
//!   turned into an Arrow buffer (`into_buffer`) and decoded in place (`decode_bundle`:
//!   the arrays are slices of it), as the receiving shard does; dropping the batch gives
//!   the bundle back to the pool.
//! - `shuffle_codec/hashes_1024`: the same with each key a hash of two fields (the reader
//!   batch of `hot_paths`' `keys_batch/build`).
//! - `.../encode`, `.../decode`: the two halves alone (where the time goes).
//! - `.../memcpy`: a plain copy of as many bytes as that batch's bundle holds, in the same
//!   group, so the two GB/s figures (criterion's throughput, bytes = the bundle's size)
//!   compare directly.
//!
//! Fixed `SEED`; buffers come from a pool and are reused across iterations, as the
//! shuffle's are. Run:
//! `cargo bench -p gearshift-benches --bench shuffle_codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use arrow_buffer::Buffer;
use engine::batch::{BatchData, KeyBuilder, KeyType};
use engine::pool::BufferPool;
use engine::shuffle::{bundle_data, decode_bundle, Frame};
use engine::Batch;
use std::sync::Arc;

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

/// Rows of the data frames in `body`, decoded in place.
fn decode(body: &Buffer) -> usize {
    let mut rows = 0;
    decode_bundle(body, None, |f| {
        if let Frame::Data(got) = f {
            rows += got.len();
        }
    })
    .expect("a valid bundle");
    rows
}

/// Encode into a pooled bundle, then decode it in place: one frame's full trip through
/// the codec (the bundle goes back to the pool when the decoded batch drops).
fn round_trip(b: &Batch, pool: &Arc<BufferPool>, bytes: usize) -> usize {
    let mut bundle = pool.take_capacity(bytes);
    bundle_data(&mut bundle, b).expect("key batches encode");
    decode(&bundle.into_buffer())
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("shuffle_codec");
    let pool = BufferPool::new(8, 64 << 20);
    for (name, hashes) in [("keys_1024", false), ("hashes_1024", true)] {
        let batch = key_batch(hashes);
        let mut bundle = Vec::new();
        bundle_data(&mut bundle, &batch).expect("key batches encode");
        let bytes = bundle.len();
        assert_eq!(round_trip(&batch, &pool, bytes), ROWS);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(format!("{name}/encode_decode"), |bch| {
            bch.iter(|| round_trip(black_box(&batch), &pool, bytes))
        });
        g.bench_function(format!("{name}/encode"), |bch| {
            bch.iter(|| {
                bundle.clear();
                bundle_data(&mut bundle, black_box(&batch)).expect("key batches encode");
                bundle.len()
            })
        });
        let body = Buffer::from_vec(bundle.clone());
        g.bench_function(format!("{name}/decode"), |bch| {
            bch.iter(|| decode(black_box(&body)))
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
