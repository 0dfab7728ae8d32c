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
//! Depends on `batch`, `error`, `exec` (`Source`, `ExecutionOutput`, `native_op`), `ops`,
//! `plan` and `udf`; never on threads.

use crate::batch::Batch;
use crate::error::Result;
use crate::exec::{ExecutionOutput, Source};
use crate::ops::{Emit, Operator};
use crate::plan::{Plan, StepSpec};
use crate::udf::UdfRuntime;

/// Runs `plan` over `source` record by record on the calling thread and returns its output.
///
/// `udf` builds the plan's user-function steps and the finalizer; plans with such steps
/// need one.
pub fn run_inline(
    mut source: Box<dyn Source>,
    plan: &Plan,
    udf: Option<&dyn UdfRuntime>,
) -> Result<ExecutionOutput> {
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
            if push_through(&mut ops, 0, vec![one], &mut out)? {
                break 'read;
            }
        }
    }
    for i in 0..ops.len() {
        let mut e = Emit::new();
        ops[i].finish(&mut e)?;
        let flushed: Vec<Batch> = e.drain().collect();
        push_through(&mut ops, i + 1, flushed, &mut out)?;
    }
    Ok(out)
}

fn split_at(b: Batch, at: usize) -> (Batch, Batch) {
    let n = b.len();
    let dest: Vec<usize> = (0..n).map(|i| usize::from(i >= at)).collect();
    let mut parts = b.partition(&dest, 2);
    let tail = parts.pop().expect("two parts");
    let head = parts.pop().expect("two parts");
    (head, tail)
}

/// Pushes batches through `ops[from..]`; returns true when the source should stop.
fn push_through(
    ops: &mut [Box<dyn Operator>],
    from: usize,
    input: Vec<Batch>,
    out: &mut ExecutionOutput,
) -> Result<bool> {
    let mut stop = false;
    let mut current = input;
    for op in &mut ops[from..] {
        let mut next = Emit::new();
        for mut b in current {
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
    Ok(stop)
}
