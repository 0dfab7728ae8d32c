//! Benchmarks of the engine's per-batch hot paths, with no Python involved.
//!
//! Benches (layout after DataFusion's `physical-plan/benches/repartition.rs`):
//! - `engine_map/pipelined/<batch size>`: a `TestUdf` map (`x * 2 + 1`) over 64k
//!   `Datum::Int` records through `testing::run_pipelined` on a 2-thread pool: the
//!   executor's per-batch overhead (queues, wake-ups, stage turns) at several batch sizes.
//! - `engine_map/reference`: the same plan on `inline::run_inline`, one record at a
//!   time, the baseline the batching is meant to beat.
//! - `shuffle_codec/encode` and `shuffle_codec/decode`: one 4096-row `Datums` batch
//!   through the shuffle frame codec (`engine::shuffle`).
//!
//! The Python map bench (the GIL-per-batch path) is a separate group, `python_map`, added
//! alongside these. Data is generated from a fixed `SEED`; setup (cloning the input into
//! a source, allocating the output buffer) stays out of timing via `iter_batched`.
//!
//! Run: `cargo bench -p gearshift-benches --bench map_batch`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use engine::exec::WorkerPool;
use engine::inline::run_inline;
use engine::plan::Plan;
use engine::shuffle::{decode_frame, encode_data};
use engine::testing::{run_pipelined, TestFn, TestUdf, VecSource};
use engine::{Batch, Datum};

const SEED: u64 = 0x62_65_6e_63_68; // "bench"
/// Records per map execution.
const RECORDS: usize = 64 * 1024;
/// Source batch sizes for the pipelined map: per-record, small, typical and large.
const BATCH_SIZES: [usize; 4] = [1, 64, 1024, 8192];
/// Rows in the shuffle codec batch.
const FRAME_ROWS: usize = 4096;

fn random_ints(n: usize) -> Vec<Datum> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..n)
        .map(|_| Datum::Int(rng.random_range(-1_000_000..1_000_000)))
        .collect()
}

/// A mixed batch shaped like shuffled records: ints, floats, short strings and the
/// `{'key': k, 'value': v}` maps that `countby` produces.
fn random_frame_batch(n: usize) -> Batch {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let rows = (0..n)
        .map(|i| match i % 4 {
            0 => Datum::Int(rng.random()),
            1 => Datum::Float(rng.random_range(-1e6..1e6)),
            2 => Datum::Str(format!("user:{}", rng.random_range(0..100_000))),
            _ => Datum::Map(vec![
                (
                    "key".into(),
                    Datum::Str(format!("k{}", rng.random_range(0..1000))),
                ),
                ("value".into(), Datum::Int(rng.random_range(0..1000))),
            ]),
        })
        .collect();
    Batch::datums(rows)
}

fn map_plan() -> Plan {
    let f = TestFn::Map(Arc::new(|d: &Datum| match d {
        Datum::Int(i) => Datum::Int(i.wrapping_mul(2).wrapping_add(1)),
        other => other.clone(),
    }));
    Plan::new(vec![f.step("map")])
}

fn bench_engine_map(c: &mut Criterion) {
    let input = random_ints(RECORDS);
    let plan = map_plan();
    let pool = WorkerPool::new(2, "bench");
    let mut group = c.benchmark_group("engine_map");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);
    for bs in BATCH_SIZES {
        group.bench_with_input(BenchmarkId::new("pipelined", bs), &bs, |b, &bs| {
            b.iter_batched(
                || VecSource::datums(&input, bs),
                |src| run_pipelined(src, &plan, &TestUdf, None, &pool).expect("map runs"),
                BatchSize::LargeInput,
            );
        });
    }
    group.bench_function("reference", |b| {
        b.iter_batched(
            || VecSource::datums(&input, 1024),
            |src| run_inline(src, &plan, Some(&TestUdf)).expect("map runs"),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_shuffle_codec(c: &mut Criterion) {
    let batch = random_frame_batch(FRAME_ROWS);
    let mut encoded = Vec::new();
    encode_data(&batch, &mut encoded).expect("datums encode");
    let mut group = c.benchmark_group("shuffle_codec");
    group.throughput(Throughput::Elements(FRAME_ROWS as u64));
    group.bench_function("encode", |b| {
        b.iter_batched(
            || Vec::with_capacity(encoded.len()),
            |mut buf| {
                encode_data(black_box(&batch), &mut buf).expect("datums encode");
                buf
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("decode", |b| {
        b.iter_with_large_drop(|| decode_frame(black_box(&encoded)).expect("valid frame"));
    });
    group.finish();
}

criterion_group!(benches, bench_engine_map, bench_shuffle_codec);
criterion_main!(benches);
