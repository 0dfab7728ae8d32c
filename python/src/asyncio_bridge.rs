//! Awaiting what a callback returned (REFERENCE §5): a coroutine runs on one global asyncio
//! event-loop thread and a `gearsFuture` is waited for through its completion (`future`).
//! [`awaited`] waits on the calling thread with the GIL released, so output order is
//! preserved; pooled stages park instead where they can (`stage::park`), and sync events
//! continue in the background (`event::defer`), both using [`must_defer`] and [`is_done`].
//! Where the thread holds the Redis lock, waiting is refused.
//!
//! Bottom layer: depends on `future`, `errors` and `services`.

use pyo3::prelude::*;

use crate::errors::GearsError;
use crate::future::{abandon, completion_of, is_awaitable, is_completion};

pub(crate) fn holds_redis_lock() -> bool {
    crate::services::get().is_some_and(|h| h.holds_redis_lock())
}

/// True when `v` is still to be waited for: a coroutine, a `gearsFuture`, or a completion
/// not yet set.
pub(crate) fn must_defer(py: Python<'_>, v: &Bound<'_, PyAny>) -> bool {
    is_awaitable(py, v) && !(is_completion(py, v) && is_done(v))
}

pub(crate) fn is_done(c: &Bound<'_, PyAny>) -> bool {
    c.call_method0("done")
        .and_then(|d| d.is_truthy())
        .unwrap_or(false)
}

/// A callback's result, with a coroutine run to completion on the gears event loop and a
/// `gearsFuture` waited for (GIL released). An error comes back as its bare text (1.2).
pub(crate) fn awaited<'py>(py: Python<'py>, v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if !is_awaitable(py, &v) {
        return Ok(v);
    }
    if holds_redis_lock() && !(is_completion(py, &v) && is_done(&v)) {
        // Waiting here would hold the Redis lock while the coroutine may need it.
        abandon(py, &v);
        return Err(GearsError::new_err(
            "Creating async record is not allowed while holding the Redis lock (sync execution or atomic block)",
        ));
    }
    match completion_of(py, &v)? {
        Some(c) => c.call_method0("result"),
        None => Ok(v),
    }
}
