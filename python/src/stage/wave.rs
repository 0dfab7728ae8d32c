//! `async def` steps with records in flight together (REFERENCE §5: 1.2 keeps up to 1000
//! coroutines in flight per map/filter/foreach step, output order preserved).
//!
//! When a stage starts with record-local steps and one of them is a coroutine function,
//! those leading steps run step by step over the whole batch (a [`Wave`]): each step calls
//! its callback on every row, the coroutines run together on the gears event loop (chunks
//! of `IN_FLIGHT`, one gathering task each), and the results are settled in row order.
//! Records then continue one at a time through the rest of the stage. Stages without such
//! a step keep record-at-a-time order, as 1.2 does for plain callbacks.
//!
//! A wave is resumable: while a chunk's awaits are not all over, [`Wave::advance`] either
//! hands back one completion set when they are (the stage parks on it, `park`) or waits
//! for it on the calling thread (GIL released) where the stage may not park.
//!
//! Depends on `step`, `future`, `asyncio_bridge` and `services` (never on `super`: a leaf
//! of `stage`).

use std::collections::VecDeque;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::asyncio_bridge::{awaited, holds_redis_lock, is_done, must_defer};
use crate::future::{completion_of, is_coroutine};
use crate::step::{Local, PyStep};

/// Coroutines awaited together at most (1.2's limit per step).
const IN_FLIGHT: usize = 1000;

/// How many leading steps run as a wave: up to and including the last `async def`
/// callback of the stage's leading record-local steps (0: none).
pub(crate) fn async_prefix(py: Python<'_>, steps: &[Arc<PyStep>]) -> usize {
    let Ok(is_coro_fn) = py
        .import("inspect")
        .and_then(|m| m.getattr("iscoroutinefunction"))
    else {
        return 0;
    };
    let mut upto = 0;
    for (i, s) in steps.iter().enumerate() {
        let f = match &**s {
            PyStep::Map(f) | PyStep::Filter(f) | PyStep::Foreach(f) | PyStep::FlatMap(f) => f,
            _ => break,
        };
        if is_coro_fn
            .call1((f.bind(py),))
            .and_then(|r| r.is_truthy())
            .unwrap_or(false)
        {
            upto = i + 1;
        }
    }
    upto
}

/// One row's callback result in a chunk.
enum Slot {
    /// A value, a `gearsFuture`'s completion, or what cannot be awaited here (refused
    /// when settled).
    Value(Py<PyAny>),
    /// The coroutine at this position of the chunk's gathering task.
    Gathered(usize),
}

/// Leading steps `0..upto` of a stage over a batch of rows, step by step.
pub(crate) struct Wave {
    steps: Vec<Arc<PyStep>>,
    /// The step running now.
    step: usize,
    /// Rows still to call the step on.
    todo: VecDeque<Py<PyAny>>,
    /// Rows that passed the step, in order.
    done: Vec<Py<PyAny>>,
    /// The chunk in flight: each row with its callback's result.
    pending: Vec<(Py<PyAny>, Slot)>,
    /// The chunk's coroutines' gathering completion (a list of results or errors).
    gathered: Option<Py<PyAny>>,
    /// Set once the chunk's awaits are all over.
    all_over: Option<Py<PyAny>>,
    /// A callback's error: it stops the step once the rows before it are settled.
    cut: Option<PyErr>,
    /// The wave's first error.
    err: Option<PyErr>,
}

