//! StreamReader events: the `xadd` notification counts new entries per stream and queues
//! the batches that are due (`run`, with the `duration` and `retry` timers and the scans of
//! matching streams); `timers` watches for a replica's promotion; `io` reads, acks and
//! trims through the consumer group.

pub mod io;
pub mod run;
pub mod timers;

use std::sync::Arc;

use redis_module::{Context, NotifyEvent};

use crate::model::streams::{Status, StreamRegistration};
use crate::redis::lock::with_redis;

/// The `xadd` notification handler (main thread, Redis lock held).
pub fn on_stream_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    if event != "xadd" {
        return;
    }
    crate::redis::ffi::trampoline::callback("a stream event", (), || {
        let Some(state) = crate::model::state::get() else {
            return;
        };
        if state.streams.is_empty() || !run::live(ctx) {
            return;
        }
        for reg in state
            .streams
            .all()
            .into_iter()
            .filter(|r| r.matches_key(key) && r.may_use(key))
        {
            let due = reg.on_entry(key, || io::undelivered(ctx, key));
            if due.arm_timer {
                run::arm_duration(ctx, &reg, key.to_vec());
            }
            if !due.reads.is_empty() {
                run::due(Some(ctx), &reg, key, due.reads);
            }
        }
    });
}

/// Resumes a paused registration: processes what its streams hold.
pub fn unpause(reg: Arc<StreamRegistration>) {
    reg.set_status(Status::Ok);
    scan_later(reg, run::Scan::All);
}

/// Starts a new registration: processes what its streams already hold (from a worker).
pub fn start(reg: Arc<StreamRegistration>) {
    scan_later(reg, run::Scan::Unseen);
}

fn scan_later(reg: Arc<StreamRegistration>, which: run::Scan) {
    let Some(state) = crate::model::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || {
        with_redis(|ctx| {
            timers::watch_role(ctx);
            run::scan(ctx, &reg, which);
        })
    });
}
