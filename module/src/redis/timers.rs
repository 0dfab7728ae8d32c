//! Time events (`registerTE`): a callback run on Redis's main thread every period until it
//! asks to stop. The main thread holds the Redis lock, so `execute()` calls Redis directly.
//! Also the one place module code creates Redis timers ([`create`]).

use std::time::Duration;

use gearpy::time_event::MAX_PERIOD_SECS;
use redis_module::Context;

use crate::redis::ffi::trampoline::callback;
use crate::redis::lock::{with_lock_held, with_redis};

struct Tick {
    period: Duration,
    f: Box<dyn FnMut() -> bool + Send>,
}

/// Creates a Redis timer; every module timer goes through here. The period is clamped to
/// [1 ms, `MAX_PERIOD_SECS`]: callers validate what users give, and this keeps a period that
/// slipped through from panicking inside redis-module (an abort when it happens in a timer
/// or notification callback).
pub fn create<T: 'static>(ctx: &Context, period: Duration, callback: fn(&Context, T), data: T) {
    let max = Duration::from_secs(MAX_PERIOD_SECS);
    ctx.create_timer(period.clamp(Duration::from_millis(1), max), callback, data);
}

fn on_timer(ctx: &Context, mut tick: Tick) {
    let again = callback("a timer", false, || with_lock_held(ctx, || (tick.f)()));
    if again {
        let period = tick.period;
        create(ctx, period, on_timer, tick);
    }
}

/// Starts a repeating time event (from any thread; takes the Redis lock to create it).
pub fn start(period: Duration, f: Box<dyn FnMut() -> bool + Send>) {
    with_redis(|ctx| create(ctx, period, on_timer, Tick { period, f }));
}
