//! A `sync` keyspace event whose callback awaits (REFERENCE §4.2, §8): 1.2 continues such
//! a run in the background as `async_local`.
//!
//! A sync event runs on the thread that holds the Redis lock, where a coroutine or
//! `gearsFuture` cannot be waited for (it may need the lock). When a callback returns one,
//! the event's run stops there and everything left of it is captured as a [`Deferred`]:
//! the step, its input record and the awaitable, the records still to push (siblings of a
//! `flatmap`, in order) and the records that already reached the end. The module runs
//! [`Deferred::finish`] on a worker, which waits for the awaitable without the lock and
//! pushes the rest through the flow, where later awaits simply wait. Steps before the
//! await ran exactly once, inside the writing command, as in 1.2.
//!
//! Inside MULTI or Lua nothing is deferred: the await fails with 1.2's `Creating async
//! record is not allowed`.

//!
//! Depends on `flow` (the plan and where its push stopped), `step`, `asyncio_bridge`,
//! `scope`, `errors` and `gil`.

use engine::exec::ExecutionOutput;
use pyo3::prelude::*;

use super::flow::{finish_records, EventPlan, Pending, Record};
use crate::asyncio_bridge::awaited;
use crate::errors::error_text;
use crate::step::Local;

/// The rest of a `sync` event, to finish on a worker (never under the Redis lock).
pub struct Deferred {
    plan: EventPlan,
    pending: Pending,
    /// Records that reached the end of the flow before the await.
    done: Vec<Record>,
    /// Errors so far.
    out: ExecutionOutput,
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred")
            .field("step", &self.pending.step)
            .field("rest", &self.pending.rest.len())
            .finish_non_exhaustive()
    }
}

impl Deferred {
    pub(crate) fn new(
        plan: EventPlan,
        pending: Pending,
        done: Vec<Record>,
        out: ExecutionOutput,
    ) -> Self {
        Deferred {
            plan,
            pending,
            done,
            out,
        }
    }

    /// Waits for the awaitable and runs the rest of the event; returns its output. Call
    /// on a worker holding neither the Redis lock nor the GIL.
    pub fn finish(self) -> ExecutionOutput {
        let Deferred {
            plan,
            pending,
            mut done,
            mut out,
        } = self;
        crate::gil::batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            if let Err(e) = resume(py, &plan, pending, &mut done) {
                out.errors.push(error_text(py, &e));
            }
            finish_records(py, done, &mut out);
            out
        })
    }
}

/// Settles the awaited step, then pushes its output and the queued records.
fn resume(py: Python<'_>, plan: &EventPlan, p: Pending, done: &mut Vec<Record>) -> PyResult<()> {
    let v = awaited(py, p.awaitable.into_bound(py))?;
    let row = p.row.into_bound(py);
    let local = match plan.step(p.step) {
        Some(step) => step.settle_local(row, v)?,
        None => Local::Dropped,
    };
    match local {
        Local::Row(r) => plan.push(py, p.step + 1, r, done, None)?,
        Local::Dropped => {}
        Local::Spread(items) => {
            for item in items {
                plan.push(py, p.step + 1, item, done, None)?;
            }
        }
    }
    for (from, item) in p.rest {
        plan.push(py, from, item.into_bound(py), done, None)?;
    }
    Ok(())
}
