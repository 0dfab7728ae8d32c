//! Benchmarks of the remaining hot paths named by issue #6.
//!
//! - `keys_batch/build`: filling a reader batch (`KeyBuilder` → `KeyColumns`) with 1024
//!   hashes of two fields, as the KeysReader does under the Redis lock (the Redis reads
//!   themselves are measured end to end by `perf/`).
//! - `keys_batch/slice`: rows 100..900 of that batch (a batch split at a `limit`).
//! - `keys_batch/partition`: its rows spread over 3 shards by a fixed pseudo-random
//!   destination per row (a repartition).
//! - `native_groupby/countby`: the native `countby` operator over 64k string keys drawn
//!   from 100 family names.
//! - `python_map/keys_batch`: a Python `map(lambda x: int(x['value']['age']))` over a
//!   1024-row reader batch in one `PyStage` call: record dicts built and the callback run
//!   under one GIL hold (the per-batch Python cost).
//!
//! Fixed `SEED`; setup stays out of timing via `iter_batched`. Run:
//! `cargo bench -p gearshift-benches --bench hot_paths`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use engine::batch::{BatchData, KeyBuilder, KeyColumns, KeyType};
use engine::ops::{CountByOp, Emit, Operator};
use engine::plan::UdfStep;
use engine::udf::UdfRuntime;
use engine::{Batch, Datum};
use gearpy::services::{CallReply, HostServices};
use gearpy::step::PyStep;
use pyo3::prelude::*;

const SEED: u64 = 20240601;
const ROWS: usize = 1024;

fn people(rows: usize) -> Vec<(String, String, String)> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..rows)
        .map(|i| {
            (
                format!("person:{i}"),
                format!("First Family{}", rng.random_range(0..100)),
                rng.random_range(0..100).to_string(),
            )
        })
        .collect()
}

fn build(rows: &[(String, String, String)]) -> KeyColumns {
    let mut k = KeyBuilder::new(true);
    for (key, name, age) in rows {
        k.push_key(key.as_bytes(), KeyType::Hash);
        k.push_field(b"name", name.as_bytes());
        k.push_field(b"age", age.as_bytes());
    }
    k.finish().expect("a small batch")
}

fn keys_batch(c: &mut Criterion) {
    let rows = people(ROWS);
    let mut g = c.benchmark_group("keys_batch");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("build", |b| b.iter(|| black_box(build(&rows))));
    let batch = build(&rows);
    g.bench_function("slice", |b| {
        b.iter_batched(
            || batch.clone(),
            |k| black_box(k.slice(100, 900)),
            BatchSize::SmallInput,
        )
    });
    let mut rng = StdRng::seed_from_u64(SEED);
    let dest: Vec<usize> = (0..ROWS).map(|_| rng.random_range(0..3)).collect();
    g.bench_function("partition", |b| {
        b.iter_batched(
            || batch.clone(),
            |k| black_box(k.partition(&dest, 3)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn native_groupby(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let keys: Vec<Datum> = (0..65_536)
        .map(|_| Datum::Str(format!("Family{}", rng.random_range(0..100))))
        .collect();
    let mut g = c.benchmark_group("native_groupby");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("countby", |b| {
        b.iter_batched(
            || Batch::datums(keys.clone()),
            |batch| {
                let mut op = CountByOp::default();
                let mut out = Emit::new();
                op.process(batch, &mut out).expect("countby");
                op.finish(&mut out).expect("finish");
                black_box(out.drain().count())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// A host with no Redis behind it: the bench never calls Redis.
struct NoRedis;

impl HostServices for NoRedis {
    fn call(&self, _caller: Option<&gearpy::caller::RunAs>, _args: &[Vec<u8>]) -> CallReply {
        CallReply::Error("no Redis in benches".into())
    }
    fn log(&self, _level: &str, _msg: &str) {}
    fn config_get(&self, _key: &str) -> Option<String> {
        None
    }
    fn attempt_traceback(&self) -> bool {
        true
    }
    fn lock_redis(&self) -> bool {
        false
    }
    fn unlock_redis(&self) {}
    fn start_timer(&self, _period: std::time::Duration, _tick: Box<dyn FnMut() -> bool + Send>) {}
}

fn python_map(c: &mut Criterion) {
    gearpy::init(None, Arc::new(NoRedis), None).expect("embedded Python starts");
    let f = Python::attach(|py| {
        py.eval(c"lambda x: int(x['value']['age'])", None, None)
            .expect("lambda")
            .unbind()
    });
    let step = UdfStep {
        kind: "map",
        name: "bench".into(),
        arg: String::new(),
        payload: Arc::new(PyStep::Map(f)),
    };
    let rows = people(ROWS);
    let mut op = gearpy::PyRuntime
        .build_stage(&[step])
        .expect("python stage");
    let mut g = c.benchmark_group("python_map");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("keys_batch", |b| {
        b.iter_batched(
            || Batch::new(BatchData::Keys(build(&rows))),
            |batch| {
                let mut out = Emit::new();
                op.process(batch, &mut out).expect("map");
                black_box(out.drain().count())
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, keys_batch, native_groupby, python_map);
criterion_main!(benches);
