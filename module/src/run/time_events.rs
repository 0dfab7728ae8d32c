//! Time events stored in keys (`registerTE(seconds, fn, keyName)`, REFERENCE §5, §9).
//!
//! The key's value (module type `rg_timeev`, raw callbacks in `ffi::timeev`) is the period
//! and the callback cloudpickled, as 1.2 stores it. Its timer runs on Redis's main thread
//! as long as the value lives: deleting, overwriting, expiring or flushing the key drops
//! the value, which marks the event dead, and the timer stops when it next fires. A value
//! loaded from an RDB (`DEBUG RELOAD`, restart, full sync, `RESTORE`) starts a new timer;
//! its callback is unpickled when the timer first fires, so loading never runs Python
//! and does not depend on whether sessions load before or after keys.
//!
//! A session rebuilt from its source while loading calls `registerTE` again; that call
//! does nothing (returns False): the key, if it existed when the data was saved, was
//! loaded with the data. Replication and the AOF see `RG.INNERTIMEEVENT <key> <seconds> <pickled>
//! <user>` (the user its callback runs as, `crate::redis::access`), which
//! recreates the key (also what an AOF rewrite without an RDB preamble emits). Like
//! registrations, time events never call their function on a replica or while loading.

use std::sync::Arc;
use std::time::Duration;

use gearpy::time_event::Tick;
use redis_module::{Context, ContextFlags, RedisString};

use crate::redis::access::RunAs;
use crate::redis::ffi::timeev::TIME_EVENT_TYPE;
use crate::redis::lock::with_redis;
pub use crate::redis::time_event::{clamp_period, TimeEvent, TimeEventKey};

/// Redis's refusal of a key the user may not access.
const NO_KEY_PERMISSION: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

/// Schedules `ev`'s next firing (main thread or a holder of the Redis lock, through `ctx`).
pub fn schedule(ctx: &Context, ev: Arc<TimeEvent>) {
    let period = ev.period;
    crate::redis::timers::create(ctx, period, on_fire, ev);
}

fn on_fire(ctx: &Context, ev: Arc<TimeEvent>) {
    if !ev.alive() {
        return;
    }
    let live = !ctx
        .get_flags()
        .intersects(ContextFlags::LOADING | ContextFlags::SLAVE);
    let again =
        !live || crate::redis::ffi::trampoline::callback("a time event", false, || ev.run(ctx));
    if again && ev.alive() {
        schedule(ctx, ev);
    }
}

/// Stores a new time event in `key` and starts it; false if the key exists. From any
/// thread (takes the Redis lock unless this thread holds it; never call with the GIL).
pub fn create(
    key: &[u8],
    period: Duration,
    pickled: Vec<u8>,
    run_as: Option<RunAs>,
    tick: Tick,
) -> Result<bool, String> {
    // Code without an identity gets none later either (its calls are refused).
    let run_as = run_as.unwrap_or_else(|| RunAs::user(crate::redis::access::NO_USER));
    with_redis(|ctx| {
        // A session rebuilt from its source while loading runs its registerTE again: the
        // key, if it still existed when saved, comes from the data itself. Replicas get
        // the key from their master.
        if ctx
            .get_flags()
            .intersects(ContextFlags::LOADING | ContextFlags::SLAVE)
        {
            return Ok(false);
        }
        // The key is created as the code's user would create it (asked before whether it
        // exists, so the answer does not tell about keys the user may not reach).
        if !crate::redis::access::may_access(&run_as, key, crate::redis::access::INSERT) {
            return Err(NO_KEY_PERMISSION.to_owned());
        }
        let name = RedisString::create_from_slice(std::ptr::null_mut(), key);
        let k = ctx.open_key_writable(&name);
        if !k.is_empty() {
            return Ok(false);
        }
        let ev = TimeEvent::new(period, pickled, run_as, Some(tick));
        k.set_value(&TIME_EVENT_TYPE, TimeEventKey(Arc::clone(&ev)))
            .map_err(|e| e.to_string())?;
        let secs_text = ev.period.as_secs().to_string();
        let user = crate::redis::access::encode(&ev.run_as);
        crate::redis::call::replicate_on(
            ctx,
            "RG.INNERTIMEEVENT",
            &[key, secs_text.as_bytes(), ev.pickled.as_slice(), &user][..],
        );
        schedule(ctx, ev);
        Ok(true)
    })
}

/// `RG.INNERTIMEEVENT <key> <seconds> <pickled> [<user>]` (replication, AOF): (re)creates
/// the key.
pub fn restore_key(
    ctx: &Context,
    key: &RedisString,
    secs: u64,
    pickled: Vec<u8>,
    run_as: RunAs,
) -> Result<(), String> {
    // Checked before the key is touched: a stored value must always load back.
    engine::wire::time_event::check_period(secs)?;
    gearpy::time_event::check_pickle(&pickled).map_err(|e| format!("ERR {e}"))?;
    let k = ctx.open_key_writable(key);
    let ev = TimeEvent::new(Duration::from_secs(secs), pickled, run_as, None);
    k.set_value(&TIME_EVENT_TYPE, TimeEventKey(Arc::clone(&ev)))
        .map_err(|e| e.to_string())?;
    schedule(ctx, ev);
    Ok(())
}
