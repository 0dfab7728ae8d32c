//! The host's memory headroom: how many bytes the server may still allocate before its
//! memory limit (Redis's `maxmemory`). The host refreshes the estimate; the executor stops
//! reading from sources once it reaches zero, and the Python layer refuses large
//! allocations past it. Depends on `sync` only.

use crate::sync::{AtomicI64, Ordering};

/// `i64::MAX`: no limit.
static HEADROOM: AtomicI64 = AtomicI64::new(i64::MAX);

/// The error an execution ends with when the server is out of memory.
pub const OUT_OF_MEMORY: &str =
    "OOM execution stopped: used memory is above 'maxmemory' (the server refuses to grow it)";

/// Sets the headroom (`None`: the server has no memory limit).
pub fn set_headroom(bytes: Option<i64>) {
    HEADROOM.store(bytes.unwrap_or(i64::MAX), Ordering::Relaxed);
}

/// Bytes the server may still allocate (`i64::MAX` without a limit).
pub fn headroom() -> i64 {
    HEADROOM.load(Ordering::Relaxed)
}

/// True when the server is at or above its memory limit.
pub fn exhausted() -> bool {
    headroom() <= 0
}
