//! The reference executor: one record at a time, one step at a time, on the calling thread.
//!
//! It is deliberately naive — the oracle the pipelined executor is tested against
//! (differential tests over random plans and batch sizes). Shuffle steps are no-ops here
//! (a single shard). Depends on `exec::Source`, `ops`, `plan`, `host`.

use crate::batch::Batch;
use crate::error::Result;
use crate::exec::{ExecutionOutput, Source};
use crate::host::HostRuntime;
use crate::ops::{Emit, Operator};
use crate::plan::{Plan, StepSpec};

/// Runs `plan` over `source` record by record and returns its output.
pub fn run_reference(
    mut source: Box<dyn Source>,
    plan: &Plan,
    host: Option<&dyn HostRuntime>,
) -> Result<ExecutionOutput> {
    let mut ops = Vec::new();
    for s in &plan.steps {
        match s {
            StepSpec::Collect | StepSpec::Repartition => {}
            StepSpec::Host(h) => ops.push(
                host.expect("host steps need a host")
                    .build_stage(std::slice::from_ref(h))?,
            ),
            native => ops.push(crate::exec::native_op(native)?),
        }
    }
    if let Some(h) = host {
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
