//! Test support: an in-memory source and a host whose "callbacks" are Rust closures over
//! `Datum`s. Used by unit, differential and multi-shard tests and by benches; it stands in
//! for the Python host, never for Redis.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

use crate::batch::{Batch, BatchData, BinaryColumn};
use crate::datum::Datum;
use crate::error::{EngineError, Result};
use crate::exec::{ExecConfig, Execution, ExecutionOutput, Source, WorkerPool};
use crate::ops::{Emit, Operator};
use crate::plan::{Plan, StepSpec, UdfStep};
use crate::shuffle::ShuffleCtx;
use crate::sync::Arc;
use crate::udf::UdfRuntime;

/// Yields pre-built batches.
#[derive(Debug)]
pub struct VecSource {
    batches: VecDeque<Batch>,
}

impl VecSource {
    /// `values` cut into batches of `batch_size`.
    pub fn datums(values: &[Datum], batch_size: usize) -> Box<Self> {
        let batches = values
            .chunks(batch_size.max(1))
            .map(|c| Batch::datums(c.to_vec()))
            .collect();
        Box::new(VecSource { batches })
    }
}

impl Source for VecSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        Ok(self.batches.pop_front())
    }
}

/// A shared test callback from a record to `T` (named to keep [`TestFn`] readable).
pub type TestCallback<T> = Arc<dyn Fn(&Datum) -> T + Send + Sync>;

/// A test callback.
#[derive(Clone)]
pub enum TestFn {
    Map(TestCallback<Datum>),
    Filter(TestCallback<bool>),
    FlatMap(TestCallback<Vec<Datum>>),
    /// Sets the partition key of each record (for repartition).
    ExtractKey(TestCallback<String>),
    /// Sums `Int` records; emits the sum at the end, nothing on empty input.
    Sum,
    /// Fails on records equal to the given value.
    FailOn(Datum),
    /// Panics on records equal to the given value (an operator bug).
    PanicOn(Datum),
}

impl TestFn {
    pub fn step(self, kind: &'static str) -> StepSpec {
        StepSpec::Udf(UdfStep {
            kind,
            name: "test".into(),
            arg: String::new(),
            payload: Arc::new(self),
        })
    }
}

/// Runs [`TestFn`] steps.
#[derive(Debug, Default)]
pub struct TestUdf;

struct TestStage {
    fns: Vec<TestFn>,
    sums: Vec<Option<i64>>,
}

impl UdfRuntime for TestUdf {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        let fns = steps
            .iter()
            .map(|s| {
                s.payload
                    .downcast_ref::<TestFn>()
                    .cloned()
                    .ok_or_else(|| EngineError::Plan("not a test step".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let sums = vec![None; fns.len()];
        Ok(Box::new(TestStage { fns, sums }))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(crate::ops::Chain::new(Vec::new()))
    }
}

impl TestStage {
    /// Runs records through fns[from..]; keys are carried alongside for ExtractKey.
    fn run(&mut self, from: usize, rows: Vec<(Datum, Option<String>)>, out: &mut Emit) {
        let mut rows = rows;
        let mut errors = Vec::new();
        for i in from..self.fns.len() {
            let mut next = Vec::with_capacity(rows.len());
            for (d, key) in rows {
                match &self.fns[i] {
                    TestFn::Map(f) => next.push((f(&d), key)),
                    TestFn::Filter(f) => {
                        if f(&d) {
                            next.push((d, key))
                        }
                    }
                    TestFn::FlatMap(f) => next.extend(f(&d).into_iter().map(|x| (x, None))),
                    TestFn::ExtractKey(f) => {
                        let k = f(&d);
                        next.push((d, Some(k)))
                    }
                    TestFn::Sum => {
                        if let Datum::Int(v) = d {
                            *self.sums[i].get_or_insert(0) += v;
                        }
                    }
                    TestFn::PanicOn(bad) => {
                        assert!(&d != bad, "test operator panics on {}", d.py_str());
                        next.push((d, key))
                    }
                    TestFn::FailOn(bad) => {
                        if &d == bad {
                            errors.push(format!("failed on {}", d.py_str()));
                        } else {
                            next.push((d, key))
                        }
                    }
                }
            }
            rows = next;
        }
        emit_rows(rows, errors, out);
    }
}

fn emit_rows(rows: Vec<(Datum, Option<String>)>, errors: Vec<String>, out: &mut Emit) {
    let has_keys = rows.iter().any(|(_, k)| k.is_some());
    let keys = has_keys.then(|| {
        BinaryColumn::from_iter(
            rows.iter()
                .map(|(_, k)| k.as_deref().unwrap_or("").as_bytes()),
        )
    });
    let mut b = Batch::new(BatchData::Datums(
        rows.into_iter().map(|(d, _)| d).collect(),
    ));
    b.partition_keys = keys;
    b.errors = errors;
    out.push(b);
}

impl Operator for TestStage {
    fn name(&self) -> &'static str {
        "test"
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        let BatchData::Datums(d) = input.data else {
            return Err(EngineError::Internal("test host takes datums".into()));
        };
        let keys: Vec<Option<String>> = match &input.partition_keys {
            Some(k) => k
                .iter()
                .map(|k| Some(String::from_utf8_lossy(k).into_owned()))
                .collect(),
            None => vec![None; d.len()],
        };
        self.run(0, d.into_iter().zip(keys).collect(), out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        for i in 0..self.fns.len() {
            if let Some(s) = self.sums[i].take() {
                self.run(i + 1, vec![(Datum::Int(s), None)], out);
            }
        }
        Ok(())
    }
}

/// Runs `plan` on the pipelined executor and waits (bounded) for its output.
pub fn run_pipelined(
    source: Box<dyn Source>,
    plan: &Plan,
    host: &dyn UdfRuntime,
    shuffle: Option<&ShuffleCtx>,
    pool: &WorkerPool,
) -> Result<ExecutionOutput> {
    let (tx, rx) = mpsc::channel();
    let on_done = Box::new(move |o: ExecutionOutput| {
        let _ = tx.send(o);
    });
    let _exec = Execution::start(
        source,
        plan,
        Some(host),
        shuffle,
        pool,
        &ExecConfig::default(),
        on_done,
    )?;
    rx.recv_timeout(Duration::from_secs(60))
        .map_err(|_| EngineError::Execution("test execution did not finish in 60 s".into()))
}
