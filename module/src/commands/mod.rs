//! RG.* commands, grouped by concern: each parses its arguments, calls the app (or the
//! model) and builds the reply. Every handler runs in the command wrapper (`command!`,
//! `code!`, `internal!` in lib.rs), which contains panics and hands it the module state.
//! Depends on every layer below.

pub mod config;
pub mod dump;
pub mod executions;
pub mod internal;
pub mod misc;
pub mod pyexecute;
pub mod registrations;
pub mod requirements;
pub mod sessions;
pub mod trigger;

use redis_module::{Context, RedisResult, RedisString, RedisValue};

use crate::cluster::ask::{self, Query};
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::{block, reply_blocked, write, Reply};

/// Writes `r` as the command's reply.
pub(crate) fn respond(ctx: &Context, r: Reply) -> RedisResult {
    write(ctx, &r);
    Ok(RedisValue::NoReply)
}

pub(crate) use crate::redis::ffi::replies::cannot_block;

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
    if cannot_block(ctx) {
        // The other shards still act; their answers are not waited for.
        crate::redis::lock::with_lock_held(ctx, || {
            ask::ask_others(q, crate::model::state::wait_bound(), Box::new(|_| {}))
        });
        return respond(ctx, local);
    }
    let bc = block(ctx);
    crate::redis::lock::with_lock_held(ctx, || {
        ask::ask_others(
            q,
            crate::model::state::wait_bound(),
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
