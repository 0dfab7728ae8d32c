//! Registration commands (REFERENCE §1.1, §1.3): RG.DUMPREGISTRATIONS, RG.UNREGISTER.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::dump::{keys_dump, stream_dump};
use super::{respond, respond_cluster_wide, text_args};
use crate::cluster::ask::Query;
use crate::model::state::ModuleState;
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::Reply;

/// `RG.DUMPREGISTRATIONS`.
pub fn dumpregistrations(
    ctx: &Context,
    state: &ModuleState,
    _args: Vec<RedisString>,
) -> RedisResult {
    let mut rows: Vec<Reply> = state
        .registrations
        .all()
        .iter()
        .map(|r| keys_dump(r, Some(&state.sessions)))
        .collect();
    rows.extend(
        state
            .streams
            .all()
            .iter()
            .map(|r| stream_dump(r, Some(&state.sessions))),
    );
    respond(ctx, Reply::Array(rows))
}

/// `RG.UNREGISTER <id> [abortpending]`.
pub fn unregister(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.is_empty() || a.len() > 2 {
        return Err(RedisError::WrongArity);
    }
    let abort_pending = a
        .get(1)
        .is_some_and(|f| f.eq_ignore_ascii_case("abortpending"));
    if !state.unregister(&a[0], abort_pending) {
        return Err(error("execution is not registered"));
    }
    let mut rep: Vec<&[u8]> = vec![a[0].as_bytes()];
    if abort_pending {
        rep.push(b"abortpending");
    }
    ctx.replicate("RG.INNERUNREGISTER", &rep[..]);
    crate::redis::lock::with_lock_held(ctx, || {
        crate::cluster::bus::broadcast_unregister(&a[0], abort_pending)
    });
    respond(ctx, Reply::Status("OK".into()))
}

/// `RG.CLEARREGISTRATIONSSTATS`: resets counters; `numTriggered` keeps in-flight runs. In a
/// cluster, on every shard.
pub fn clearregistrationsstats(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    respond_cluster_wide(
        ctx,
        crate::app::local::clear_stats_local(state),
        Query::ClearStats,
    )
}

/// `RG.PAUSEREGISTRATIONS [ABORTPENDING] <id>` / `RG.UNPAUSEREGISTRATIONS <id>`: only
/// StreamReader registrations can pause; others are refused with 1.2's texts. In a
/// cluster, on every shard.
fn pause_common(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
    pause: bool,
) -> RedisResult {
    let a = text_args(&args);
    let id = match a.as_slice() {
        // 1.2 takes every argument after the flags as an id: none left is its error.
        [flag] if pause && flag.eq_ignore_ascii_case("abortpending") => {
            return Err(error("ERR no registration to pause"));
        }
        [id] => id,
        [flag, id] if pause && flag.eq_ignore_ascii_case("abortpending") => id,
        _ => return Err(RedisError::WrongArity),
    };
    // 1.2 pauses with an internal gear, which takes an execution id (REFERENCE §7).
    state.registry.next_number();
    respond_cluster_wide(
        ctx,
        crate::app::local::pause_local(state, id, pause),
        Query::Pause(id.clone(), pause),
    )
}

/// `RG.PAUSEREGISTRATIONS`.
pub fn pauseregistrations(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
) -> RedisResult {
    pause_common(ctx, state, args, true)
}

/// `RG.UNPAUSEREGISTRATIONS`.
pub fn unpauseregistrations(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
) -> RedisResult {
    pause_common(ctx, state, args, false)
}
