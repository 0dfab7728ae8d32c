//! Where this crate takes the GIL: one named entry point per purpose, so that every
//! acquisition can be found here and checked against the lock order (the Redis lock
//! before the GIL: a thread holding the GIL never waits for the Redis lock; code that
//! needs Redis releases the GIL first, see `runtime::execute`).
//!
//! Code already holding the GIL takes `Python<'py>` from its caller instead; only the
//! entry points below call `Python::attach` (unit tests aside).
//!
//! Bottom layer: depends on `errors`, `services` and `metrics`. `python/clippy.toml`
//! disallows `Python::attach` elsewhere.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use pyo3::prelude::*;

use crate::errors::error_text;

/// An execution's batch of Python work — a stage's batch or end of input, a batch of
/// keyspace events, the rest of a deferred event — in one hold, its wait for the GIL
/// counted for INFO (`metrics`).
pub(crate) fn batch<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    let asked = Instant::now();
    Python::attach(|py| {
        crate::metrics::count_hold(asked.elapsed());
        f(py)
    })
}

/// Records moving into or out of Python outside a stage's hold: a PythonReader pulling
/// its next batch, the finalizer converting results to native values, records marshalled
/// to and from other shards. Not counted in INFO (its GIL counters are the stages').
pub(crate) fn records<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(f)
}

/// An RG.PYEXECUTE script, run whole in one hold.
pub(crate) fn script<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(f)
}

/// A one-off request of the module that needs Python (start-up, rebuilding a run another
/// shard shipped, the profiler, a requirement's site dir, a time event's pickle): an
/// exception becomes the text the module replies or logs.
pub(crate) fn request<T>(f: impl FnOnce(Python<'_>) -> PyResult<T>) -> Result<T, String> {
    Python::attach(|py| f(py).map_err(|e| error_text(py, &e)))
}

/// A user callback Redis fires on its own (a time event's tick, a registration's
/// `onRegistered`), called without arguments. An exception is only logged, as a warning
/// `GEARS: {what}: {error}` (1.2's behaviour); returns false then.
pub(crate) fn callback(f: &Py<PyAny>, what: &str) -> bool {
    Python::attach(|py| match f.bind(py).call0() {
        Ok(_) => true,
        Err(e) => {
            if let Some(h) = crate::services::get() {
                let text = error_text(py, &e);
                h.log("warning", &format!("GEARS: {what}: {text}"));
            }
            false
        }
    })
}

/// Completing a `GearsFuture` when its run ends (`nested`): no user code runs, only the
/// wake-up of its awaiters is scheduled on their loops.
pub(crate) fn completion<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(f)
}

/// A short hold that runs no user code, to act on a thread: scheduling
/// `gears.forcestopped` in another thread, arming the main thread's eval breaker, or
/// restoring an exception inside a pending call (which already holds the GIL: this nests).
pub(crate) fn signal<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(f)
}
