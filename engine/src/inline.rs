//! The inline executor: runs a plan one record at a time, one step at a time, on the
//! calling thread, with no worker pool, queues or stages.
//!
//! Production uses it for every synchronous run, where the caller holds the Redis lock and
//! must have the output before it returns: sync registrations (keyspace events, and the
//! commands linked to them), `RG.TRIGGER`, command hooks and sync stream batches. The
//! differential tests also run it next to the pipelined executor ([`crate::exec`]).
//!
//! It owns nothing beyond one run: it builds the plan's operators (native ones through
//! `exec::native_op`, user-function ones through the [`UdfRuntime`]), pushes each record
//! through them, then flushes each operator's `finish` output downstream. Shuffle steps
//! (`Collect`, `Repartition`) are no-ops here: an inline run is on one shard. The first
//! error record stops reading the source.
//!
//! [`run_inline_parking`] gives the operators a waker, so a step that awaits parks its
//! operator instead of waiting (REFERENCE §8: a sync run that awaits goes on in the
//! background): the run stops there and returns a [`Parked`] run — its operators with
//! their state, the batches they still have to take, the unread source and the output so
//! far — which [`Parked::start`] continues as a pooled execution. The inline part itself
//! never starts a thread.
//!
//! Depends on `batch`, `error`, `exec` (`Source`, `ExecutionOutput`, `native_op`,
//! `Execution::start_ops`), `ops`, `plan` and `udf`.

use crate::batch::Batch;
use crate::error::{EngineError, Result};
use crate::exec::{Continued, ExecConfig, Execution, ExecutionOutput, OnDone, Source, WorkerPool};
use crate::ops::{Emit, Finish, Operator, Waker};
use crate::plan::{Plan, StepSpec};
use crate::sync::Arc;
use crate::udf::UdfRuntime;

/// Runs `plan` over `source` record by record on the calling thread and returns its output.
///
/// `udf` builds the plan's user-function steps and the finalizer; plans with such steps
/// need one.
pub fn run_inline(
    source: Box<dyn Source>,
    plan: &Plan,
    udf: Option<&dyn UdfRuntime>,
) -> Result<ExecutionOutput> {
    match run(source, plan, udf, false)? {
        InlineRun::Done(out) => Ok(out),
        InlineRun::Parked(_) => Err(EngineError::Internal(
            "an inline run without a waker parked".into(),
        )),
    }
}

/// As [`run_inline`], but a step that awaits parks the run instead of waiting: the
/// caller continues it ([`Parked::start`]) once it let go of what it holds.
pub fn run_inline_parking(
    source: Box<dyn Source>,
    plan: &Plan,
    udf: Option<&dyn UdfRuntime>,
) -> Result<InlineRun> {
    run(source, plan, udf, true)
}

/// How an inline run ended.
pub enum InlineRun {
    Done(ExecutionOutput),
    /// A step awaits: the rest of the run, to continue elsewhere.
    Parked(Parked),
}

/// An inline run stopped at an await: what [`Parked::start`] continues.
pub struct Parked {
    /// The operators not finished yet, with their state (one of them parked).
    ops: Vec<Box<dyn Operator>>,
    /// Batches an operator still has to take (it parked before them), by its index.
    held: Vec<(usize, Vec<Batch>)>,
    /// What is left to read (`None`: nothing, or the run must stop reading).
    source: Option<Box<dyn Source>>,
    /// The output so far.
    out: ExecutionOutput,
}

impl Parked {
    /// The output the run gave before it parked.
    pub fn output(&self) -> &ExecutionOutput {
        &self.out
    }

    /// Continues the run as a pooled execution on `pool`: each operator and the source
    /// through `wrap_op` / `wrap_source` (to run them in the caller's scope on the
    /// workers); `on_done` gets the whole run's output, what came before the await first.
    pub fn start(
        self,
        pool: &WorkerPool,
        wrap_op: impl Fn(Box<dyn Operator>) -> Box<dyn Operator>,
        wrap_source: impl FnOnce(Box<dyn Source>) -> Box<dyn Source>,
        on_done: OnDone,
    ) -> Execution {
        let Parked {
            ops,
            held,
            source,
            out,
        } = self;
        let ops = ops.into_iter().map(wrap_op).collect();
        let source = wrap_source(source.unwrap_or_else(|| Box::new(Prefixed(None, None))));
        let merged: OnDone = Box::new(move |later: ExecutionOutput| {
            let mut all = out;
            all.results.extend(later.results);
            all.errors.extend(later.errors);
            all.aborted = later.aborted;
            on_done(all)
        });
        let config = ExecConfig::default();
        Execution::start_ops(source, ops, Continued::Held(held), pool, &config, merged)
    }
}

/// A source that yields `.0` first, then what `.1` yields.
struct Prefixed(Option<Batch>, Option<Box<dyn Source>>);

impl Source for Prefixed {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if let Some(b) = self.0.take().filter(|b| !b.is_empty()) {
            return Ok(Some(b));
        }
        match &mut self.1 {
            Some(s) => s.next_batch(),
            None => Ok(None),
        }
    }
}

