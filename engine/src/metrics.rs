//! Process-wide engine counters for operators (INFO): cheap relaxed atomics bumped once per
//! batch or execution, never per record; [`data_plane`] reads the buffer pool's and the
//! SPSC rings' gauges. Depends on `sync`, `pool`, `queue`.

use crate::sync::{AtomicU64, Ordering};

/// Engine counters.
#[derive(Debug, Default)]
pub struct Metrics {
    pub executions_started: AtomicU64,
    pub executions_finished: AtomicU64,
    pub executions_aborted: AtomicU64,
    pub batches: AtomicU64,
    pub records: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub executions_started: u64,
    pub executions_finished: u64,
    pub executions_aborted: u64,
    pub batches: u64,
    pub records: u64,
}

static METRICS: Metrics = Metrics {
    executions_started: AtomicU64::new(0),
    executions_finished: AtomicU64::new(0),
    executions_aborted: AtomicU64::new(0),
    batches: AtomicU64::new(0),
    records: AtomicU64::new(0),
};

/// The global counters.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        let _ = self;
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            executions_started: self.executions_started.load(Ordering::Relaxed),
            executions_finished: self.executions_finished.load(Ordering::Relaxed),
            executions_aborted: self.executions_aborted.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
        }
    }
}

/// The data plane's gauges and counters at one moment: the buffer pool and the SPSC rings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataPlane {
    /// `pool::global()`'s counters.
    pub pool: crate::pool::PoolStats,
    /// Batches queued between stages (every SPSC ring of the process).
    pub queued_batches: u64,
}

/// The data plane now.
pub fn data_plane() -> DataPlane {
    DataPlane {
        pool: crate::pool::global().stats(),
        queued_batches: crate::queue::queued() as u64,
    }
}
