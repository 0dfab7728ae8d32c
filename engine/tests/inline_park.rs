//! An inline run that parks at an await (`inline::run_inline_parking`) stops there and
//! goes on as a pooled execution (`Parked::start`): records before the await are in the
//! output first, the parked record and everything after it follow once the await is over,
//! in order, and an end-of-input step still runs once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::batch::{Batch, BatchData};
use engine::exec::{ExecutionOutput, WorkerPool};
use engine::inline::{run_inline_parking, InlineRun};
use engine::ops::{Emit, Finish, Operator, Waker};
use engine::plan::{Plan, StepSpec, UdfStep};
use engine::testing::VecSource;
use engine::udf::UdfRuntime;
use engine::{Datum, Result};

/// The gate an operator waits on: opened by the test, which then calls the waker.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().clone() {
            w();
        }
    }
}

/// Passes records on; the record `at` awaits the gate (parks with what follows it).
struct Awaits {
    at: Datum,
    gate: Arc<Gate>,
    parked: Option<Vec<Datum>>,
}

impl Operator for Awaits {
    fn name(&self) -> &'static str {
        "awaits"
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        let rows = datums(input);
        match rows.iter().position(|d| *d == self.at) {
            Some(i) if !self.gate.open.load(Ordering::SeqCst) => {
                out.push(Batch::datums(rows[..i].to_vec()));
                self.parked = Some(rows[i..].to_vec());
            }
            _ => out.push(Batch::datums(rows)),
        }
        Ok(())
    }

    fn try_resume(&mut self, out: &mut Emit) -> Result<Finish> {
        if self.parked.is_none() {
            return Ok(Finish::Done);
        }
        if !self.gate.open.load(Ordering::SeqCst) {
            return Ok(Finish::Parked);
        }
        out.push(Batch::datums(self.parked.take().unwrap_or_default()));
        Ok(Finish::Done)
    }

    fn set_waker(&mut self, waker: Waker) {
        *self.gate.waker.lock().unwrap() = Some(waker);
    }

    fn is_parked(&self) -> bool {
        self.parked.is_some()
    }
}

/// Sums ints; emits the sum at the end.
#[derive(Default)]
struct Sum(i64);

impl Operator for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }

    fn process(&mut self, input: Batch, _out: &mut Emit) -> Result<()> {
        for d in datums(input) {
            if let Datum::Int(v) = d {
                self.0 += v;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        out.push(Batch::datums(vec![Datum::Int(self.0)]));
        Ok(())
    }
}

struct Runtime(Arc<Gate>);

impl UdfRuntime for Runtime {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        Ok(match steps[0].kind {
            "sum" => Box::new(Sum::default()),
            _ => Box::new(Awaits {
                at: Datum::Int(3),
                gate: Arc::clone(&self.0),
                parked: None,
            }),
        })
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(engine::ops::Chain::new(Vec::new()))
    }
}

fn datums(b: Batch) -> Vec<Datum> {
    match b.data {
        BatchData::Datums(d) => d,
        _ => panic!("test batches hold datums"),
    }
}

fn step(kind: &'static str) -> StepSpec {
    StepSpec::Udf(UdfStep {
        kind,
        name: kind.into(),
        arg: String::new(),
        payload: Arc::new(()),
    })
}

fn ints(range: std::ops::RangeInclusive<i64>) -> Vec<Datum> {
    range.map(Datum::Int).collect()
}

/// Runs `plan` over 1..=5 inline; it must park; the test opens the gate once the rest
/// runs on a pool; returns (output before the await, whole output).
fn park_then_finish(plan: Plan) -> (ExecutionOutput, ExecutionOutput) {
    let gate = Arc::new(Gate::default());
    let rt = Runtime(Arc::clone(&gate));
    let source = VecSource::datums(&ints(1..=5), 5);
    let parked = match run_inline_parking(source, &plan, Some(&rt)).unwrap() {
        InlineRun::Parked(p) => p,
        InlineRun::Done(out) => panic!("the run did not park: {out:?}"),
    };
    let before = parked.output().clone();
    let pool = WorkerPool::new(1, "inline-park-test");
    let (tx, rx) = mpsc::channel();
    let on_done = Box::new(move |out: ExecutionOutput| tx.send(out).unwrap());
    let _exec = parked.start(&pool, |op| op, |s| s, on_done);
    gate.open();
    let out = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the rest finished");
    (before, out)
}

#[test]
fn an_inline_run_parks_and_its_rest_goes_on_in_order() {
    let plan = Plan::new(vec![step("awaits")]);
    let (before, out) = park_then_finish(plan);
    assert_eq!(before.results, ints(1..=2));
    assert_eq!(out.results, ints(1..=5));
    assert!(out.errors.is_empty() && !out.aborted);
}

#[test]
fn an_accumulation_after_a_parked_step_releases_once_at_the_end() {
    let plan = Plan::new(vec![step("awaits"), StepSpec::Collect, step("sum")]);
    let (before, out) = park_then_finish(plan);
    assert!(before.results.is_empty());
    assert_eq!(out.results, vec![Datum::Int(15)]);
}

#[test]
fn an_inline_run_that_never_awaits_is_done_inline() {
    let gate = Arc::new(Gate::default());
    gate.open.store(true, Ordering::SeqCst);
    let rt = Runtime(gate);
    let plan = Plan::new(vec![step("awaits"), StepSpec::Collect, step("sum")]);
    let source = VecSource::datums(&ints(1..=5), 2);
    match run_inline_parking(source, &plan, Some(&rt)).unwrap() {
        InlineRun::Done(out) => assert_eq!(out.results, vec![Datum::Int(15)]),
        InlineRun::Parked(_) => panic!("parked without an await"),
    }
}
