//! A pipeline stage as a schedulable task, and the wake-up protocol between stages.
//!
//! A producer wakes its consumer after a push; a consumer wakes its producer after a pop
//! (space freed). Each stage's wake-up state machine is `schedule` (a wake on a running
//! stage leaves it `NOTIFIED`, so a stage that found its queue empty, or full, and went
//! idle never misses the wake that follows). The stage's state lives in a `TurnCell`:
//! the worker running the turn has it alone, with no lock per turn. A stage runs at most
//! a few batches per turn, then yields its worker so executions share the pool fairly.
//! The last stage gathers the output itself and hands it, once, to the completion.

use std::collections::VecDeque;
use std::sync::{OnceLock, Weak};

use super::handoff::{OnceNotice, TakeOnce, TurnCell};
use super::output::{ExecutionOutput, OnDone};
use super::pool::{PoolHandle, Task};
use super::schedule::Turn;
use super::Source;
use crate::batch::Batch;
use crate::error::EngineError;
use crate::ops::{Emit, Finish, Operator};
use crate::queue::{Consumer, Pop, Producer};
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicU8, Mutex, Ordering};

/// Batches a stage handles per turn before yielding its worker.
const BATCHES_PER_TURN: usize = 8;

/// `Shared::phase`: no stage has run yet.
pub(crate) const CREATED: u8 = 0;
/// `Shared::phase`: a stage has run.
pub(crate) const STARTED: u8 = 1;
/// `Shared::phase`: cancelled before any stage ran (nothing of it ever runs).
pub(crate) const CANCELLED_UNSTARTED: u8 = 2;

impl Shared {
    /// The state of an execution of `stages` stages, none of them run yet.
    pub(crate) fn new(stages: usize, on_done: OnDone) -> Shared {
        Shared {
            stop_source: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            phase: AtomicU8::new(CREATED),
            stages: Mutex::new(Vec::new()),
            on_done: TakeOnce::new(on_done),
            panics: Mutex::new(Vec::new()),
            stage_nanos: (0..stages).map(|_| AtomicU64::new(0)).collect(),
            counts: super::counts::Counts::new(stages),
            parked: OnceNotice::new(),
        }
    }

    /// A stage parked on an await: the first time, runs the `when_parked` callback.
    fn note_parked(&self) {
        self.parked.notify();
    }

    /// Runs `f` once the execution first parks on an await (at once if it has).
    pub(crate) fn when_parked(&self, f: OnPark) {
        self.parked.when(f);
    }

    /// Marks the execution cancelled and wakes every stage so each one stops. True if a
    /// stage had already run (else none ever will, and the stages complete it when they
    /// next get a worker).
    pub(crate) fn cancel(&self) -> bool {
        let started = match self.phase.compare_exchange(
            CREATED,
            CANCELLED_UNSTARTED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => false,
            Err(now) => now == STARTED,
        };
        self.cancelled.store(true, Ordering::Release);
        let stages = self
            .stages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in &stages {
            s.wake();
        }
        started
    }

    /// Completes an execution that produced nothing (cancelled before it started).
    pub(crate) fn complete(&self, aborted: bool) {
        self.complete_with(ExecutionOutput::default(), aborted);
    }

