//! `with atomic():` on a thread: whether a block is open and whether it took the Redis lock,
//! entering and leaving it (the runtime's `atomic_enter`/`atomic_exit`), and closing one
//! user code left open once its callback has returned. A worker's block is watched by
//! `busy` (stopped past the busy threshold).
//!
//! Bottom layer: depends on `services`, `errors`, `busy` and `embed`.

use pyo3::prelude::*;

use crate::errors::GearsError;
use crate::services;

thread_local! {
    /// Depth of `atomic()` blocks on this thread and whether the outer one took the lock.
    static ATOMIC: std::cell::Cell<(bool, bool)> = const { std::cell::Cell::new((false, false)) };
}

/// True while an `atomic()` block is open on this thread.
pub fn atomic_open() -> bool {
    ATOMIC.with(|a| a.get().0)
}

/// `_gearshift.atomic_open()`: whether this thread is inside `with atomic():` (the gears
/// loop checks it at every await, REFERENCE §5).
#[pyfunction(name = "atomic_open")]
pub(crate) fn atomic_open_py() -> bool {
    atomic_open()
}

/// Ends an `atomic()` block user code entered and never left (`__enter__` without
/// `__exit__`): called by the host when the callback that could leave it has returned, so a
/// worker never keeps the Redis lock past it. True if one was open.
pub fn release_leaked_atomic() -> bool {
    let (inside, took) = ATOMIC.with(|a| a.replace((false, false)));
    if inside && took {
        crate::busy::worker_unlocked();
        if let Some(h) = services::get() {
            h.unlock_redis();
        }
    }
    inside
}

/// Enters `with atomic():`: takes the Redis lock (GIL released while waiting for it).
#[pyfunction]
pub(crate) fn atomic_enter(py: Python<'_>) -> PyResult<()> {
    if ATOMIC.with(|a| a.get().0) {
        return Err(GearsError::new_err("Already inside an atomic block"));
    }
    let h = services::get().ok_or_else(|| GearsError::new_err("no Redis host"))?;
    let took = py.detach(|| h.lock_redis());
    ATOMIC.with(|a| a.set((true, took)));
    if took {
        crate::busy::worker_locked(crate::embed::current_thread_ident());
    }
    Ok(())
}

/// Leaves `with atomic():`, releasing the lock it took.
#[pyfunction]
pub(crate) fn atomic_exit(py: Python<'_>) {
    let (inside, took) = ATOMIC.with(|a| a.replace((false, false)));
    if inside && took {
        crate::busy::worker_unlocked();
        if let Some(h) = services::get() {
            py.detach(|| h.unlock_redis());
        }
    }
}
