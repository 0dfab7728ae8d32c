//! An operator that parks mid-input (`Operator::try_resume`, an awaiting callback in the
//! Python runtime) frees its worker: another execution runs to completion on a one-thread
//! pool meanwhile; `Execution::when_parked` fires once it parked; once the operator's
//! waker is called, the parked execution resumes and ends with every record, in order.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use common::{ints, DONE_TIMEOUT};
use engine::exec::{ExecConfig, Execution, ExecutionOutput, WorkerPool};
use engine::ops::{Emit, Finish, Operator, Waker};
use engine::plan::{Plan, StepSpec, UdfStep};
use engine::testing::VecSource;
use engine::udf::UdfRuntime;
use engine::{Batch, Datum, Result};

/// The gate a parked operator waits for: open, and the waker to call when it opens.
#[derive(Default)]
struct Gate {
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
    resumes: AtomicUsize,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        let w = self.waker.lock().expect("gate").clone();
        if let Some(w) = w {
            w();
        }
    }
}

/// Holds every batch until the gate opens (a record whose callback awaits).
struct Held {
    gate: Option<Arc<Gate>>,
    pending: Vec<Batch>,
}

impl Operator for Held {
    fn name(&self) -> &'static str {
        "held"
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        match &self.gate {
            Some(_) => self.pending.push(input),
            None => out.push(input),
        }
        Ok(())
    }

    fn try_resume(&mut self, out: &mut Emit) -> Result<Finish> {
        let Some(gate) = &self.gate else {
            return Ok(Finish::Done);
        };
        if self.pending.is_empty() {
            return Ok(Finish::Done);
        }
        gate.resumes.fetch_add(1, Ordering::SeqCst);
        if !gate.open.load(Ordering::SeqCst) {
            return Ok(Finish::Parked);
        }
        for b in self.pending.drain(..) {
            out.push(b);
        }
        Ok(Finish::Done)
    }

    fn set_waker(&mut self, waker: Waker) {
        if let Some(g) = &self.gate {
            *g.waker.lock().expect("gate") = Some(waker);
        }
    }
}

/// Builds a [`Held`] stage, gated when the runtime has a gate.
struct HeldRuntime(Option<Arc<Gate>>);

impl UdfRuntime for HeldRuntime {
    fn build_stage(&self, _steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        Ok(Box::new(Held {
            gate: self.0.clone(),
            pending: Vec::new(),
        }))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(engine::ops::Chain::new(Vec::new()))
    }
}

fn plan() -> Plan {
    Plan::new(vec![StepSpec::Udf(UdfStep {
        kind: "map",
        name: "held".into(),
        arg: String::new(),
        payload: Arc::new(()),
    })])
}

fn start(
    pool: &WorkerPool,
    rt: &HeldRuntime,
    values: &[Datum],
) -> (Execution, mpsc::Receiver<ExecutionOutput>) {
    let (tx, rx) = mpsc::channel();
    let on_done = Box::new(move |out: ExecutionOutput| {
        let _ = tx.send(out);
    });
    let source = VecSource::datums(values, 2);
    let cfg = ExecConfig::default();
    let e = Execution::start(source, &plan(), Some(rt), None, pool, &cfg, on_done).expect("start");
    (e, rx)
}

#[test]
fn a_parked_execution_frees_its_worker_and_resumes_in_order() {
    let pool = WorkerPool::new(1, "park");
    let gate = Arc::new(Gate::default());
    let values = ints(0..7);
    let (parked, parked_done) = start(&pool, &HeldRuntime(Some(Arc::clone(&gate))), &values);
    let (tx, fired) = mpsc::channel();
    parked.when_parked(Box::new(move || {
        let _ = tx.send(());
    }));
    fired.recv_timeout(DONE_TIMEOUT).expect("when_parked fired");

    // The only worker is free: another execution runs to its end meanwhile.
    let (_, other_done) = start(&pool, &HeldRuntime(None), &ints(0..3));
    let other = other_done.recv_timeout(DONE_TIMEOUT).expect("other ran");
    assert_eq!(other.results, ints(0..3));
    assert!(parked_done.try_recv().is_err(), "still parked");

    gate.open();
    let out = parked_done.recv_timeout(DONE_TIMEOUT).expect("resumed");
    assert_eq!(out.results, values);
    assert!(out.errors.is_empty() && !out.aborted);
}

#[test]
fn when_parked_never_fires_for_an_execution_that_does_not_park() {
    let pool = WorkerPool::new(1, "park");
    let (e, done) = start(&pool, &HeldRuntime(None), &ints(0..4));
    let out = done.recv_timeout(DONE_TIMEOUT).expect("done");
    assert_eq!(out.results, ints(0..4));
    let fired = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fired);
    e.when_parked(Box::new(move || f.store(true, Ordering::SeqCst)));
    assert!(!fired.load(Ordering::SeqCst));
}

#[test]
fn aborting_a_parked_execution_ends_it() {
    let pool = WorkerPool::new(1, "park");
    let gate = Arc::new(Gate::default());
    let (e, done) = start(&pool, &HeldRuntime(Some(gate)), &ints(0..4));
    let (tx, fired) = mpsc::channel();
    e.when_parked(Box::new(move || {
        let _ = tx.send(());
    }));
    fired.recv_timeout(DONE_TIMEOUT).expect("parked");
    e.abort();
    let out = done.recv_timeout(DONE_TIMEOUT).expect("aborted");
    assert!(out.aborted);
}
