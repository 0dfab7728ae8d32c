//! The role watcher (a 1 s timer, as 1.2 has): when a replica becomes a master, every
//! StreamReader registration scans its streams. (The `duration` timer is in `run`, which
//! queues the batches.) Main thread only; depends on `run::streams::run`, `model` and
//! `redis`.

use std::time::Duration;

use engine::sync::{AtomicBool, Ordering};
use redis_module::{Context, ContextFlags};

use super::run::{scan, Scan};
use crate::model::state;
use crate::model::streams::Status;

static WATCHING: AtomicBool = AtomicBool::new(false);

/// Starts the role watcher once (lock held).
pub(super) fn watch_role(ctx: &Context) {
    if !WATCHING.swap(true, Ordering::AcqRel) {
        let replica = ctx.get_flags().contains(ContextFlags::SLAVE);
        crate::redis::timers::create(ctx, Duration::from_secs(1), on_role_tick, replica);
    }
}

fn on_role_tick(ctx: &Context, was_replica: bool) {
    let replica = ctx.get_flags().contains(ContextFlags::SLAVE);
    crate::redis::ffi::trampoline::callback("the stream role watcher", (), || {
        if !was_replica || replica {
            return;
        }
        let Some(state) = state::get() else { return };
        for reg in state.streams.all() {
            reg.transition(Status::WaitingForRetry, Status::Ok);
            scan(ctx, &reg, Scan::All);
        }
    });
    crate::redis::timers::create(ctx, Duration::from_secs(1), on_role_tick, replica);
}
