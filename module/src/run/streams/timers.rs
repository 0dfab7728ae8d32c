//! Timers that start StreamReader batches besides new entries: `duration` (what arrived
//! since the last batch) and the role watcher (a 1 s timer, as 1.2 has: when a replica
//! becomes a master, every registration scans its streams). Main thread only; depends on
//! `run::streams::run`, `model` and `redis`.

use std::sync::Arc;
use std::time::Duration;

use engine::sync::{AtomicBool, Ordering};
use redis_module::{Context, ContextFlags};

use super::run::{due, live, scan, still_registered, Scan};
use crate::model::state;
use crate::model::streams::{Status, StreamRegistration};

#[derive(Debug)]
struct Wake {
    reg: Arc<StreamRegistration>,
    key: Vec<u8>,
}

fn on_duration(ctx: &Context, w: Wake) {
    crate::redis::ffi::trampoline::callback("a stream batch timer", (), || {
        let Some(state) = state::get() else { return };
        if !still_registered(state, &w.reg) || !live(ctx) {
            return;
        }
        if let Some(read) = w.reg.flush(&w.key) {
            due(Some(ctx), &w.reg, &w.key, vec![read]);
        }
    });
}

/// `duration`: queues what arrived since the last batch `duration` ms after its first
/// entry, whether or not a batch runs then (main thread).
pub(super) fn arm_duration(ctx: &Context, reg: &Arc<StreamRegistration>, key: Vec<u8>) {
    let period = Duration::from_millis(reg.opts.duration_ms);
    let wake = Wake {
        reg: Arc::clone(reg),
        key,
    };
    crate::redis::timers::create(ctx, period, on_duration, wake);
}

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
