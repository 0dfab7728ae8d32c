//! Registration commands (REFERENCE §1.1, §1.3): RG.DUMPREGISTRATIONS, RG.UNREGISTER.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::dump::{keys_dump, stream_dump};
use super::{module_state, respond, respond_cluster_wide, text_args};
use crate::cluster::ask::Query;
use crate::redis::ffi::command::error;
use crate::redis::ffi::guard;
use crate::redis::ffi::replies::Reply;

/// `RG.DUMPREGISTRATIONS`.
pub fn dumpregistrations(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let state = module_state()?;
        let mut rows: Vec<Reply> = state
            .registrations
            .all()
            .iter()
            .map(|r| keys_dump(r, true))
            .collect();
        rows.extend(state.streams.all().iter().map(|r| stream_dump(r, true)));
        respond(ctx, Reply::Array(rows))
    })
}

/// `RG.UNREGISTER <id> [abortpending]`.
pub fn unregister(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.is_empty() || a.len() > 2 {
            return Err(RedisError::WrongArity);
        }
        let abort_pending = a
            .get(1)
            .is_some_and(|f| f.eq_ignore_ascii_case("abortpending"));
        let state = module_state()?;
        if !crate::model::registrations::unregister(state, &a[0], abort_pending) {
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
    })
}

/// `RG.CLEARREGISTRATIONSSTATS`: resets counters; `numTriggered` keeps in-flight runs. In a
/// cluster, on every shard.
pub fn clearregistrationsstats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        respond_cluster_wide(ctx, clear_stats_local(), Query::ClearStats)
    })
}

/// Clears this shard's registration stats.
pub fn clear_stats_local() -> Result<Reply, String> {
    let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
    for r in state.registrations.all() {
        let mut s = r.stats();
        let in_flight = s.triggered.saturating_sub(s.finished());
        *s = crate::model::registrations::Stats {
            triggered: in_flight,
            ..Default::default()
        };
    }
    Ok(Reply::Status("OK".into()))
}

/// `RG.PAUSEREGISTRATIONS [ABORTPENDING] <id>` / `RG.UNPAUSEREGISTRATIONS <id>`: only
/// StreamReader registrations can pause; others are refused with 1.2's texts. In a
/// cluster, on every shard.
fn pause_common(ctx: &Context, args: Vec<RedisString>, pause: bool) -> RedisResult {
    let a = text_args(&args);
    let id = match a.as_slice() {
        [id] => id,
        [flag, id] if pause && flag.eq_ignore_ascii_case("abortpending") => id,
        _ => return Err(RedisError::WrongArity),
    };
    respond_cluster_wide(ctx, pause_local(id, pause), Query::Pause(id.clone(), pause))
}

/// Pauses (or unpauses) registration `id` on this shard.
pub fn pause_local(id: &str, pause: bool) -> Result<Reply, String> {
    let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
    if let Some(r) = state.streams.get(id) {
        if pause {
            r.set_status(crate::model::streams::Status::Paused);
        } else {
            crate::run::streams::unpause(r);
        }
        return Ok(Reply::Status("OK".into()));
    }
    let verb = if pause { "pause" } else { "unpause" };
    Err(match state.registrations.get(id) {
        Some(r) => format!("Reader {} does not support {verb}", r.reader()),
        None => format!(
            "Execution {id} does not exists on shard {}",
            crate::model::topology::shard_id()
        ),
    })
}

/// `RG.PAUSEREGISTRATIONS`.
pub fn pauseregistrations(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| pause_common(ctx, args, true))
}

/// `RG.UNPAUSEREGISTRATIONS`.
pub fn unpauseregistrations(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| pause_common(ctx, args, false))
}
