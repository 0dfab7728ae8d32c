//! RG.* commands, grouped by concern. Every handler runs inside `ffi::guard`.

pub mod config;
pub mod dump;
pub mod executions;
pub mod internal;
pub mod misc;
pub mod pyexecute;
pub mod registrations;
pub mod sessions;
pub mod trigger;

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::cluster::ask::{self, Query};
use crate::model::state::{self, ModuleState};
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::{block, reply_blocked, write, Reply};

/// Writes `r` as the command's reply.
pub(crate) fn respond(ctx: &Context, r: Reply) -> RedisResult {
    write(ctx, &r);
    Ok(RedisValue::NoReply)
}

/// The module state, or an error before a successful load.
pub(crate) fn module_state() -> Result<&'static ModuleState, RedisError> {
    state::get().ok_or_else(|| error("Gearshift is not initialised"))
}

/// Arguments after the command name, as text.
pub(crate) fn text_args(args: &[RedisString]) -> Vec<String> {
    args.iter().skip(1).map(|a| a.to_string_lossy()).collect()
}

/// Replies for a command that acts on every shard (REFERENCE §7): this shard's result
/// `local` first (an error ends it here); in a cluster the other shards are then asked `q`
/// and the reply is the first error among their answers, else `local`.
pub(crate) fn respond_cluster_wide(
    ctx: &Context,
    local: Result<Reply, String>,
    q: Query,
) -> RedisResult {
    let local = local.map_err(error)?;
    if crate::model::topology::current().is_none() {
        return respond(ctx, local);
    }
    let bc = block(ctx);
    crate::redis::lock::with_lock_held(ctx, || {
        ask::ask_others(
            q,
            crate::model::topology::wait_bound(),
            Box::new(move |answers| {
                let first_err = answers
                    .into_iter()
                    .map(|(_, r)| r)
                    .find(|r| matches!(r, Reply::Error(_)));
                reply_blocked(bc, &first_err.unwrap_or(local));
            }),
        )
    });
    Ok(RedisValue::NoReply)
}
