//! Behaviours of the pipelined executor that differential tests cannot see, because the
//! oracle has no threads, queues or cancellation:
//! - the first error (an error record or a failing operator) stops the source early;
//! - a satisfied `limit` stops the source early;
//! - `Execution::abort` ends a long execution with `aborted == true`, calls `on_done`
//!   exactly once and releases the source;
//! - an execution no worker picked up yet is not started; aborting it with `abort_on`
//!   ends it at once on the other pool and nothing of it ever runs;
//! - hundreds of concurrent executions share a 2-thread pool (no thread per execution);
//! - bounded queues give back-pressure: a slow last stage behind capacity-1 queues still
//!   gets every record, in order, while the source never runs far ahead.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{eventually, ints};
use engine::exec::{ExecConfig, Execution, ExecutionOutput, Source, WorkerPool};
use engine::plan::{Plan, StepSpec};
use engine::testing::{run_pipelined, TestFn, TestUdf};
use engine::{Batch, Datum, Result};

/// What a [`ProbeSource`] saw: batches read, the threads that read them, and its drop.
#[derive(Default)]
struct Probe {
    read: AtomicUsize,
    dropped: AtomicBool,
    threads: Mutex<HashSet<String>>,
}

impl Probe {
    fn read(&self) -> usize {
        self.read.load(Ordering::SeqCst)
    }
}

/// Yields `batches` batches of `per_batch` consecutive ints (so far more than any test
/// should read when the executor stops it), reporting to a shared [`Probe`].
struct ProbeSource {
    next: i64,
    /// Batches this source has yielded (the probe may be shared by many sources).
    yielded: usize,
    batches: usize,
    per_batch: usize,
    /// Simulates a reader that takes time per batch (a long execution).
    delay: Duration,
    probe: Arc<Probe>,
}

impl ProbeSource {
    fn new(batches: usize, per_batch: usize, probe: &Arc<Probe>) -> Box<Self> {
        Box::new(ProbeSource {
            next: 0,
            yielded: 0,
            batches,
            per_batch,
            delay: Duration::ZERO,
            probe: Arc::clone(probe),
        })
    }
}

impl Source for ProbeSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.yielded >= self.batches {
            return Ok(None);
        }
        self.yielded += 1;
        self.probe.read.fetch_add(1, Ordering::SeqCst);
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        self.probe.threads.lock().expect("probe lock").insert(name);
        std::thread::sleep(self.delay);
        let start = self.next;
        self.next += self.per_batch as i64;
        Ok(Some(Batch::datums(ints(start..self.next))))
    }
}

impl Drop for ProbeSource {
    fn drop(&mut self) {
        self.probe.dropped.store(true, Ordering::SeqCst);
    }
}

/// Far more batches than a stopped execution may read: the bound the tests check against.
const MANY: usize = 100_000;
/// How far the source may run ahead of a stop: a few batches per stage and per queue slot
/// (default capacity 4, 8 batches per turn). Generous, but three orders below `MANY`.
const STOP_SLACK: usize = 100;

fn run(source: Box<dyn Source>, steps: Vec<StepSpec>) -> ExecutionOutput {
    let pool = WorkerPool::new(2, "exec");
    run_pipelined(source, &Plan::new(steps), &TestUdf, None, &pool).expect("execution")
}

fn add_one() -> StepSpec {
    TestFn::Map(Arc::new(|d: &Datum| match d {
        Datum::Int(i) => Datum::Int(i + 1),
        other => other.clone(),
    }))
    .step("map")
}

#[test]
fn first_error_record_stops_the_source() {
    let probe = Arc::new(Probe::default());
    let out = run(
        ProbeSource::new(MANY, 10, &probe),
        vec![TestFn::FailOn(Datum::Int(25)).step("map"), add_one()],
    );
    assert_eq!(out.errors, vec!["failed on 25".to_owned()]);
    assert!(
        probe.read() < STOP_SLACK,
        "source read {} batches after the error",
        probe.read()
    );
}

