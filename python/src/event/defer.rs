//! A run whose callback awaits, continued once the await is over (REFERENCE §4.2, §8, §12.5).
//!
//! A `sync` event or trigger runs on the thread that holds the Redis lock, where a
//! coroutine or `gearsFuture` cannot be waited for (it may need the lock); 1.2 continues
//! such a run in the background as `async_local`. An async registration's drain must not
//! wait either: later events would stall behind the pending one. So when a callback
//! returns one, the run stops there and everything left of it is captured as a
//! [`Deferred`]: the step, its input record and the awaited completion, the records still
//! to push (siblings of a `flatmap`, in order) and the records that already reached the
//! end. [`Deferred::when_ready`] hands it back once the completion is set (no thread waits
//! meanwhile); the module then runs [`Deferred::finish_or_defer`] on a worker, which
//! pushes the rest through the flow and stops again at a later await (handing the rest
//! back), so no worker waits (events, triggers and hooks alike).
//! Steps before the await ran once.
//!
//! Inside MULTI or Lua nothing is deferred: the await fails with 1.2's `Creating async
//! record is not allowed`.
//!
//! Depends on `flow` (the plan and where its push stopped), `step`, `asyncio_bridge`,
//! `scope`, `errors` and `gil`.

use engine::exec::ExecutionOutput;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyCFunction;

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

    /// Calls `then(self)` once the awaited completion is set: at once if it is, else from
    /// the thread that sets it (holding the GIL: `then` must only hand the work on, say to
    /// the worker pool, and must not wait for the Redis lock).
    pub fn when_ready(self, then: impl FnOnce(Deferred) + Send + 'static) {
        crate::gil::batch(|py| {
            let completion = self.pending.awaitable.clone_ref(py).into_bound(py);
            let once = Arc::new(Mutex::new(Some((self, then))));
            let once_cb = Arc::clone(&once);
            let registered = PyCFunction::new_closure(py, None, None, move |_, _| {
                fire(&once_cb);
            })
            .and_then(|cb| completion.call_method1("add_done_callback", (cb,)));
            if registered.is_err() {
                // Not a completion (cannot happen): `finish_or_defer` reports the error.
                fire(&once);
            }
        });
    }

    /// Runs the rest of the event once its awaitable is done (call on a worker holding
    /// neither the Redis lock nor the GIL); returns its output. A later step that awaits
    /// stops the rest again: it is handed back (`Err`) to continue once that await is over,
    /// so no worker waits.
    pub fn finish_or_defer(self) -> Result<ExecutionOutput, Box<Deferred>> {
        let Deferred {
            plan,
            pending,
            mut done,
            mut out,
        } = self;
        crate::gil::batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let mut next = None;
            if let Err(e) = resume_until(py, &plan, pending, &mut done, &mut next) {
                out.errors.push(error_text(py, &e));
                next = None;
            }
            match next {
                Some(p) => Err(Box::new(Deferred::new(plan, p, done, out))),
                None => {
                    finish_records(py, done, &mut out);
                    Ok(out)
                }
            }
        })
    }
}

/// As `resume`, stopping at the next await (`next` then holds it, with the records
/// still to push after it).
fn resume_until(
    py: Python<'_>,
    plan: &EventPlan,
    p: Pending,
    done: &mut Vec<Record>,
    next: &mut Option<Pending>,
) -> PyResult<()> {
    let v = awaited(py, p.awaitable.into_bound(py))?;
    let row = p.row.into_bound(py);
    let local = match plan.step(p.step) {
        Some(step) => step.settle_local(row, v)?,
        None => Local::Dropped,
    };
    let mut queue: VecDeque<(usize, Bound<'_, PyAny>)> = match local {
        Local::Row(r) => VecDeque::from([(p.step + 1, r)]),
        Local::Dropped => VecDeque::new(),
        Local::Spread(items) => items.into_iter().map(|i| (p.step + 1, i)).collect(),
    };
    queue.extend(p.rest.into_iter().map(|(from, i)| (from, i.into_bound(py))));
    while let Some((from, item)) = queue.pop_front() {
        plan.push(py, from, item, done, Some(next))?;
        if let Some(n) = next {
            n.rest
                .extend(queue.drain(..).map(|(from, i)| (from, i.unbind())));
            break;
        }
    }
    Ok(())
}

/// Hands `d` to `then`, the first time only.
fn fire<F: FnOnce(Deferred)>(once: &Mutex<Option<(Deferred, F)>>) {
    let taken = once.lock().ok().and_then(|mut g| g.take());
    if let Some((d, then)) = taken {
        then(d);
    }
}
