//! Turns a [`Plan`] into running stages: one stage for the source, then one per stage
//! group (fused host steps, a chain of native steps, or a shuffle step), the last feeding
//! the sink.

use super::output::{ExecutionOutput, OnDone};
use super::pool::WorkerPool;
use super::stage::{Input, Output, Shared, Stage};
use super::Source;
use crate::error::{EngineError, Result};
use crate::ops::{Chain, CountByOp, CountOp, LimitOp, Operator, SumByKeyOp, SumIntsOp};
use crate::plan::{Plan, StepSpec, UdfStep};
use crate::queue::spsc;
use crate::shuffle::{ShuffleCtx, ShuffleOp};
use crate::sync::{Arc, Ordering};
use crate::udf::UdfRuntime;

/// Tuning of one execution.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Capacity (in batches) of each queue between stages.
    pub queue_capacity: usize,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig { queue_capacity: 4 }
    }
}

/// A running execution. Dropping the handle does not stop it; call [`Execution::abort`].
/// Clones are handles on the same execution.
#[derive(Clone)]
pub struct Execution {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution").finish_non_exhaustive()
    }
}

impl Execution {
    /// Builds the stages of `plan` and starts them on `pool`. `on_done` is called exactly
    /// once, on a worker thread, with the output.
    pub fn start(
        source: Box<dyn Source>,
        plan: &Plan,
        host: Option<&dyn UdfRuntime>,
        shuffle: Option<&ShuffleCtx>,
        pool: &WorkerPool,
        config: &ExecConfig,
        on_done: OnDone,
    ) -> Result<Execution> {
        let ops = build_operators(plan, host, shuffle)?;
        let fresh = Continued::No;
        Ok(Self::start_ops(source, ops, fresh, pool, config, on_done))
    }

    /// Starts stages running `ops` (built already, maybe with state: an inline run that
    /// parked, `inline::Parked`) over `source` on `pool`. A continued run has started
    /// already (aborting it ends it as a running one), and its held batches wait as an
    /// operator's input, by operator index, ahead of anything from upstream.
    pub fn start_ops(
        source: Box<dyn Source>,
        ops: Vec<Box<dyn Operator>>,
        continued: Continued,
        pool: &WorkerPool,
        config: &ExecConfig,
        on_done: OnDone,
    ) -> Execution {
        let m = crate::metrics::global();
        m.add(&m.executions_started, 1);
        let shared = Arc::new(Shared::new(ops.len() + 1, on_done));
        let mut held = match continued {
            Continued::No => Vec::new(),
            Continued::Held(held) => {
                shared.phase.store(super::stage::STARTED, Ordering::Release);
                held
            }
        };
        let handle = pool.handle();
        let mut stages: Vec<Arc<Stage>> = Vec::with_capacity(ops.len() + 1);
        let mut input = Input::Source(source);
        // The source runs in a stage of its own (with a pass-through operator) so reading
        // overlaps with processing.
        let mut all_ops: Vec<Box<dyn Operator>> = vec![Box::new(Chain::new(Vec::new()))];
        all_ops.extend(ops);
        let last = all_ops.len() - 1;
        for (i, op) in all_ops.into_iter().enumerate() {
            let (output, next_input) = if i == last {
                (Output::Sink(ExecutionOutput::default()), None)
            } else {
                let (p, c) = spsc(config.queue_capacity);
                (Output::Queue(p), Some(Input::Queue(c)))
            };
            // Stage `i`'s output feeds operator `i` (stage 0 is the source's pass-through):
            // batches held for that operator leave stage `i` first.
            let stash = held
                .iter_mut()
                .filter(|(at, _)| *at == i)
                .flat_map(|(_, b)| b.drain(..))
                .collect();
            let parts = (input, op, output);
            let stage = Stage::new(i, parts, stash, Arc::clone(&shared), handle.clone());
            if let Some(prev) = stages.last() {
                Stage::link(prev, &stage);
            }
            stages.push(stage);
            match next_input {
                Some(n) => input = n,
                None => break,
            }
        }
        *shared.stages.lock().unwrap_or_else(|e| e.into_inner()) = stages.clone();
        for s in &stages {
            s.wake();
        }
        Execution { shared }
    }

