//! Internal commands that carry sessions to replicas and the AOF (REFERENCE §1.2, §9):
//! `RG.INNERREGISTER <blob>`, `RG.INNERUNREGISTER <id> [abortpending]` and
//! `RG.INNERTIMEEVENT <key> <seconds> <pickled> [<user>]` (a keyed time event,
//! `time_events`).

use redis_module::{Context, RedisError, RedisResult, RedisString, ThreadSafeContext};

use super::{module_state, respond};
use crate::app::persist;
use crate::redis::ffi::command::error;
use crate::redis::ffi::guard;
use crate::redis::ffi::replies::Reply;

/// `RG.INNERREGISTER <blob>`: installs (or replaces) the sessions in the blob.
pub fn innerregister(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() != 2 {
            return Err(RedisError::WrongArity);
        }
        let state = module_state()?;
        persist::load(ctx, state, args[1].as_slice()).map_err(error)?;
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.INNERUNREGISTER <id> [abortpending]`: drops a registration, silently if unknown.
pub fn innerunregister(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() < 2 {
            return Err(RedisError::WrongArity);
        }
        let abort_pending = args
            .get(2)
            .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case("abortpending"));
        unregister_local(&args[1].to_string_lossy(), abort_pending);
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.INNERTIMEEVENT <key> <seconds> <pickled> [<user>]`: (re)creates a time event key
/// (its callback runs as `<user>`, `crate::redis::access::encode`d; without one, as `default`).
pub fn innertimeevent(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() != 4 && args.len() != 5 {
            return Err(RedisError::WrongArity);
        }
        let run_as = match args
            .get(4)
            .map(|u| crate::redis::access::decode(u.as_slice()))
        {
            None => crate::redis::access::RunAs::user(crate::redis::access::LEGACY_USER),
            Some(Some(run_as)) => run_as,
            Some(None) => return respond(ctx, Reply::Error("ERR bad time event user".into())),
        };
        let secs = args[2]
            .parse_unsigned_integer()
            .map_err(|_| error("ERR bad time event period"))?;
        let pickled = args[3].as_slice().to_vec();
        crate::run::time_events::restore_key(ctx, &args[1], secs, pickled, run_as)
            .map_err(error)?;
        ctx.replicate_verbatim();
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// Drops registration `id` on this shard, silently if unknown (replicas, other shards).
pub fn unregister_local(id: &str, abort_pending: bool) {
    if let Some(state) = crate::model::state::get() {
        crate::model::registrations::unregister(state, id, abort_pending);
    }
}

/// Installs sessions another shard sent; the error is the reply text for that shard.
pub fn install_blob(ctx: &Context, blob: &[u8]) -> Result<(), String> {
    let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
    persist::load_strict(ctx, state, blob)
}

/// Sends `command args` to replicas and the AOF, from any thread.
pub fn replicate(command: &str, args: &[&[u8]]) {
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    guard.replicate(command, args);
}
