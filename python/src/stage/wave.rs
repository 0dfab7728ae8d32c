//! `async def` steps with records in flight together (REFERENCE §5: 1.2 keeps up to 1000
//! coroutines in flight per map/filter/foreach step, output order preserved).
//!
//! When a stage starts with record-local steps and one of them is a coroutine function,
//! those leading steps run step by step over the whole batch (a "wave"): each async step
//! calls its callback on every row, the coroutines run together on the gears event loop
//! (chunks of `IN_FLIGHT`), and the results are settled in row order. Records then continue
//! one at a time through the rest of the stage. Stages without such a step keep
//! record-at-a-time order, as 1.2 does for plain callbacks.
//!
//! Depends on `step`, `asyncio_bridge` and `services` (never on `super`: a leaf of `stage`).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::asyncio_bridge::awaited;
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

/// Runs steps `0..upto` over `rows`. Returns the rows that passed them, in order, and the
/// first error (rows before it are kept; processing stops there, as in 1.2).
pub(crate) fn run_wave<'py>(
    py: Python<'py>,
    steps: &[Arc<PyStep>],
    upto: usize,
    mut rows: Vec<Bound<'py, PyAny>>,
) -> (Vec<Bound<'py, PyAny>>, Option<PyErr>) {
    for step in &steps[..upto] {
        let (next, err) = step_over(py, step, rows);
        rows = next;
        if err.is_some() {
            return (rows, err);
        }
    }
    (rows, None)
}

/// One step over every row: callbacks called in row order, coroutines awaited together.
fn step_over<'py>(
    py: Python<'py>,
    step: &PyStep,
    rows: Vec<Bound<'py, PyAny>>,
) -> (Vec<Bound<'py, PyAny>>, Option<PyErr>) {
    let mut out = Vec::with_capacity(rows.len());
    let mut pending = Vec::new();
    let mut rows = rows.into_iter();
    loop {
        // Call the callback on up to IN_FLIGHT rows, then settle them in order.
        pending.clear();
        for row in rows.by_ref().take(IN_FLIGHT) {
            match step.call_local(py, &row) {
                Ok(Some(v)) => pending.push((row, v)),
                Ok(None) => out.push(row),
                Err(e) => {
                    let err = settle_all(py, step, std::mem::take(&mut pending), &mut out);
                    return (out, Some(err.unwrap_or(e)));
                }
            }
        }
        if pending.is_empty() {
            return (out, None);
        }
        if let Some(e) = settle_all(py, step, std::mem::take(&mut pending), &mut out) {
            return (out, Some(e));
        }
    }
}

/// Awaits the coroutines among `pending` together, then settles every row in order; the
/// first error stops it (rows before it are in `out`).
fn settle_all<'py>(
    py: Python<'py>,
    step: &PyStep,
    pending: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    out: &mut Vec<Bound<'py, PyAny>>,
) -> Option<PyErr> {
    let results = match gather(py, &pending) {
        Ok(r) => r,
        Err(e) => return Some(e),
    };
    for ((row, v), r) in pending.into_iter().zip(results) {
        let v = match r {
            Some(Ok(done)) => done,
            Some(Err(e)) => return Some(e),
            // Not a coroutine (a plain value or a gearsFuture): settled on its own.
            None => match awaited(py, v) {
                Ok(done) => done,
                Err(e) => return Some(e),
            },
        };
        match step.settle_local(row, v) {
            Ok(Local::Row(r)) => out.push(r),
            Ok(Local::Dropped) => {}
            Ok(Local::Spread(items)) => out.extend(items),
            Err(e) => return Some(e),
        }
    }
    None
}

/// Results of the coroutines among `pending` (by position; `None` for other values),
/// run together on the gears loop with the GIL released while waiting.
type Gathered<'py> = Vec<Option<PyResult<Bound<'py, PyAny>>>>;

fn gather<'py>(
    py: Python<'py>,
    pending: &[(Bound<'py, PyAny>, Bound<'py, PyAny>)],
) -> PyResult<Gathered<'py>> {
    let is_coro = py.import("asyncio")?.getattr("iscoroutine")?;
    let mut which = Vec::with_capacity(pending.len());
    let coros = PyList::empty(py);
    for (_, v) in pending {
        let c = is_coro.call1((v,))?.is_truthy()?;
        if c {
            coros.append(v)?;
        }
        which.push(c);
    }
    if coros.is_empty() {
        return Ok(which.iter().map(|_| None).collect());
    }
    if crate::services::get().is_some_and(|h| h.holds_redis_lock()) {
        // Each is refused with 1.2's text by `awaited` (never wait holding the lock).
        return Ok(which.iter().map(|_| None).collect());
    }
    let done = py
        .import("_gearshift_futures")?
        .getattr("_gears_await_all")?
        .call1((coros,))?;
    let base_exc = py.get_type::<pyo3::exceptions::PyBaseException>();
    let mut results = done.try_iter()?;
    let mut out = Vec::with_capacity(which.len());
    for c in which {
        if !c {
            out.push(None);
            continue;
        }
        let r = results
            .next()
            .transpose()?
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("missing result"))?;
        out.push(Some(if r.is_instance(&base_exc)? {
            Err(PyErr::from_value(r))
        } else {
            Ok(r)
        }));
    }
    Ok(out)
}