    /// Hands `out`, with the panics recorded, to `on_done` (once: later calls find it
    /// taken and drop their output) and drops the stages.
    fn complete_with(&self, mut out: ExecutionOutput, aborted: bool) {
        let done = self.on_done.take();
        let stages = std::mem::take(&mut *self.stages.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(on_done) = done {
            let panics =
                std::mem::take(&mut *self.panics.lock().unwrap_or_else(|e| e.into_inner()));
            out.errors.extend(panics);
            out.aborted = aborted;
            let m = crate::metrics::global();
            m.add(
                if aborted {
                    &m.executions_aborted
                } else {
                    &m.executions_finished
                },
                1,
            );
            on_done(out);
        }
        drop(stages);
    }

    /// Called by a stage before it runs: true once the execution has started (this stage
    /// starts it unless it was cancelled first).
    fn begin(&self) -> bool {
        // `STARTED` is final: after the first turn one load answers.
        if self.phase.load(Ordering::Acquire) == STARTED {
            return true;
        }
        match self
            .phase
            .compare_exchange(CREATED, STARTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == STARTED,
        }
    }
}

/// State shared by all stages of one execution.
pub(crate) struct Shared {
    /// Set by a satisfied limit or the first error: the source stops reading.
    pub(crate) stop_source: AtomicBool,
    pub(crate) cancelled: AtomicBool,
    /// `CREATED` until a stage first runs (a worker picked the execution up), then
    /// `STARTED`; `CANCELLED_UNSTARTED` if cancelled before that.
    pub(crate) phase: AtomicU8,
    /// Keeps stages alive until the execution ends (then cleared, breaking the cycle).
    pub(crate) stages: Mutex<Vec<Arc<Stage>>>,
    /// Taken by whichever completion comes first (the last stage's, or an abort's).
    on_done: TakeOnce<OnDone>,
    /// Internal errors (operator panics) of any stage, added to the output's errors on
    /// completion. A cold path: a mutex.
    panics: Mutex<Vec<String>>,
    /// Time each stage spent in its source or operator, by stage index (profiling).
    pub(crate) stage_nanos: Vec<AtomicU64>,
    /// Records into and out of each stage, by stage index (progress).
    pub(crate) counts: super::counts::Counts,
    /// The first time a stage parks on an await (`Operator::try_resume`), and what runs
    /// then (`Execution::when_parked`).
    parked: OnceNotice<OnPark>,
}

/// What runs when an execution first parks on an await.
pub(crate) type OnPark = Box<dyn FnOnce() + Send>;

pub(crate) enum Input {
    Source(Box<dyn Source>),
    Queue(Consumer<Batch>),
}

pub(crate) enum Output {
    Queue(Producer<Batch>),
    /// The end of the plan: the stage gathers the execution's output here.
    Sink(ExecutionOutput),
}

struct Inner {
    input: Option<Input>,
    op: Box<dyn Operator>,
    output: Option<Output>,
    stash: VecDeque<Batch>,
    finished: bool,
}

pub(crate) struct Stage {
    /// Position in the pipeline (0 = the source stage).
    index: usize,
    /// The stage's state, for the worker running its turn, and its wake-up state.
    inner: TurnCell<Inner>,
    shared: Arc<Shared>,
    pool: PoolHandle,
    prev: OnceLock<Weak<Stage>>,
    next: OnceLock<Weak<Stage>>,
}

// A `Next` lives for one step of a turn and is matched at once: boxing the batch would
// cost an allocation per batch to save a move.
#[allow(clippy::large_enum_variant)]
enum Next {
    Batch(Batch),
    Empty,
    End,
}

impl Stage {
    /// Stage `index` running `op` between `input` and `output`; `stash` holds batches
    /// to pass on before anything else (an inline run's, continued here).
    pub(crate) fn new(
        index: usize,
        (input, op, output): (Input, Box<dyn Operator>, Output),
        stash: VecDeque<Batch>,
        shared: Arc<Shared>,
        pool: PoolHandle,
    ) -> Arc<Stage> {
        Arc::new_cyclic(|weak: &Weak<Stage>| {
            // Operators that park (shuffles waiting for peers) wake their stage with this.
            let weak = Weak::clone(weak);
            let waker: crate::ops::Waker = Arc::new(move || {
                if let Some(s) = weak.upgrade() {
                    s.wake();
                }
            });
            let mut op = op;
            op.set_waker(waker);
            let inner = Inner {
                input: Some(input),
                op,
                output: Some(output),
                stash,
                finished: false,
            };
            Stage {
                index,
                inner: TurnCell::new(inner),
                shared,
                pool,
                prev: OnceLock::new(),
                next: OnceLock::new(),
            }
        })
    }

