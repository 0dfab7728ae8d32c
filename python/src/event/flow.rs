//! [`EventPlan`]: the Python steps of a record-local registration flow, and pushing one
//! event's record through them (as `PyStage` does for these steps). A push that may defer
//! (a `sync` event or trigger, an async registration's drain) stops at an await, leaving a
//! [`Pending`] (see `defer`).
//!
//! Depends on `render` (the final `str()`), `step`, `future`, `asyncio_bridge`, `convert`,
//! `errors`.

use std::sync::Arc;

use engine::exec::ExecutionOutput;
use engine::plan::{Plan, StepSpec};
use engine::Datum;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::render::{native_str, str_can_wait, str_of};
use crate::asyncio_bridge::{awaited, must_defer};
use crate::convert::py_to_datum;
use crate::errors::error_text;
use crate::future::completion_of;
use crate::step::{Local, PyStep};

/// The Python steps of a record-local registration flow.
#[derive(Debug, Clone)]
pub struct EventPlan {
    pub(super) steps: Vec<Arc<PyStep>>,
}

impl EventPlan {
    /// The flow is `str(record)` alone (no user code runs).
    pub fn str_only(&self) -> bool {
        self.steps.len() == 1 && matches!(*self.steps[0], PyStep::ToStr)
    }

    /// The plan's record-local steps, or `None` when any step needs more than one record
    /// at a time (accumulate, groupby, limit, count, sort, shuffles...).
    pub fn from_plan(plan: &Plan) -> Option<EventPlan> {
        let mut steps = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            match s {
                // Moves records to the initiator: the shard that runs the event.
                StepSpec::Collect => {}
                StepSpec::Udf(h) => {
                    let (step, _) = crate::step::of_payload(&h.payload)?;
                    match *step {
                        PyStep::Map(_)
                        | PyStep::FlatMap(_)
                        | PyStep::Filter(_)
                        | PyStep::Foreach(_)
                        | PyStep::ToStr => steps.push(step),
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(EventPlan { steps })
    }

    /// Pushes one record through steps `from..` (as `PyStage` does for these steps).
    /// With `defer`, a callback result still to be awaited is left in it (as a completion),
    /// with the event's records still to run, and the push ends.
    pub(crate) fn push<'py>(
        &self,
        py: Python<'py>,
        from: usize,
        row: Bound<'py, PyAny>,
        out: &mut Vec<Record>,
        mut defer: Option<&mut Option<Pending>>,
    ) -> PyResult<()> {
        let mut row = row;
        let last = self.steps.len().saturating_sub(1);
        for i in from..self.steps.len() {
            match &*self.steps[i] {
                local @ (PyStep::Map(_)
                | PyStep::Filter(_)
                | PyStep::Foreach(_)
                | PyStep::FlatMap(_)) => {
                    let Some(v) = local.call_local(py, &row)? else {
                        continue;
                    };
                    if let Some(slot) = defer.as_deref_mut() {
                        if must_defer(py, &v) {
                            // A coroutine starts now; the rest waits for its completion.
                            let c = completion_of(py, &v)?.unwrap_or(v);
                            *slot = Some(Pending::new(i, row, c));
                            return Ok(());
                        }
                    }
                    match local.settle_local(row, awaited(py, v)?)? {
                        Local::Row(r) => row = r,
                        Local::Dropped => return Ok(()),
                        Local::Spread(items) => {
                            let mut items = items.into_iter();
                            while let Some(item) = items.next() {
                                self.push(py, i + 1, item, out, defer.as_deref_mut())?;
                                if let Some(Some(p)) = defer.as_deref_mut() {
                                    p.then_run(i + 1, items);
                                    break;
                                }
                            }
                            return Ok(());
                        }
                    }
                }
                PyStep::ToStr if i == last => {
                    if str_can_wait(&row) {
                        out.push(Record::StrPending(row.unbind()));
                    } else {
                        out.push(Record::Text(str_of(&row)?));
                    }
                    return Ok(());
                }
                PyStep::ToStr => {
                    row = match native_str(&row) {
                        Some(t) => PyString::new(py, &t).into_any(),
                        None => row.str()?.into_any(),
                    }
                }
                // `from_plan` admits nothing else.
                _ => return Ok(()),
            }
        }
        out.push(Record::Obj(row.unbind()));
        Ok(())
    }

    /// The step at `i`.
    pub(crate) fn step(&self, i: usize) -> Option<&PyStep> {
        self.steps.get(i).map(|s| &**s)
    }
}

/// Where a deferred event stopped.
pub(crate) struct Pending {
    /// The step whose callback returned the awaitable.
    pub(super) step: usize,
    /// That step's input record (filter and foreach pass it on).
    pub(super) row: Py<PyAny>,
    pub(super) awaitable: Py<PyAny>,
    /// Records still to push after it, in order: (first step, record).
    pub(super) rest: Vec<(usize, Py<PyAny>)>,
}

impl Pending {
    pub(crate) fn new(step: usize, row: Bound<'_, PyAny>, awaitable: Bound<'_, PyAny>) -> Self {
        Pending {
            step,
            row: row.unbind(),
            awaitable: awaitable.unbind(),
            rest: Vec::new(),
        }
    }

    /// Queues `items` to push from step `from` once the records queued before them ran.
    pub(crate) fn then_run<'py>(
        &mut self,
        from: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) {
        self.rest.extend(items.map(|i| (from, i.unbind())));
    }
}

/// Converts an event's records into its results (stopping at the first that fails).
pub(crate) fn finish_records(py: Python<'_>, rows: Vec<Record>, out: &mut ExecutionOutput) {
    for r in rows {
        match r.finish(py) {
            Ok(d) => out.results.push(d),
            Err(e) => {
                out.errors.push(error_text(py, &e));
                break;
            }
        }
    }
}

/// A record that reached the end of the flow.
pub(crate) enum Record {
    Obj(Py<PyAny>),
    /// The final `str()` is still to be applied (see `str_can_wait`).
    StrPending(Py<PyAny>),
    /// The final `str()`, done.
    Text(String),
}

impl Record {
    fn finish(self, py: Python<'_>) -> PyResult<Datum> {
        Ok(match self {
            Record::Obj(o) => py_to_datum(o.bind(py)),
            Record::StrPending(o) => Datum::Str(str_of(o.bind(py))?),
            Record::Text(t) => Datum::Str(t),
        })
    }
}