#[test]
fn failing_operator_stops_the_source() {
    let probe = Arc::new(Probe::default());
    let to_str = TestFn::Map(Arc::new(|d: &Datum| Datum::Str(d.py_str()))).step("map");
    // SumInts over strings fails as an operator (not per record): the execution ends.
    let out = run(
        ProbeSource::new(MANY, 10, &probe),
        vec![to_str, StepSpec::SumInts],
    );
    assert!(
        out.errors.iter().any(|e| e.starts_with("sum over")),
        "{:?}",
        out.errors
    );
    assert!(
        probe.read() < STOP_SLACK,
        "source read {} batches after the failure",
        probe.read()
    );
}

#[test]
fn satisfied_limit_stops_the_source() {
    let probe = Arc::new(Probe::default());
    let out = run(
        ProbeSource::new(MANY, 10, &probe),
        vec![add_one(), StepSpec::Limit { offset: 3, len: 25 }],
    );
    assert_eq!(out.results, ints(4..29));
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert!(
        probe.read() < STOP_SLACK,
        "source read {} batches past the limit",
        probe.read()
    );
}

/// Starts an endless execution and returns it with a counter of `on_done` calls and a
/// receiver for the output.
fn endless(
    pool: &WorkerPool,
    probe: &Arc<Probe>,
) -> (Execution, Arc<AtomicUsize>, mpsc::Receiver<ExecutionOutput>) {
    let mut source = ProbeSource::new(usize::MAX, 4, probe);
    source.delay = Duration::from_micros(200);
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let counter = Arc::clone(&calls);
    let on_done = Box::new(move |o: ExecutionOutput| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(o);
    });
    let plan = Plan::new(vec![add_one(), StepSpec::Count]);
    let exec = Execution::start(
        source,
        &plan,
        Some(&TestUdf),
        None,
        pool,
        &ExecConfig::default(),
        on_done,
    )
    .expect("plan builds");
    (exec, calls, rx)
}

#[test]
fn abort_ends_a_long_execution_once() {
    let pool = WorkerPool::new(2, "abort");
    let probe = Arc::new(Probe::default());
    let (exec, calls, rx) = endless(&pool, &probe);
    assert!(
        eventually(Duration::from_secs(10), || probe.read() > 20),
        "the execution never got going"
    );
    exec.abort();
    exec.abort(); // a second abort must not report twice
    let out = common::wait(&rx);
    assert!(out.aborted, "{out:?}");
    assert!(
        out.results.is_empty(),
        "an aborted count emits nothing: {:?}",
        out.results
    );
    assert!(
        eventually(Duration::from_secs(5), || probe
            .dropped
            .load(Ordering::SeqCst)),
        "source not released"
    );
    let read = probe.read();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(probe.read(), read, "the source kept being read after abort");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "on_done must run exactly once"
    );
}

