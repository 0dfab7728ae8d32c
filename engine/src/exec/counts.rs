//! Progress counters of one execution: records into and out of each stage, counted per
//! batch with relaxed atomics (RG.GETEXECUTION reads them while the execution runs).
//!
//! Depends only on `sync`.

use crate::sync::{AtomicU64, Ordering};

/// Records in and out of one stage so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageCount {
    /// Records the stage took in (for the source stage: records read).
    pub records_in: u64,
    /// Records the stage passed on (error-only batches carry none).
    pub records_out: u64,
}

/// One pair of counters per stage (index 0 is the source stage).
#[derive(Debug)]
pub(crate) struct Counts {
    records_in: Vec<AtomicU64>,
    records_out: Vec<AtomicU64>,
}

impl Counts {
    pub(crate) fn new(stages: usize) -> Counts {
        Counts {
            records_in: (0..stages).map(|_| AtomicU64::new(0)).collect(),
            records_out: (0..stages).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Stage `i` took in a batch of `n` records.
    pub(crate) fn add_in(&self, i: usize, n: usize) {
        Self::add(&self.records_in, i, n);
    }

    /// Stage `i` passed on a batch of `n` records.
    pub(crate) fn add_out(&self, i: usize, n: usize) {
        Self::add(&self.records_out, i, n);
    }

    fn add(v: &[AtomicU64], i: usize, n: usize) {
        if n > 0 {
            if let Some(c) = v.get(i) {
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }

    /// A snapshot of every stage's counters.
    pub(crate) fn snapshot(&self) -> Vec<StageCount> {
        self.records_in
            .iter()
            .zip(&self.records_out)
            .map(|(i, o)| StageCount {
                records_in: i.load(Ordering::Relaxed),
                records_out: o.load(Ordering::Relaxed),
            })
            .collect()
    }
}
