//! Learning the topology when a cluster node starts. Before, a node learned it only when a
//! script ran or another shard wrote to it; a node restarted from its RDB/AOF fired its
//! registrations as a standalone server until then (ids with 40 zeros, `hashtag()` of a
//! slot it may not own). Depends on `model::topology` and `redis`.

use std::time::Duration;

use redis_module::{Context, ContextFlags};

/// Reads tried before giving up (a minute): a node whose cluster never shows two masters
/// stays local. A read waits for `cluster_state:ok`, so it comes at most a period after.
const TRIES: u32 = 600;
const PERIOD: Duration = Duration::from_millis(100);

/// On a cluster node, reads the topology once the server runs (the first timer fires after
/// the RDB/AOF loaded), again every 100 ms until one is found (once the node sees every
/// slot served).
pub fn learn_topology(ctx: &Context) {
    if ctx.get_flags().contains(ContextFlags::CLUSTER) {
        crate::redis::timers::create(ctx, Duration::from_millis(1), attempt, TRIES);
    }
}

fn attempt(ctx: &Context, left: u32) {
    // The timer runs on the main thread with the Redis lock: say so, or the CLUSTER calls
    // would wait for that lock forever.
    let found = crate::redis::ffi::trampoline::callback("reading the topology", true, || {
        crate::redis::lock::with_lock_held(ctx, || {
            crate::model::topology::current().is_some()
                || (crate::model::topology::cluster_ok()
                    && crate::model::topology::refresh().is_some())
        })
    });
    if !found && left > 1 {
        crate::redis::timers::create(ctx, PERIOD, attempt, left - 1);
    }
}