#[test]
fn abort_before_any_worker_picked_it_up_never_runs_it() {
    let pool = WorkerPool::new(1, "queued");
    // The only worker is busy until `release` is sent.
    let (release, held) = mpsc::channel::<()>();
    let (busy_tx, busy) = mpsc::channel::<()>();
    pool.spawn_fn(move || {
        let _ = busy_tx.send(());
        let _ = held.recv();
    });
    busy.recv_timeout(Duration::from_secs(10))
        .expect("the worker is busy");
    let probe = Arc::new(Probe::default());
    let (exec, calls, rx) = endless(&pool, &probe);
    assert!(!exec.has_started(), "no worker was free");
    let other = WorkerPool::new(1, "other");
    assert!(!exec.abort_on(&other), "it had not started");
    // Completed on the other pool while this one's only worker is still busy.
    assert!(common::wait(&rx).aborted);
    let _ = release.send(());
    // Whatever the pool had queued has run once a later task runs (one FIFO worker).
    let (after_tx, after) = mpsc::channel::<()>();
    pool.spawn_fn(move || {
        let _ = after_tx.send(());
    });
    after
        .recv_timeout(Duration::from_secs(10))
        .expect("the queue drained");
    assert_eq!(
        probe.read(),
        0,
        "an execution aborted before it started never reads"
    );
    assert!(!exec.has_started());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn abort_after_completion_reports_nothing_more() {
    let pool = WorkerPool::new(2, "late");
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let (tx, rx) = mpsc::channel();
    let on_done = Box::new(move |o: ExecutionOutput| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(o);
    });
    let source = engine::testing::VecSource::datums(&ints(0..10), 3);
    let exec = Execution::start(
        source,
        &Plan::new(vec![StepSpec::Count]),
        Some(&TestUdf),
        None,
        &pool,
        &ExecConfig::default(),
        on_done,
    )
    .expect("plan builds");
    let out = common::wait(&rx);
    assert_eq!((out.results, out.aborted), (vec![Datum::Int(10)], false));
    exec.abort();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn many_executions_share_a_small_pool() {
    const EXECUTIONS: usize = 200;
    let pool = WorkerPool::new(2, "many");
    let probe = Arc::new(Probe::default());
    let even = TestFn::Filter(Arc::new(
        |d: &Datum| matches!(d, Datum::Int(i) if i % 2 == 0),
    ))
    .step("filter");
    let plan = Plan::new(vec![add_one(), even, StepSpec::Count]);
    let started: Vec<_> = (0..EXECUTIONS)
        .map(|_| {
            common::start(
                ProbeSource::new(10, 10, &probe),
                &plan,
                None,
                &pool,
                &ExecConfig::default(),
            )
        })
        .collect();
    for (i, (_, rx)) in started.iter().enumerate() {
        let out = common::wait(rx);
        assert_eq!(out.results, vec![Datum::Int(50)], "execution {i}: {out:?}");
    }
    // Every read of every source happened on one of the pool's two threads, never on a
    // thread of its own.
    assert_eq!(probe.read(), EXECUTIONS * 10);
    let threads = probe.threads.lock().expect("probe lock").clone();
    assert!(
        threads.len() <= pool.size() && threads.iter().all(|t| t.starts_with("many-")),
        "{threads:?}"
    );
}

#[test]
fn slow_last_stage_gets_everything_through_capacity_one_queues() {
    const RECORDS: usize = 300;
    let pool = WorkerPool::new(2, "slow");
    let probe = Arc::new(Probe::default());
    let processed = Arc::new(AtomicUsize::new(0));
    let max_lag = Arc::new(AtomicUsize::new(0));
    let (seen, lag) = (Arc::clone(&processed), Arc::clone(&max_lag));
    let watcher = Arc::clone(&probe);
    let slow = TestFn::Map(Arc::new(move |d: &Datum| {
        // Batches read but not yet through this stage: bounded by the queues in between.
        lag.fetch_max(
            watcher.read() - seen.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
        std::thread::sleep(Duration::from_micros(200));
        seen.fetch_add(1, Ordering::SeqCst);
        d.clone()
    }));
    let config = ExecConfig { queue_capacity: 1 };
    let plan = Plan::new(vec![slow.step("map")]);
    let (_exec, rx) = common::start(
        ProbeSource::new(RECORDS, 1, &probe),
        &plan,
        None,
        &pool,
        &config,
    );
    let out = common::wait(&rx);
    assert_eq!(
        out.results,
        ints(0..RECORDS as i64),
        "every record, in order"
    );
    let lag = max_lag.load(Ordering::SeqCst);
    // Source stash (1) + queue slot (1) + the record in hand (1), plus one read racing us.
    assert!(
        lag <= 4,
        "the source ran {lag} batches ahead of a slow stage behind capacity-1 queues"
    );
}

#[test]
fn a_panicking_operator_ends_the_execution_with_an_error_and_the_pool_survives() {
    let pool = WorkerPool::new(2, "panic");
    let plan = Plan::new(vec![TestFn::PanicOn(Datum::Int(7)).step("map")]);
    let out = run_pipelined(
        engine::testing::VecSource::datums(&ints(0..100), 10),
        &plan,
        &TestUdf,
        None,
        &pool,
    )
    .expect("on_done is still called");
    assert!(out.aborted);
    assert!(
        out.errors
            .iter()
            .any(|e| e.contains("Gearshift internal error")),
        "{:?}",
        out.errors
    );
    // Both workers are alive: later executions still complete.
    for _ in 0..4 {
        let ok = run_pipelined(
            engine::testing::VecSource::datums(&ints(0..10), 3),
            &Plan::new(vec![StepSpec::Count]),
            &TestUdf,
            None,
            &pool,
        )
        .unwrap();
        assert_eq!(ok.results, vec![Datum::Int(10)]);
    }
}
