//! Keeps the engine's memory headroom (`engine::memory`) current: a main-thread timer
//! reads `maxmemory` and Redis's used-memory ratio every tenth of a second, so executions
//! stop reading and Python refuses large allocations once the server is at its limit.
//! Depends on `ffi::memory`.

use std::time::Duration;

use redis_module::Context;

const PERIOD: Duration = Duration::from_millis(100);

/// Starts the refresh (at module load, on the main thread).
pub fn start(ctx: &Context) {
    refresh(ctx);
    ctx.create_timer(PERIOD, tick, ());
}

fn refresh(ctx: &Context) {
    engine::memory::set_headroom(crate::ffi::memory::headroom(ctx));
}

fn tick(ctx: &Context, _: ()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| refresh(ctx))) {
        let text = crate::ffi::panic_text(p);
        ctx.log_warning(&format!(
            "Gearshift: memory headroom refresh panicked: {text}"
        ));
    }
    ctx.create_timer(PERIOD, tick, ());
}
