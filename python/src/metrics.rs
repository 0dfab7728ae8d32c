//! Counters of the Python layer for INFO: how often execution stages took the GIL and how
//! long they waited for it (contention between workers, the main thread and Redis).

use engine::sync::{AtomicU64, Ordering};
use std::time::Instant;

use pyo3::prelude::*;

static HOLDS: AtomicU64 = AtomicU64::new(0);
static WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// `Python::attach` for a batch of an execution, timing the wait for the GIL.
pub(crate) fn attach_batch<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    let asked = Instant::now();
    Python::attach(|py| {
        WAIT_NS.fetch_add(asked.elapsed().as_nanos() as u64, Ordering::Relaxed);
        HOLDS.fetch_add(1, Ordering::Relaxed);
        f(py)
    })
}

/// (GIL holds by execution stages, total microseconds spent waiting for the GIL).
pub fn gil_stats() -> (u64, u64) {
    (
        HOLDS.load(Ordering::Relaxed),
        WAIT_NS.load(Ordering::Relaxed) / 1_000,
    )
}