    pub(crate) fn link(prev: &Arc<Stage>, next: &Arc<Stage>) {
        let _ = prev.next.set(Arc::downgrade(next));
        let _ = next.prev.set(Arc::downgrade(prev));
    }

    /// Makes sure the stage runs (again) soon.
    pub(crate) fn wake(self: &Arc<Self>) {
        if self.inner.wake() {
            self.pool.spawn(Arc::clone(self) as Arc<dyn Task>);
        }
    }

    fn wake_link(link: &OnceLock<Weak<Stage>>) {
        if let Some(s) = link.get().and_then(Weak::upgrade) {
            s.wake();
        }
    }

    fn turn(&self, inner: &mut Inner) -> Turn {
        if !self.shared.begin() || self.shared.cancelled.load(Ordering::Acquire) {
            return self.abort(inner);
        }
        for _ in 0..BATCHES_PER_TURN {
            if !self.flush(inner) {
                return Turn::Idle; // output full: the consumer wakes us after a pop
            }
            if inner.finished {
                self.close_output(inner, false);
                return Turn::Done;
            }
            match self.resume(inner) {
                Finish::Done => {}
                Finish::Yield => return Turn::Yield,
                // Awaiting: the operator's waker runs the stage again.
                Finish::Parked => {
                    self.flush(inner);
                    self.shared.note_parked();
                    return Turn::Idle;
                }
            }
            match self.next_input(inner) {
                Next::Batch(b) => self.process(inner, b),
                Next::Empty => return Turn::Idle, // the producer wakes us after a push
                Next::End => {
                    inner.input = None;
                    let mut emit = Emit::new();
                    let progress = match self.timed(|| inner.op.try_finish(&mut emit)) {
                        Ok(p) => p,
                        Err(e) => {
                            inner
                                .stash
                                .push_back(Batch::errors_only(vec![e.to_string()]));
                            Finish::Done
                        }
                    };
                    inner.stash.extend(emit.drain());
                    match progress {
                        Finish::Done => inner.finished = true,
                        // Waiting on other shards: give the worker to other stages.
                        Finish::Yield => return Turn::Yield,
                        // Waiting for its waker (a full output: for the consumer's wake).
                        Finish::Parked => {
                            self.flush(inner);
                            return Turn::Idle;
                        }
                    }
                }
            }
        }
        Turn::Yield
    }

    /// Lets an operator with work pending from `process` go on (see
    /// `Operator::try_resume`); what it emits joins the stash.
    fn resume(&self, inner: &mut Inner) -> Finish {
        let mut emit = Emit::new();
        let res = self.timed(|| inner.op.try_resume(&mut emit));
        if emit.wants_stop() {
            self.shared.stop_source.store(true, Ordering::Release);
        }
        inner.stash.extend(emit.drain());
        res.unwrap_or_else(|e| {
            self.shared.stop_source.store(true, Ordering::Release);
            inner
                .stash
                .push_back(Batch::errors_only(vec![e.to_string()]));
            Finish::Done
        })
    }

