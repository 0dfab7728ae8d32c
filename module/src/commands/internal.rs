//! Internal commands that carry sessions to replicas and the AOF (REFERENCE §1.2, §9):
//! `RG.INNERREGISTER <blob>`, `RG.INNERUNREGISTER <id> [abortpending]` and
//! `RG.INNERTIMEEVENT <key> <seconds> <pickled> [<user>]` (a keyed time event,
//! `time_events`).

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::respond;
use crate::app::persist;
use crate::model::state::ModuleState;
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::Reply;

/// `RG.INNERREGISTER <blob>`: installs (or replaces) the sessions in the blob.
pub fn innerregister(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    persist::load(ctx, state, args[1].as_slice()).map_err(error)?;
    respond(ctx, Reply::Status("OK".into()))
}

/// `RG.INNERUNREGISTER <id> [abortpending]`: drops a registration, silently if unknown.
pub fn innerunregister(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let abort_pending = args
        .get(2)
        .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case("abortpending"));
    crate::app::local::unregister_local(state, &args[1].to_string_lossy(), abort_pending);
    respond(ctx, Reply::Status("OK".into()))
}

/// `RG.INNERTIMEEVENT <key> <seconds> <pickled> [<user>]`: (re)creates a time event key
/// (its callback runs as `<user>`, `crate::redis::access::encode`d; without one, as `default`).
pub fn innertimeevent(ctx: &Context, _state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
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
    crate::run::time_events::restore_key(ctx, &args[1], secs, pickled, run_as).map_err(error)?;
    ctx.replicate_verbatim();
    respond(ctx, Reply::Status("OK".into()))
}
