//! Async records (REFERENCE §5, §12.5): which call of a step's callback created a
//! `gearsFuture()`, what that call's outcome is, and the completions executions wait for.
//!
//! Every step callback is called through [`call`], which opens a frame for the call: a
//! `gearsFuture()` made inside registers in it (a second one fails), and when the callback
//! ends the frame decides what the record gets — the future's completion when the callback
//! returned the future or raised after making it (the exception is ignored, as in 1.2),
//! else the returned value (map, flatmap, filter, foreach) or `None` (accumulators); steps
//! that cannot wait fail with `Step does not support async`. Only then may the future be
//! continued. A completion (`py/futures.py`) is the outcome alone, so the user's handle can
//! be dropped (failing the record at once) while the execution holds the completion.
//!
//! Bottom layer: depends on `errors` only.

use std::cell::RefCell;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::errors::{FlatError, GearsError};

/// A future made during a callback call: its completion and a weak reference to the
/// user's handle.
struct Created {
    completion: Py<PyAny>,
    handle: Py<PyAny>,
}

thread_local! {
    /// Callback calls running on this thread (nested when a callback's write fires a sync
    /// flow), each with the future it made.
    static CALLS: RefCell<Vec<Option<Created>>> = const { RefCell::new(Vec::new()) };
}

/// What a step does with a future its callback made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// map, flatmap, filter, foreach: a value returned instead of the future is used.
    Record,
    /// accumulate and accumulate-by-key: a value returned instead of the future is
    /// dropped; the next accumulator is `None` (1.2).
    Reducer,
    /// Extractors and batch reducers: no future, no coroutine (`what` names the step in
    /// the coroutine error).
    NoAsync(&'static str),
}

/// `_gearshift.future_created(completion, handle_ref)`: registers a new `gearsFuture()`
/// with the callback call making it.
#[pyfunction]
fn future_created(completion: Py<PyAny>, handle: Py<PyAny>) -> PyResult<()> {
    CALLS.with(|c| match c.borrow_mut().last_mut() {
        None => Err(GearsError::new_err(
            "Future object can only be created inside certain execution steps",
        )),
        Some(Some(_)) => Err(GearsError::new_err(
            "Can not create async record twice on the same step",
        )),
        Some(slot) => {
            *slot = Some(Created { completion, handle });
            Ok(())
        }
    })
}

pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(future_created, m)?)
}

/// Calls a step's callback `f(*args)` (see the module doc for what a future made inside
/// gives). The result may still be a completion or a coroutine to await.
pub(crate) fn call<'py>(
    py: Python<'py>,
    f: &Bound<'py, PyAny>,
    args: impl pyo3::call::PyCallArgs<'py>,
    kind: Kind,
) -> PyResult<Bound<'py, PyAny>> {
    CALLS.with(|c| c.borrow_mut().push(None));
    let r = f.call1(args);
    let created = CALLS.with(|c| c.borrow_mut().pop()).flatten();
    let Some(created) = created else {
        return match kind {
            Kind::NoAsync(what) => no_coroutine(py, r?, what),
            _ => r,
        };
    };
    let c = created.completion.into_bound(py);
    let use_future = match &r {
        Ok(v) => is_handle_of(py, v, &c),
        Err(_) => true, // the exception is ignored: the record waits for the future
    };
    if !use_future || matches!(kind, Kind::NoAsync(_)) {
        // Nobody waits for it: continuing it later fails as continued twice.
        c.setattr("returned", true)?;
        c.call_method0("settle")?;
        return match (kind, r) {
            (Kind::NoAsync(_), _) if use_future => {
                Err(FlatError::new_err("Step does not support async"))
            }
            (Kind::NoAsync(what), r) => no_coroutine(py, r?, what),
            (Kind::Reducer, _) => Ok(py.None().into_bound(py)),
            (Kind::Record, r) => r,
        };
    }
    c.setattr("returned", true)?;
    drop(r);
    if created.handle.bind(py).call0()?.is_none() {
        // Dropped without being continued (the handle's `__del__` ran before it could).
        c.call_method1("settle", (py.None(), NOT_CONTINUED))?;
    }
    Ok(c)
}

const NOT_CONTINUED: &str = "Async record did not called continue";

/// Extractors and batch reducers may not return coroutines (1.2's texts).
fn no_coroutine<'py>(
    py: Python<'py>,
    v: Bound<'py, PyAny>,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if is_coroutine(py, &v) {
        let _ = v.call_method0("close");
        return Err(GearsError::new_err(format!(
            "coroutine are not allow on {what}"
        )));
    }
    if is_handle(py, &v) {
        return Err(FlatError::new_err("Step does not support async"));
    }
    Ok(v)
}

fn futures_type<'a>(
    py: Python<'_>,
    cell: &'a PyOnceLock<Py<PyType>>,
    name: &str,
) -> &'a Py<PyType> {
    cell.get_or_init(py, || {
        py.import("_gearshift_futures")
            .and_then(|m| m.getattr(name))
            .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
            .unwrap_or_else(|_| py.get_type::<PyType>().unbind())
    })
}

static COMPLETION_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static HANDLE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static COROUTINE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A completion: what an execution waits for.
pub(crate) fn is_completion(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    v.get_type()
        .is(futures_type(py, &COMPLETION_TYPE, "Completion").bind(py))
}

/// A user's `gearsFuture()` handle.
fn is_handle(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    v.get_type()
        .is(futures_type(py, &HANDLE_TYPE, "GearsFuture").bind(py))
}

fn is_handle_of(py: Python<'_>, v: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>) -> bool {
    is_handle(py, v) && v.getattr("_completion").map(|h| h.is(c)).unwrap_or(false)
}

pub(crate) fn is_coroutine(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    let t = COROUTINE_TYPE.get_or_init(py, || {
        py.import("types")
            .and_then(|m| m.getattr("CoroutineType"))
            .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
            .unwrap_or_else(|_| py.get_type::<PyType>().unbind())
    });
    v.get_type().is(t.bind(py))
}

/// True for what a record waits for: a completion, a coroutine or a `gearsFuture` handle.
pub(crate) fn is_awaitable(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    is_completion(py, v) || is_coroutine(py, v) || is_handle(py, v)
}

/// The completion `v` sets: a coroutine is started on the gears loop now, a handle
/// (returned by a callback not called through [`call`]) gives its own; `None` for other
/// values.
pub(crate) fn completion_of<'py>(
    py: Python<'py>,
    v: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if is_completion(py, v) {
        return Ok(Some(v.clone()));
    }
    if is_coroutine(py, v) {
        let c = py
            .import("_gearshift_futures")?
            .getattr("completion_of")?
            .call1((v,))?;
        return Ok(Some(c));
    }
    if is_handle(py, v) {
        let c = v.getattr("_completion")?;
        c.setattr("returned", true)?;
        return Ok(Some(c));
    }
    Ok(None)
}

/// Gives up on `v` where it cannot be awaited: a coroutine is closed, a future can no
/// longer be continued.
pub(crate) fn abandon(py: Python<'_>, v: &Bound<'_, PyAny>) {
    if is_coroutine(py, v) {
        let _ = v.call_method0("close");
    } else if let Ok(Some(c)) = completion_of(py, v) {
        let _ = c.call_method0("settle");
    }
}
