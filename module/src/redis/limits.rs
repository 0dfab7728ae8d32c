//! Server limits mirrored for threads that cannot ask Redis: a main-thread timer reads
//! `maxmemory` with Redis's used-memory ratio (the headroom of `engine::memory`, which stops
//! executions and large Python allocations at the limit) and `busy-reply-threshold` (when
//! long main-thread Python lets clients in, `gearpy::busy`) every tenth of a second, and
//! sends the replication held while clients were paused (`call::flush_held`). Depends on
//! `ffi`, `timers` and `call`.

use std::time::Duration;

use redis_module::Context;

const PERIOD: Duration = Duration::from_millis(100);

/// Starts the refresh (at module load, on the main thread).
pub fn start(ctx: &Context) {
    refresh(ctx);
    crate::redis::timers::create(ctx, PERIOD, tick, ());
}

fn refresh(ctx: &Context) {
    engine::memory::set_headroom(crate::redis::ffi::memory::headroom(ctx));
    if let Some(ms) = crate::redis::ffi::memory::config_int(ctx, "busy-reply-threshold") {
        gearpy::busy::set_threshold(ms.max(0) as u64);
    }
}

fn tick(ctx: &Context, _: ()) {
    crate::redis::ffi::trampoline::callback("the limits refresh", (), || {
        refresh(ctx);
        crate::redis::call::flush_held(ctx);
    });
    crate::redis::timers::create(ctx, PERIOD, tick, ());
}
