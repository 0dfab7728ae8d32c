//! Progress counters (`Execution::stage_counts`): records into and out of each stage,
//! counted per batch. A finished execution's counts are exact (read = input size, each
//! stage's out = the next stage's in); a running one's counts grow batch by batch.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, ints};
use engine::exec::{ExecConfig, Source, StageCount, WorkerPool};
use engine::plan::{Plan, StepSpec};
use engine::testing::{TestFn, VecSource};
use engine::{Batch, Datum, Result};

fn even() -> StepSpec {
    TestFn::Filter(Arc::new(
        |d: &Datum| matches!(d, Datum::Int(i) if i % 2 == 0),
    ))
    .step("filter")
}

fn add_one() -> StepSpec {
    TestFn::Map(Arc::new(|d: &Datum| match d {
        Datum::Int(i) => Datum::Int(i + 1),
        other => other.clone(),
    }))
    .step("map")
}

fn sc(records_in: u64, records_out: u64) -> StageCount {
    StageCount {
        records_in,
        records_out,
    }
}

#[test]
fn finished_execution_counts_every_stage() {
    let pool = WorkerPool::new(2, "counts");
    // Stages: source, fused host steps (map, filter), native count, host finalizer.
    let plan = Plan::new(vec![add_one(), even(), StepSpec::Count]);
    let (exec, rx) = common::start(
        VecSource::datums(&ints(0..1000), 64),
        &plan,
        None,
        &pool,
        &ExecConfig::default(),
    );
    let out = common::wait(&rx);
    assert_eq!(out.results, vec![Datum::Int(500)]);
    assert_eq!(
        exec.stage_counts(),
        vec![sc(1000, 1000), sc(1000, 500), sc(500, 1), sc(1, 1)]
    );
}

/// Yields batches of 10 ints forever, slowly (a long execution).
struct Slow(i64);

impl Source for Slow {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        std::thread::sleep(Duration::from_millis(1));
        let start = self.0;
        self.0 += 10;
        Ok(Some(Batch::datums(ints(start..self.0))))
    }
}

#[test]
fn running_execution_counts_grow() {
    let pool = WorkerPool::new(2, "grow");
    let plan = Plan::new(vec![add_one()]);
    let (exec, rx) = common::start(
        Box::new(Slow(0)),
        &plan,
        None,
        &pool,
        &ExecConfig::default(),
    );
    let read = || exec.stage_counts()[0].records_in;
    assert!(eventually(Duration::from_secs(10), || read() >= 30));
    let first = read();
    assert_eq!(first % 10, 0, "counted per whole batch");
    assert!(
        eventually(Duration::from_secs(10), || read() > first),
        "counts stopped growing while running"
    );
    exec.abort();
    let out = common::wait(&rx);
    assert!(out.aborted);
    let counts = exec.stage_counts();
    // Nothing is counted out of a stage that the next did not take in.
    for w in counts.windows(2) {
        assert!(w[0].records_out >= w[1].records_in, "{counts:?}");
    }
}
