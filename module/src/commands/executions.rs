//! Execution commands (REFERENCE §1.1, §1.3): RG.GETRESULTS, RG.GETRESULTSBLOCKING,
//! RG.DUMPEXECUTIONS, RG.DROPEXECUTION, RG.ABORTEXECUTION, RG.GETEXECUTION.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{cannot_block, respond, respond_cluster_wide, text_args};
use crate::app::local;
use crate::cluster::ask::{self, Query};
use crate::model::executions::{Entry, Status};
use crate::model::queued_ids::NotWaiting;
use crate::model::state::ModuleState;
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::{block, bulk, reply_blocked, Reply};
use crate::redis::lock::with_lock_held;

const NO_SUCH_PLAN: &str = "execution plan does not exist";
const STILL_RUNNING: &str = "execution is still running";
const NOT_FINISHED: &str = "can not drop a not yet finished execution, abort it first.";
/// RG.GETRESULTSBLOCKING's text when `MAX_WAITERS` clients wait on one registration.
const TOO_MANY: &str = "too many clients wait for this registration's queued executions";
/// RG.GETRESULTSBLOCKING's text for an unfinished execution where no client can wait.
const CANNOT_WAIT: &str =
    "ERR can not wait for an execution inside a MULTI/LUA or execute() (blocking is not allowed)";

fn entry(state: &ModuleState, id: &str) -> Result<std::sync::Arc<Entry>, RedisError> {
    state.registry.get(id).ok_or_else(|| error(NO_SUCH_PLAN))
}

/// `RG.GETRESULTS <id>` (extra arguments ignored).
pub fn getresults(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    let id = a.first().ok_or(RedisError::WrongArity)?;
    state.trim_queued();
    if state.registry.get(id).is_none() && local::event_pending(state, id) {
        return Err(error(STILL_RUNNING));
    }
    match entry(state, id)?.result_reply() {
        Some(r) => respond(ctx, r),
        None => Err(error(STILL_RUNNING)),
    }
}

/// `RG.GETRESULTSBLOCKING <id>`: blocks the client (not Redis) until the execution ends.
/// A queued event's execution has no entry yet: the client waits on its registration's
/// list and is answered when the event's execution is recorded, aborted or discarded.
pub fn getresultsblocking(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
) -> RedisResult {
    let a = text_args(&args);
    if a.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    state.trim_queued();
    // An execution dropped from its registration's list while it runs is still waited for.
    let kept = || state.registry.get_or_running(&a[0]);
    if cannot_block(ctx) {
        return match kept().map(|e| e.result_reply()) {
            Some(Some(r)) => respond(ctx, r),
            Some(None) => Err(error(CANNOT_WAIT)),
            None if local::event_pending(state, &a[0]) => Err(error(CANNOT_WAIT)),
            None => Err(error(NO_SUCH_PLAN)),
        };
    }
    if kept().is_none() {
        match local::wait_for_event(state, &a[0], block(ctx)) {
            Ok(()) => return Ok(RedisValue::NoReply),
            // Not queued (any more): answered from its entry, if kept or still running.
            Err(NotWaiting::NotPending(client)) => match kept() {
                Some(e) => e.reply_when_done(client),
                None => reply_blocked(client, &Reply::Error(NO_SUCH_PLAN.into())),
            },
            Err(NotWaiting::Full(client)) => reply_blocked(client, &Reply::Error(TOO_MANY.into())),
        }
        return Ok(RedisValue::NoReply);
    }
    let e = kept().ok_or_else(|| error(NO_SUCH_PLAN))?;
    if let Some(r) = e.result_reply() {
        return respond(ctx, r);
    }
    e.reply_when_done(block(ctx));
    Ok(RedisValue::NoReply)
}

/// `RG.DUMPEXECUTIONS`: `[executionId, id, status, s, registered, 0|1]`, newest first.
pub fn dumpexecutions(ctx: &Context, state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let row = |id: &str, status: &str, registered: bool| {
        Reply::Array(vec![
            bulk("executionId"),
            bulk(id),
            bulk("status"),
            bulk(status),
            bulk("registered"),
            Reply::Int(registered as i64),
        ])
    };
    // Queued events (`created`) and batched events running now have no entry yet: they
    // come first (they are the newest), queued ones newest first.
    // At most `MaxExecutions` of them (1.2's list holds no more), and at most
    // `MaxExecutionsPerRegistration` of a registration, its running event included (its
    // kept ones are trimmed to fit, `trim_queued`).
    let cap = |name| match state.config.int(name) {
        c if c > 0 => c as usize,
        _ => usize::MAX,
    };
    let (cap, per_reg) = (cap("MaxExecutions"), cap("MaxExecutionsPerRegistration"));
    state.trim_queued();
    let regs = state.registrations.all();
    let listed: Vec<(Vec<u64>, Option<String>)> = regs
        .iter()
        .map(|r| {
            let queued = r.queued_ids.numbers(cap.min(per_reg));
            let running = r.in_flight.id().filter(|_| queued.len() < per_reg);
            (queued, running)
        })
        .collect();
    let mut queued: Vec<u64> = listed.iter().flat_map(|(q, _)| q.iter().copied()).collect();
    queued.sort_unstable_by(|a, b| b.cmp(a));
    queued.truncate(cap);
    let mut rows: Vec<Reply> = queued
        .into_iter()
        .map(|n| {
            let id = crate::model::topology::numbered_id(n);
            row(&id, Status::Created.name(), true)
        })
        .collect();
    rows.extend(
        listed
            .iter()
            .filter_map(|(_, running)| running.as_deref())
            .map(|id| row(id, Status::Running.name(), true)),
    );
    rows.extend(
        state
            .registry
            .newest_first()
            .iter()
            .map(|e| row(&e.id, e.status().name(), e.registered)),
    );
    respond(ctx, Reply::Array(rows))
}

