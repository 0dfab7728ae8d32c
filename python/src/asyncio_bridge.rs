//! `async def` callbacks (REFERENCE §5): a callback that returns a coroutine has it run on
//! one global asyncio event-loop thread; the record waits for its result (the GIL is
//! released while it waits), so output order is preserved. Where the thread holds the
//! Redis lock, awaiting is refused, except in a `sync` keyspace event, whose rest then
//! continues on a worker (`event::defer`).
//!
//! Bottom layer: depends on `errors` and `services`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::errors::GearsError;

static COROUTINE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn is_coroutine(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    let t = COROUTINE_TYPE.get_or_init(py, || {
        py.import("types")
            .and_then(|m| m.getattr("CoroutineType"))
            .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
            .unwrap_or_else(|_| py.get_type::<PyType>().unbind())
    });
    v.get_type().is(t.bind(py))
}

static FUTURE_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Longest wait for a `gearsFuture` to be continued.
const FUTURE_WAIT_S: f64 = 60.0;

fn is_future(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    let t = FUTURE_TYPE.get_or_init(py, || {
        py.import("gearshift_prelude")
            .and_then(|m| m.getattr("GearsFuture"))
            .and_then(|t| Ok(t.cast_into::<PyType>()?.unbind()))
            .unwrap_or_else(|_| py.get_type::<PyType>().unbind())
    });
    v.get_type().is(t.bind(py))
}

/// True when `v` must be awaited but cannot be here: a coroutine or `gearsFuture` while
/// this thread holds the Redis lock (the wait could need that lock).
pub(crate) fn must_defer(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    (is_future(py, v) || is_coroutine(py, v))
        && crate::services::get().is_some_and(|h| h.holds_redis_lock())
}

/// A callback's result, with a coroutine run to completion on the gears event loop and a
/// `gearsFuture` waited for (GIL released, bounded).
pub(crate) fn awaited<'py>(py: Python<'py>, v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let future = is_future(py, &v);
    if !future && !is_coroutine(py, &v) {
        return Ok(v);
    }
    if crate::services::get().is_some_and(|h| h.holds_redis_lock()) {
        // Waiting here would hold the Redis lock while the coroutine may need it.
        if !future {
            let _ = v.call_method0("close");
        }
        return Err(GearsError::new_err(
            "Creating async record is not allowed while holding the Redis lock (sync execution or atomic block)",
        ));
    }
    if future {
        return v.call_method1("_wait", (FUTURE_WAIT_S,));
    }
    py.import("gearshift_prelude")?
        .getattr("_gears_await")?
        .call1((v,))
}

/// Extractors and batch reducers may not be coroutines (1.2's texts).
pub(crate) fn not_async<'py>(
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
    Ok(v)
}
