//! A registration's drain state (`run::events::drain` is its only user): whether it is
//! deferring to a busy main thread, the events' arrival rate, and events carried to the
//! next batch. Lives with the registration; depends on nothing else in this crate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Time constant of that arrival-rate average (it smooths over a writer's pauses
/// between pipelines).
pub const RATE_TAU: Duration = Duration::from_millis(3);
/// Fewer events than this between two looks is no burst, however close together.
pub const BURST_MIN_EVENTS: u64 = 16;
/// A registration's drain state (only its drain touches it).
#[derive(Debug, Default)]
pub struct DrainState {
    pub(crate) deferring_since: Option<Instant>,
    /// Arrival rate (events/s) while the drain did not hold the lock, averaged; `None`
    /// before the backlog's first observation.
    pub(crate) rate: Option<f64>,
    /// Events popped but not run (a batch stopped early): (sequence number, key, event),
    /// read again and run first by the next batch.
    pub(crate) carry: VecDeque<(u64, Vec<u8>, Vec<u8>)>,
}

impl DrainState {
    /// Folds in `arrived` events over `during` (drain not holding the lock); returns
    /// the average rate. A handful of events close together is no burst.
    pub(crate) fn observe(&mut self, arrived: u64, during: Duration) -> f64 {
        let secs = during.as_secs_f64().max(1e-6);
        let now = if arrived < BURST_MIN_EVENTS {
            0.0
        } else {
            arrived as f64 / secs
        };
        let weight = 1.0 - (-secs / RATE_TAU.as_secs_f64()).exp();
        let rate = match self.rate {
            None => now,
            Some(r) => r + weight * (now - r),
        };
        self.rate = Some(rate);
        rate
    }
}