/// `RG.DROPEXECUTION <id>`; in a cluster the drop also reaches every other shard.
pub fn dropexecution(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    state.trim_queued();
    if state.registry.get(&a[0]).is_none() && local::event_pending(state, &a[0]) {
        return Err(error(NOT_FINISHED));
    }
    let e = entry(state, &a[0])?;
    if matches!(e.status(), Status::Running | Status::Created) {
        return Err(error(NOT_FINISHED));
    }
    state.registry.remove(&a[0]);
    with_lock_held(ctx, || {
        ask::ask_others(
            Query::DropExecution(a[0].clone()),
            crate::model::state::wait_bound(),
            Box::new(|_| {}),
        )
    });
    respond(ctx, Reply::Status("OK".into()))
}

/// `RG.ABORTEXECUTION <id>`: OK for finished executions (1.2), else stops it; in a cluster
/// on every shard, replying with the first error or OK.
pub fn abortexecution(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    // Python running long on the main thread (this command runs while it yields): it
    // is stopped by its id, or by SCRIPT KILL / FUNCTION KILL, which the command filter
    // turns into this command with `KILL_BUSY`.
    if a[0] == crate::redis::ffi::filter::KILL_BUSY {
        return respond(
            ctx,
            if gearpy::busy::kill(None) {
                Reply::Status("OK".into())
            } else {
                Reply::Error("NOTBUSY No scripts in execution right now.".into())
            },
        );
    }
    // 1.2 aborts with an internal gear, which takes an execution id (REFERENCE §7).
    state.registry.next_number();
    if gearpy::busy::kill(Some(&a[0])) {
        return respond(ctx, Reply::Status("OK".into()));
    }
    respond_cluster_wide(
        ctx,
        crate::app::local::abort_local(state, &a[0]),
        Query::AbortExecution(a[0].clone()),
    )
}

/// `RG.GETEXECUTION <id> [SHARD|CLUSTER]`: the §1.3 layout; CLUSTER (the default in a
/// cluster) gathers every shard's entry.
pub fn getexecution(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.is_empty() || a.len() > 2 {
        return Err(RedisError::WrongArity);
    }
    let clustered = crate::model::topology::current().is_some();
    let whole_cluster = match a.get(1).map(|m| m.to_ascii_uppercase()) {
        None => clustered,
        Some(m) if m == "SHARD" => false,
        Some(m) if m == "CLUSTER" => {
            if !clustered {
                return Err(error(
                    "no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead",
                ));
            }
            true
        }
        Some(_) => return Err(error("unknown subcommand")),
    };
    if !whole_cluster {
        let plan = crate::app::local::local_plan(state, &a[0]).map_err(error)?;
        return respond(ctx, Reply::Array(vec![plan]));
    }
    // 1.2 gathers the shards' entries with an internal gear, which takes an execution id.
    state.registry.next_number();
    let local = crate::app::local::local_plan(state, &a[0]).ok();
    if cannot_block(ctx) {
        // No client to wait with: this shard's entry only (as RG.INFOCLUSTER does).
        let plan = local.ok_or_else(|| error(NO_SUCH_PLAN))?;
        return respond(ctx, Reply::Array(vec![plan]));
    }
    let bc = block(ctx);
    with_lock_held(ctx, || {
        ask::ask_others(
            Query::GetExecution(a[0].clone()),
            crate::model::state::wait_bound(),
            Box::new(move |answers| {
                let plans: Vec<Reply> = local
                    .into_iter()
                    .chain(answers.into_iter().map(|(_, r)| r))
                    .filter(|r| matches!(r, Reply::Array(_)))
                    .collect();
                let reply = if plans.is_empty() {
                    Reply::Error(NO_SUCH_PLAN.into())
                } else {
                    Reply::Array(plans)
                };
                reply_blocked(bc, &reply);
            }),
        )
    });
    Ok(RedisValue::NoReply)
}
