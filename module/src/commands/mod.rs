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

use crate::ffi::replies::{write, Reply};
use crate::state::{self, ModuleState};

/// Writes `r` as the command's reply.
pub(crate) fn respond(ctx: &Context, r: Reply) -> RedisResult {
    write(ctx, &r);
    Ok(RedisValue::NoReply)
}

/// The module state, or an error before a successful load.
pub(crate) fn module_state() -> Result<&'static ModuleState, RedisError> {
    state::get().ok_or(RedisError::Str("Gearshift is not initialised"))
}

/// Arguments after the command name, as text.
pub(crate) fn text_args(args: &[RedisString]) -> Vec<String> {
    args.iter().skip(1).map(|a| a.to_string_lossy()).collect()
}
