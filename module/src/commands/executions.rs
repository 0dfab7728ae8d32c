//! Execution commands (REFERENCE §1.1, §1.3): RG.GETRESULTS, RG.GETRESULTSBLOCKING,
//! RG.DUMPEXECUTIONS, RG.DROPEXECUTION, RG.ABORTEXECUTION, RG.GETEXECUTION.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{module_state, respond, text_args};
use crate::executions::{Entry, Status};
use crate::ffi::guard;
use crate::ffi::replies::{block, Reply};

const NO_SUCH_PLAN: &str = "execution plan does not exist";

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn entry(id: &str) -> Result<std::sync::Arc<Entry>, RedisError> {
    module_state()?
        .registry
        .get(id)
        .ok_or(RedisError::Str(NO_SUCH_PLAN))
}

/// `RG.GETRESULTS <id>` (extra arguments ignored).
pub fn getresults(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        let id = a.first().ok_or(RedisError::WrongArity)?;
        match entry(id)?.result_reply() {
            Some(r) => respond(ctx, r),
            None => Err(RedisError::Str("execution is still running")),
        }
    })
}

/// `RG.GETRESULTSBLOCKING <id>`: blocks the client (not Redis) until the execution ends.
pub fn getresultsblocking(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        let e = entry(&a[0])?;
        if let Some(r) = e.result_reply() {
            return respond(ctx, r);
        }
        e.reply_when_done(block(ctx));
        Ok(RedisValue::NoReply)
    })
}

/// `RG.DUMPEXECUTIONS`: `[executionId, id, status, s, registered, 0|1]`, newest first.
pub fn dumpexecutions(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let rows = module_state()?
            .registry
            .newest_first()
            .iter()
            .map(|e| {
                Reply::Array(vec![
                    bulk("executionId"),
                    bulk(&e.id),
                    bulk("status"),
                    bulk(e.status().name()),
                    bulk("registered"),
                    Reply::Int(e.registered as i64),
                ])
            })
            .collect();
        respond(ctx, Reply::Array(rows))
    })
}

/// `RG.DROPEXECUTION <id>`.
pub fn dropexecution(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        let e = entry(&a[0])?;
        if matches!(e.status(), Status::Running | Status::Created) {
            return Err(RedisError::Str(
                "can not drop a not yet finished execution, abort it first.",
            ));
        }
        module_state()?.registry.remove(&a[0]);
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.ABORTEXECUTION <id>`: OK for finished executions (1.2), else stops it.
pub fn abortexecution(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        let e = module_state()?
            .registry
            .get(&a[0])
            .ok_or(RedisError::Str("execution does not exist"))?;
        e.abort();
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.GETEXECUTION <id> [SHARD|CLUSTER]`: the §1.3 layout.
pub fn getexecution(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.is_empty() || a.len() > 2 {
            return Err(RedisError::WrongArity);
        }
        if let Some(mode) = a.get(1) {
            match mode.to_ascii_uppercase().as_str() {
                "SHARD" => {}
                "CLUSTER" => {
                    return Err(RedisError::Str(
                        "no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead",
                    ))
                }
                _ => return Err(RedisError::Str("unknown subcommand")),
            }
        }
        let e = entry(&a[0])?;
        let profile = module_state()?.config.int("ProfileExecutions") != 0;
        respond(ctx, Reply::Array(vec![shard_plan(&e, profile)]))
    })
}

fn shard_plan(e: &Entry, profile: bool) -> Reply {
    let (results, errors, total_ms) = e.summary();
    // Total and read durations are always measured; per-step ones only when profiling.
    let (read_ms, step_ms) = e.durations();
    // Steps are listed last step first; durations are 0 unless ProfileExecutions.
    let steps = e
        .steps
        .iter()
        .zip(step_ms)
        .rev()
        .map(|(s, ms)| {
            Reply::Array(vec![
                bulk("type"),
                bulk(&s.kind),
                bulk("duration"),
                Reply::Int(if profile { ms as i64 } else { 0 }),
                bulk("name"),
                bulk(&s.name),
                bulk("arg"),
                bulk(&s.arg),
            ])
        })
        .collect();
    let plan = vec![
        bulk("status"),
        bulk(e.status().name()),
        bulk("shards_received"),
        Reply::Int(0),
        bulk("shards_completed"),
        Reply::Int(0),
        bulk("results"),
        Reply::Int(results),
        bulk("errors"),
        Reply::Array(errors.iter().map(|x| bulk(x)).collect()),
        bulk("total_duration"),
        Reply::Int(total_ms as i64),
        bulk("read_duration"),
        Reply::Int(read_ms as i64),
        bulk("steps"),
        Reply::Array(steps),
    ];
    Reply::Array(vec![
        bulk("shard_id"),
        bulk(&crate::cluster::shard_id()),
        bulk("execution_plan"),
        Reply::Array(plan),
    ])
}
