//! Time events (`registerTE`): a callback run on Redis's main thread every period until it
//! asks to stop. The main thread holds the Redis lock, so `execute()` calls Redis directly.

use std::time::Duration;

use redis_module::{Context, ThreadSafeContext};

use crate::host::with_lock_held;

struct Tick {
    period: Duration,
    f: Box<dyn FnMut() -> bool + Send>,
}

fn on_timer(ctx: &Context, mut tick: Tick) {
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_lock_held(ctx, || (tick.f)())
    }))
    .unwrap_or(false);
    if again {
        let period = tick.period;
        ctx.create_timer(period, on_timer, tick);
    }
}

/// Starts a repeating time event (from any thread; takes the Redis lock to create it).
pub fn start(period: Duration, f: Box<dyn FnMut() -> bool + Send>) {
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    guard.create_timer(period, on_timer, Tick { period, f });
}