    /// Runs `f`, adding its duration to this stage's profile.
    fn timed<R>(&self, f: impl FnOnce() -> R) -> R {
        let t0 = std::time::Instant::now();
        let r = f();
        if let Some(n) = self.shared.stage_nanos.get(self.index) {
            n.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        r
    }

    fn next_input(&self, inner: &mut Inner) -> Next {
        match inner.input.as_mut() {
            None => Next::End,
            Some(Input::Source(src)) => {
                if self.shared.stop_source.load(Ordering::Acquire) {
                    return Next::End;
                }
                if crate::memory::exhausted() {
                    // Reading more would only grow memory past the server's limit.
                    self.shared.stop_source.store(true, Ordering::Release);
                    let e = EngineError::ResourcesExhausted(crate::memory::OUT_OF_MEMORY.into());
                    inner
                        .stash
                        .push_back(Batch::errors_only(vec![e.to_string()]));
                    return Next::End;
                }
                match self.timed(|| src.next_batch()) {
                    Ok(Some(b)) => Next::Batch(b),
                    Ok(None) => Next::End,
                    Err(e) => {
                        inner
                            .stash
                            .push_back(Batch::errors_only(vec![e.to_string()]));
                        Next::End
                    }
                }
            }
            Some(Input::Queue(q)) => match q.pop() {
                Pop::Item(b) => {
                    Self::wake_link(&self.prev);
                    Next::Batch(b)
                }
                Pop::Empty => Next::Empty,
                Pop::Closed => Next::End,
            },
        }
    }

    fn process(&self, inner: &mut Inner, mut b: Batch) {
        let errors = if inner.op.handles_errors() {
            Vec::new()
        } else {
            std::mem::take(&mut b.errors)
        };
        let mut emit = Emit::new();
        let m = crate::metrics::global();
        m.add(&m.batches, 1);
        m.add(&m.records, b.len() as u64);
        self.shared.counts.add_in(self.index, b.len());
        let res = if !b.is_empty() {
            self.timed(|| inner.op.process(b, &mut emit))
        } else {
            Ok(())
        };
        if emit.wants_stop() {
            self.shared.stop_source.store(true, Ordering::Release);
        }
        inner.stash.extend(emit.drain());
        if !errors.is_empty() {
            inner.stash.push_back(Batch::errors_only(errors));
        }
        if let Err(e) = res {
            // An operator failure ends the execution's input; it is reported as an error.
            self.shared.stop_source.store(true, Ordering::Release);
            inner
                .stash
                .push_back(Batch::errors_only(vec![e.to_string()]));
        }
    }

    /// Moves stashed batches downstream; false when the output queue is full.
    fn flush(&self, inner: &mut Inner) -> bool {
        match inner.output.as_mut() {
            None => true,
            Some(Output::Queue(p)) => {
                while let Some(b) = inner.stash.pop_front() {
                    let n = b.len();
                    if let Err(b) = p.push(b) {
                        inner.stash.push_front(b);
                        return false;
                    }
                    self.shared.counts.add_out(self.index, n);
                    Self::wake_link(&self.next);
                }
                true
            }
            Some(Output::Sink(out)) => {
                for b in inner.stash.drain(..) {
                    let had_errors = !b.errors.is_empty();
                    self.shared.counts.add_out(self.index, b.len());
                    if let Err(e) = out.absorb(b) {
                        out.errors.push(e.to_string());
                    }
                    if had_errors {
                        // 1.2: once an error reaches the output, the reader stops.
                        self.shared.stop_source.store(true, Ordering::Release);
                    }
                }
                true
            }
        }
    }

    fn close_output(&self, inner: &mut Inner, aborted: bool) {
        match inner.output.take() {
            Some(Output::Queue(p)) => {
                drop(p); // the consumer sees `Closed` after the last item
                Self::wake_link(&self.next);
            }
            Some(Output::Sink(out)) => self.shared.complete_with(out, aborted),
            None => {}
        }
    }

    fn abort(&self, inner: &mut Inner) -> Turn {
        inner.input = None;
        inner.stash.clear();
        self.close_output(inner, true);
        Turn::Done
    }
}

impl Stage {
    /// Runs a turn; a panic in an operator (a bug) must not kill the worker or strand
    /// the execution: it ends the execution with an internal error instead.
    fn guarded_turn(&self, inner: &mut Inner) -> Turn {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn(inner)))
            .unwrap_or_else(|p| self.fail_on_panic(inner, p))
    }

    /// Records a panic as the execution's error and aborts every stage.
    fn fail_on_panic(&self, inner: &mut Inner, p: Box<dyn std::any::Any + Send>) -> Turn {
        let text = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        self.shared
            .panics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("Gearshift internal error: {text}"));
        self.shared.cancel();
        self.abort(inner)
    }
}

impl Task for Stage {
    fn run(self: Arc<Self>) {
        if self.inner.run(|inner| self.guarded_turn(inner)) {
            self.pool.spawn(Arc::clone(&self) as Arc<dyn Task>);
        }
    }
}
