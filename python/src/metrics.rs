//! Counters of the Python layer for INFO: how often execution stages took the GIL and how
//! long they waited for it (contention between workers, the main thread and Redis).
//! `gil::batch` counts each hold. A leaf: depends on `engine::sync` only.

use engine::sync::{AtomicU64, Ordering};
use std::time::Duration;

static HOLDS: AtomicU64 = AtomicU64::new(0);
static WAIT_NS: AtomicU64 = AtomicU64::new(0);

/// Counts one GIL hold of an execution that waited `waited` for the GIL (`gil::batch`).
pub(crate) fn count_hold(waited: Duration) {
    WAIT_NS.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    HOLDS.fetch_add(1, Ordering::Relaxed);
}

/// (GIL holds by execution stages, total microseconds spent waiting for the GIL).
pub fn gil_stats() -> (u64, u64) {
    (
        HOLDS.load(Ordering::Relaxed),
        WAIT_NS.load(Ordering::Relaxed) / 1_000,
    )
}
