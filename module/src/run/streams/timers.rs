//! What starts a StreamReader registration's batches besides new entries: the `duration`
//! timer, the `retry` timer, and scans of the streams a registration matches (on
//! registration, unpause, retry, and when a replica becomes a master: a 1 s timer watches
//! the role, as 1.2 does). Replicas do no stream work; all of this runs on Redis's main
//! thread or under the Redis lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::sync::{AtomicBool, Ordering};
use redis_module::{Context, ContextFlags};

use super::io;
use super::run::{due, enqueue, live, still_registered};
use crate::model::state;
use crate::model::streams::{Read, Status, StreamRegistration};
use crate::redis::lock::with_redis;

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

fn on_retry(ctx: &Context, reg: Arc<StreamRegistration>) {
    crate::redis::ffi::trampoline::callback("a stream retry timer", (), || {
        let Some(state) = state::get() else { return };
        // On a replica the registration waits: becoming a master rescans it.
        if !still_registered(state, &reg) || !live(ctx) {
            return;
        }
        if reg.transition(Status::WaitingForRetry, Status::Ok) {
            scan(ctx, &reg);
        }
    });
}

/// `retry`: re-reads the streams `onFailedRetryInterval` seconds after a failure.
pub(super) fn arm_retry(reg: Arc<StreamRegistration>) {
    let period = Duration::from_secs(reg.opts.retry_interval_s.max(1));
    with_redis(|ctx| crate::redis::timers::create(ctx, period, on_retry, reg));
}

/// Queues one batch reading everything for every matching stream that holds entries not
/// processed yet (lock held). Nothing on a replica or while loading.
pub(super) fn scan(ctx: &Context, reg: &Arc<StreamRegistration>) {
    watch_role(ctx);
    if !live(ctx) || reg.status() != Status::Ok {
        return;
    }
    let mut keys = io::matching_streams(ctx, &reg.prefix);
    keys.retain(|k| reg.may_use(k));
    for k in keys {
        reg.mark_seen(&k);
        if io::has_work(ctx, &k) {
            io::ensure_group(ctx, &k);
            let read = Read {
                count: None,
                arrival: Instant::now(),
            };
            enqueue(reg, &k, read);
        }
    }
}

static WATCHING: AtomicBool = AtomicBool::new(false);

/// Starts the role watcher once (lock held).
fn watch_role(ctx: &Context) {
    if !WATCHING.swap(true, Ordering::AcqRel) {
        let replica = ctx.get_flags().contains(ContextFlags::SLAVE);
        crate::redis::timers::create(ctx, Duration::from_secs(1), on_role_tick, replica);
    }
}

fn on_role_tick(ctx: &Context, was_replica: bool) {
    let replica = ctx.get_flags().contains(ContextFlags::SLAVE);
    crate::redis::ffi::trampoline::callback("the stream role watcher", (), || {
        if !(was_replica && !replica) {
            return;
        }
        let Some(state) = state::get() else { return };
        for reg in state.streams.all() {
            reg.transition(Status::WaitingForRetry, Status::Ok);
            scan(ctx, &reg);
        }
    });
    crate::redis::timers::create(ctx, Duration::from_secs(1), on_role_tick, replica);
}