    /// Time spent by each stage so far (index 0 is the source stage), in nanoseconds.
    pub fn stage_nanos(&self) -> Vec<u64> {
        self.shared
            .stage_nanos
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// Records into and out of each stage so far (index 0 is the source stage: its
    /// `records_in` is the records read). Counted per batch, so it grows batch by batch.
    pub fn stage_counts(&self) -> Vec<super::StageCount> {
        self.shared.counts.snapshot()
    }

    /// Stops the execution as soon as each stage next runs; `on_done` then reports
    /// `aborted`. Work already inside a host callback finishes (or is interrupted by the
    /// host) first. True if the execution had started; false: no stage ever runs.
    pub fn abort(&self) -> bool {
        self.shared.cancel()
    }

    /// As [`Execution::abort`]; an execution that had not started completes at once on
    /// `pool` (`on_done` reports `aborted`), not when its stages next get a worker of
    /// their (busy) pool.
    pub fn abort_on(&self, pool: &WorkerPool) -> bool {
        let started = self.shared.cancel();
        if !started {
            let shared = Arc::clone(&self.shared);
            pool.spawn_fn(move || shared.complete(true));
        }
        started
    }

    /// Calls `f` once, when one of the execution's stages first parks on an await (its
    /// worker freed until the awaited value is set; at once if that already happened);
    /// never if none does. A queue of executions run one after the other can start the
    /// next one then instead of when this one ends.
    pub fn when_parked(&self, f: Box<dyn FnOnce() + Send>) {
        self.shared.when_parked(f);
    }

    /// True once a worker picked the execution up (a stage ran); before that it waits
    /// for a free worker (1.2's `created`).
    pub fn has_started(&self) -> bool {
        self.shared.phase.load(Ordering::Acquire) == super::stage::STARTED
    }
}

/// Whether [`Execution::start_ops`] continues a run that started elsewhere.
pub enum Continued {
    No,
    /// An inline run that parked: batches its operators have still to take, by index.
    Held(Vec<(usize, Vec<crate::batch::Batch>)>),
}

/// One operator per stage group of the plan, plus the host finalizer when needed.
pub fn build_operators(
    plan: &Plan,
    host: Option<&dyn UdfRuntime>,
    shuffle: Option<&ShuffleCtx>,
) -> Result<Vec<Box<dyn Operator>>> {
    let mut ops: Vec<Box<dyn Operator>> = Vec::new();
    for (gi, group) in plan.stage_groups().into_iter().enumerate() {
        if group[0].is_host() {
            let host =
                host.ok_or_else(|| EngineError::Plan("plan has host steps but no host".into()))?;
            let steps: Vec<UdfStep> = group
                .iter()
                .filter_map(|s| match s {
                    StepSpec::Udf(h) => Some(h.clone()),
                    _ => None,
                })
                .collect();
            ops.push(host.build_stage(&steps)?);
        } else if group.len() == 1 && matches!(group[0], StepSpec::Collect | StepSpec::Repartition)
        {
            ops.push(shuffle_op(&group[0], gi as u32, shuffle));
        } else {
            let chain = group.iter().map(native_op).collect::<Result<Vec<_>>>()?;
            ops.push(Box::new(Chain::new(chain)));
        }
    }
    if let Some(h) = host {
        ops.push(h.finalizer());
    }
    Ok(ops)
}

/// The native operator for a (non-shuffle) native step.
pub fn native_op(s: &StepSpec) -> Result<Box<dyn Operator>> {
    Ok(match s {
        StepSpec::Limit { offset, len } => Box::new(LimitOp::new(*offset, *len)),
        StepSpec::Count => Box::<CountOp>::default(),
        StepSpec::SumInts => Box::<SumIntsOp>::default(),
        StepSpec::CountBy => Box::<CountByOp>::default(),
        StepSpec::SumByKey => Box::<SumByKeyOp>::default(),
        other => {
            return Err(EngineError::Internal(format!(
                "{other:?} is not a native step"
            )))
        }
    })
}

fn shuffle_op(s: &StepSpec, step_id: u32, shuffle: Option<&ShuffleCtx>) -> Box<dyn Operator> {
    let collect = matches!(s, StepSpec::Collect);
    match shuffle {
        Some(ctx) => Box::new(ShuffleOp::new(ctx.clone(), step_id, collect)),
        // A single shard: collect and repartition move nothing (1.2 does the same locally).
        None => Box::new(Chain::new(Vec::new())),
    }
}