fn run(
    mut source: Box<dyn Source>,
    plan: &Plan,
    udf: Option<&dyn UdfRuntime>,
    parking: bool,
) -> Result<InlineRun> {
    let mut ops = build(plan, udf)?;
    if parking {
        // Only lets operators park: a parked run continues as a pooled execution, whose
        // stages give them their own wakers.
        let waker: Waker = Arc::new(|| {});
        for op in &mut ops {
            op.set_waker(Arc::clone(&waker));
        }
    }
    let mut out = ExecutionOutput::default();
    'read: while let Some(mut rest) = source.next_batch()? {
        if !rest.errors.is_empty() {
            out.errors.append(&mut rest.errors);
            break;
        }
        // `rest` carries no errors (handled above; `split_at` leaves them on the head), so
        // `is_empty` means "no records left".
        while !rest.is_empty() {
            let (one, tail) = split_at(rest, 1);
            rest = tail;
            let pushed = push_through(&mut ops, 0, vec![one], &mut out)?;
            if parking && pushed.parked(&ops) {
                let source: Option<Box<dyn Source>> = match pushed.stop {
                    true => None,
                    false => Some(Box::new(Prefixed(Some(rest), Some(source)))),
                };
                let held = pushed.held;
                return Ok(InlineRun::Parked(Parked {
                    ops,
                    held,
                    source,
                    out,
                }));
            }
            if pushed.stop {
                break 'read;
            }
        }
    }
    for i in 0..ops.len() {
        let mut e = Emit::new();
        let progress = match parking {
            true => ops[i].try_finish(&mut e)?,
            false => ops[i].finish(&mut e).map(|()| Finish::Done)?,
        };
        let flushed: Vec<Batch> = e.drain().collect();
        let pushed = push_through(&mut ops, i + 1, flushed, &mut out)?;
        let finishing = progress == Finish::Parked;
        if parking && (finishing || pushed.parked(&ops)) {
            // Operators before `i` are done; `i` itself too unless it parked finishing.
            let first = if finishing { i } else { i + 1 };
            let ops: Vec<_> = ops.into_iter().skip(first).collect();
            let held = pushed
                .held
                .into_iter()
                .map(|(at, b)| (at - first, b))
                .collect();
            return Ok(InlineRun::Parked(Parked {
                ops,
                held,
                source: None,
                out,
            }));
        }
    }
    Ok(InlineRun::Done(out))
}

fn build(plan: &Plan, udf: Option<&dyn UdfRuntime>) -> Result<Vec<Box<dyn Operator>>> {
    let mut ops = Vec::new();
    for s in &plan.steps {
        match s {
            StepSpec::Collect | StepSpec::Repartition => {}
            StepSpec::Udf(h) => ops.push(
                udf.expect("user-function steps need a UdfRuntime")
                    .build_stage(std::slice::from_ref(h))?,
            ),
            native => ops.push(crate::exec::native_op(native)?),
        }
    }
    if let Some(h) = udf {
        ops.push(h.finalizer());
    }
    Ok(ops)
}

fn split_at(b: Batch, at: usize) -> (Batch, Batch) {
    let n = b.len();
    let dest: Vec<usize> = (0..n).map(|i| usize::from(i >= at)).collect();
    let mut parts = b.partition(&dest, 2);
    let tail = parts.pop().expect("two parts");
    let head = parts.pop().expect("two parts");
    (head, tail)
}

/// What a push through the operators left behind.
struct Pushed {
    /// The source should stop (an error reached the output, or an operator asked).
    stop: bool,
    /// Batches a parked operator has still to take, by operator index.
    held: Vec<(usize, Vec<Batch>)>,
}

impl Pushed {
    fn parked(&self, ops: &[Box<dyn Operator>]) -> bool {
        !self.held.is_empty() || ops.iter().any(|o| o.is_parked())
    }
}

/// Pushes batches through `ops[from..]`; a batch reaching an operator that parked waits
/// for it (`held`).
fn push_through(
    ops: &mut [Box<dyn Operator>],
    from: usize,
    input: Vec<Batch>,
    out: &mut ExecutionOutput,
) -> Result<Pushed> {
    let mut stop = false;
    let mut held = Vec::new();
    let mut current = input;
    for (at, op) in ops.iter_mut().enumerate().skip(from) {
        let mut next = Emit::new();
        let mut batches = current.into_iter();
        while let Some(mut b) = batches.next() {
            if op.is_parked() {
                let mut waiting = vec![b];
                waiting.extend(batches);
                held.push((at, waiting));
                break;
            }
            let errors = std::mem::take(&mut b.errors);
            if !b.is_empty() {
                op.process(b, &mut next)?;
            }
            if !errors.is_empty() {
                next.push(Batch::errors_only(errors));
            }
        }
        stop |= next.wants_stop();
        current = next.drain().collect();
    }
    for b in current {
        stop |= !b.errors.is_empty();
        out.absorb(b)?;
    }
    Ok(Pushed { stop, held })
}
