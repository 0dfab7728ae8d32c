//! The value of an `rg_timeev` key (`registerTE`): the period, the cloudpickled callback
//! and who it runs as, with its liveness (dropping the key's value stops the timer) and the
//! callback once built. Its raw type callbacks are `ffi::timeev`; scheduling and creating
//! keys is `run::time_events`. Depends on `redis::lock`, `redis::access` and `ffi::log`.

use engine::sync::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gearpy::time_event::Tick;
use redis_module::Context;

use crate::redis::access::RunAs;
use crate::redis::lock::with_lock_held;

/// One time event (shared by its key's value and its pending timer).
pub struct TimeEvent {
    pub period: Duration,
    /// The callback, cloudpickled.
    pub pickled: Vec<u8>,
    /// Who the callback runs as (the ACL user of the code that created it).
    pub run_as: RunAs,
    /// False once the key's value was dropped: the timer stops.
    alive: AtomicBool,
    /// The callback, once built (at creation, or unpickled on first fire after a load).
    tick: Mutex<Option<Tick>>,
}

impl std::fmt::Debug for TimeEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeEvent")
            .field("period", &self.period)
            .field("alive", &self.alive)
            .finish_non_exhaustive()
    }
}

impl TimeEvent {
    pub fn new(
        period: Duration,
        pickled: Vec<u8>,
        run_as: RunAs,
        tick: Option<Tick>,
    ) -> Arc<TimeEvent> {
        Arc::new(TimeEvent {
            period: clamp_period(period),
            pickled,
            run_as,
            alive: AtomicBool::new(true),
            tick: Mutex::new(tick),
        })
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Runs the callback once (main thread, Redis lock held through `ctx`); false when the
    /// timer must stop.
    pub fn run(&self, ctx: &Context) -> bool {
        let mut tick = self.tick.lock().unwrap_or_else(|e| e.into_inner());
        if tick.is_none() {
            match gearpy::time_event::restore(&self.pickled, self.run_as.clone()) {
                Ok(t) => *tick = Some(t),
                Err(e) => {
                    crate::redis::ffi::log::warning(&format!(
                        "Gearshift: time event stopped, its callback could not be restored: {e}"
                    ));
                    return false;
                }
            }
        }
        match tick.as_mut() {
            Some(f) => with_lock_held(ctx, f),
            None => false,
        }
    }
}

// The period checks live in the engine so the fuzz targets reach them without Redis.
pub use engine::wire::time_event::clamp_period;

/// The value of an `rg_timeev` key; dropping it (the key goes away) stops the timer.
#[derive(Debug)]
pub struct TimeEventKey(pub Arc<TimeEvent>);

impl Drop for TimeEventKey {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::Release);
    }
}