/// How far [`Wave::advance`] got.
pub(crate) enum Progress<'py> {
    /// The rows that passed every step of the wave, in order, and the first error (rows
    /// before it went on; processing stopped there, as in 1.2).
    Done(Vec<Bound<'py, PyAny>>, Option<PyErr>),
    /// The chunk in flight waits: this completion is set when its awaits are all over.
    Waiting(Bound<'py, PyAny>),
}

impl Wave {
    /// A wave of steps `steps` (the stage's first `upto`) over `rows`.
    pub(crate) fn new(steps: &[Arc<PyStep>], upto: usize, rows: Vec<Bound<'_, PyAny>>) -> Self {
        Wave {
            steps: steps[..upto].to_vec(),
            step: 0,
            todo: rows.into_iter().map(Bound::unbind).collect(),
            done: Vec::new(),
            pending: Vec::new(),
            gathered: None,
            all_over: None,
            cut: None,
            err: None,
        }
    }

    /// How many leading steps of the stage the wave runs.
    pub(crate) fn upto(&self) -> usize {
        self.steps.len()
    }

    /// Goes on until every row went through, or (with `park`) until a chunk must wait;
    /// without `park` it waits here for each chunk (GIL released).
    pub(crate) fn advance<'py>(&mut self, py: Python<'py>, park: bool) -> Progress<'py> {
        loop {
            if !self.pending.is_empty() {
                if let Some(over) = self.all_over.as_ref().map(|c| c.bind(py).clone()) {
                    if !is_done(&over) && park {
                        return Progress::Waiting(over);
                    }
                    if let Err(e) = over.call_method0("result") {
                        self.fail(e);
                    }
                }
                if let Err(e) = self.settle(py) {
                    self.fail(e);
                }
            }
            if let Some(e) = self.cut.take() {
                self.fail(e);
            }
            if self.todo.is_empty() && self.pending.is_empty() {
                self.step += 1;
                if self.step >= self.steps.len() {
                    let rows = self.done.drain(..).map(|r| r.into_bound(py)).collect();
                    return Progress::Done(rows, self.err.take());
                }
                self.todo = self.done.drain(..).collect();
                continue;
            }
            if let Err(e) = self.call_chunk(py) {
                self.fail(e);
            }
        }
    }

    /// Error `e` stops the step there: the rows after it are dropped, the rows before it
    /// go on through the later steps; the first error is the wave's.
    fn fail(&mut self, e: PyErr) {
        self.err.get_or_insert(e);
        self.todo.clear();
        self.pending.clear();
        self.gathered = None;
        self.all_over = None;
    }

    /// Calls the step on up to `IN_FLIGHT` rows, and starts their awaits.
    fn call_chunk(&mut self, py: Python<'_>) -> PyResult<()> {
        let step = Arc::clone(&self.steps[self.step]);
        let mut coros = Vec::new();
        let mut completions = Vec::new();
        let may_start = !holds_redis_lock();
        while self.pending.len() < IN_FLIGHT {
            let Some(row) = self.todo.pop_front() else {
                break;
            };
            let row = row.into_bound(py);
            let v = match step.call_local(py, &row) {
                Ok(Some(v)) => v,
                Ok(None) => {
                    self.done.push(row.unbind());
                    continue;
                }
                Err(e) => {
                    // The rows before it are settled first.
                    self.cut = Some(e);
                    self.todo.clear();
                    break;
                }
            };
            let slot = if may_start && is_coroutine(py, &v) {
                coros.push(v);
                Slot::Gathered(coros.len() - 1)
            } else if may_start && must_defer(py, &v) {
                let c = completion_of(py, &v)?.unwrap_or(v);
                completions.push(c.clone());
                Slot::Value(c.unbind())
            } else {
                // Settled as it is (a coroutine under the Redis lock is refused then).
                Slot::Value(v.unbind())
            };
            self.pending.push((row.unbind(), slot));
        }
        let futures = py.import("_gearshift_futures")?;
        if !coros.is_empty() {
            let g = futures.getattr("_gears_gather")?.call1((coros,))?;
            completions.push(g.clone());
            self.gathered = Some(g.unbind());
        }
        if !completions.is_empty() {
            let over = futures.getattr("_gears_all_done")?.call1((completions,))?;
            self.all_over = Some(over.unbind());
        }
        Ok(())
    }

    /// Settles the chunk's rows in order (its awaits are over); the first error stops it
    /// (rows before it are in `done`).
    fn settle(&mut self, py: Python<'_>) -> PyResult<()> {
        self.all_over = None;
        let gathered = match self.gathered.take() {
            Some(g) => Some(awaited(py, g.into_bound(py))?.cast_into::<PyList>()?),
            None => None,
        };
        let base_exc = py.get_type::<pyo3::exceptions::PyBaseException>();
        let step = Arc::clone(&self.steps[self.step]);
        for (row, slot) in std::mem::take(&mut self.pending) {
            let v = match (slot, &gathered) {
                (Slot::Value(v), _) => awaited(py, v.into_bound(py))?,
                (Slot::Gathered(i), Some(results)) => {
                    let r = results.get_item(i)?;
                    if r.is_instance(&base_exc)? {
                        return Err(PyErr::from_value(r));
                    }
                    r
                }
                (Slot::Gathered(_), None) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err("missing result"))
                }
            };
            match step.settle_local(row.into_bound(py), v)? {
                Local::Row(r) => self.done.push(r.unbind()),
                Local::Dropped => {}
                Local::Spread(items) => self.done.extend(items.into_iter().map(Bound::unbind)),
            }
        }
        Ok(())
    }
}
