//! `RG.TRIGGER <trigger> [arg ...]` and `RG.TRIGGERONKEY <trigger> <key> [arg ...]`
//! (REFERENCE §1.1, §2.3): run a CommandReader registration on `[trigger, args...]`.
//! Sync registrations run inline; others block the client until the execution ends.

use std::sync::Arc;
use std::time::Instant;

use engine::batch::Batch;
use engine::exec::ExecutionOutput;
use engine::Datum;
use gearpy::{ControlledRuntime, EventPlan, ExecControl};
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use super::respond;
use crate::model::executions::Entry;
use crate::model::registrations::{Mode, Registration};
use crate::model::reply::datum_reply;
use crate::model::state::ModuleState;
use crate::redis::access::{AsUser, Scope};
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::{block_measured, reply_blocked, Blocked, Reply, CANNOT_BLOCK};
use crate::redis::lock::with_lock_held;
use crate::run::distribute;
use crate::run::hooks::NOT_SYNC_IN_MULTI;
use crate::run::inline::Inline;
use crate::run::readers::ready::ReadySource;

/// The reply of a trigger run: the first error, else the results.
fn trigger_reply(out: &ExecutionOutput) -> Reply {
    match out.errors.first() {
        Some(e) => Reply::Error(e.clone()),
        None => Reply::Array(out.results.iter().map(datum_reply).collect()),
    }
}

/// The trigger's record: `[trigger, args...]`.
fn record_datum(args: &[RedisString]) -> Datum {
    let items = args
        .iter()
        .skip(1)
        .map(|a| Datum::text_or_bytes(a.as_slice().to_vec()))
        .collect();
    Datum::List(items)
}

fn record(args: &[RedisString]) -> Batch {
    Batch::datums(vec![record_datum(args)])
}

/// `RG.TRIGGER` / `RG.TRIGGERONKEY` (same handler).
pub fn trigger(ctx: &Context, state: &'static ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let argv: Vec<Vec<u8>> = args[1..].iter().map(|a| a.as_slice().to_vec()).collect();
    match crate::run::hooks::run(ctx, state, argv) {
        crate::run::hooks::HookRun::Reply(r) => return respond(ctx, r),
        crate::run::hooks::HookRun::Blocked => return Ok(RedisValue::NoReply),
        crate::run::hooks::HookRun::NotHooked => {}
    }
    let argv: Vec<Vec<u8>> = args[1..].iter().map(|a| a.as_slice().to_vec()).collect();
    match crate::run::linked::run(ctx, state, argv) {
        crate::run::hooks::HookRun::Reply(r) => return respond(ctx, r),
        crate::run::hooks::HookRun::Blocked => return Ok(RedisValue::NoReply),
        crate::run::hooks::HookRun::NotHooked => {}
    }
    let name = args[1].to_string_lossy();
    let reg = state
        .registrations
        .by_trigger(&name)
        .ok_or_else(|| error("ERR subcommand not found"))?;
    let source = Box::new(ReadySource::new(record(&args)));
    if reg.mode == Mode::Sync {
        reg.stats().triggered += 1;
        let may_defer = !super::cannot_block(ctx);
        if let (Some(plan), true) = (&reg.fast, may_defer) {
            return run_sync_deferring(ctx, state, &reg, plan, &record_datum(&args));
        }
        let started = Instant::now();
        let ran = Inline {
            ctx: Some(ctx),
            run_as: Some(&reg.run_as),
            section: None,
        }
        .run_or_park(&reg.plan, source, may_defer);
        let out = match ran {
            Ok(out) => out,
            Err(rest) => return Ok(reply_later(ctx, state, reg, *rest, started)),
        };
        reg.stats()
            .record(&out, started.elapsed().as_millis() as u64);
        return respond(ctx, trigger_reply(&out));
    }
    if ctx
        .get_flags()
        .intersects(CANNOT_BLOCK | ContextFlags::LOADING)
    {
        return Err(error(NOT_SYNC_IN_MULTI));
    }
    // Counted only once it runs: a refused trigger started nothing (numTriggered stays
    // numSuccess + numFailures + numAborted + in flight).
    reg.stats().triggered += 1;
    let argv: Vec<Vec<u8>> = args[1..].iter().map(|a| a.as_slice().to_vec()).collect();
    run_async(ctx, state, reg, source, argv)
}

/// A sync trigger of a record-local flow outside MULTI/Lua: `isAsyncAllow()` is True, and
/// a callback that awaits moves the rest of the run to the background (1.2's async_local);
/// the client is blocked then and gets the result when it is done (REFERENCE §12.5).
fn run_sync_deferring(
    ctx: &Context,
    state: &'static ModuleState,
    reg: &Arc<Registration>,
    plan: &EventPlan,
    row: &Datum,
) -> RedisResult {
    let started = Instant::now();
    let ran = with_lock_held(ctx, || {
        let _as = Scope::enter(reg.run_as.clone());
        plan.run_record(row)
    });
    let rest = match ran {
        Ok(out) => {
            reg.stats()
                .record(&out, started.elapsed().as_millis() as u64);
            return respond(ctx, trigger_reply(&out));
        }
        Err(rest) => rest,
    };
    // Measured like an async trigger run: the client waits for the rest of the run.
    let client = block_measured(ctx);
    let done_reg = Arc::clone(reg);
    let then = Box::new(move |out: ExecutionOutput| {
        done_reg
            .stats()
            .record(&out, started.elapsed().as_millis() as u64);
        reply_blocked(client, &trigger_reply(&out));
    });
    crate::run::inline::finish_deferred(state, *rest, reg.run_as.clone(), then);
    Ok(RedisValue::NoReply)
}

/// A sync trigger run whose step awaits (outside MULTI/Lua): the rest goes on in the
/// background and the client, blocked meanwhile, gets the result then (REFERENCE §12.5).
fn reply_later(
    ctx: &Context,
    state: &'static ModuleState,
    reg: Arc<Registration>,
    rest: engine::inline::Parked,
    started: Instant,
) -> RedisValue {
    let client = block_measured(ctx);
    let done_reg = Arc::clone(&reg);
    let on_done = Box::new(move |out: ExecutionOutput| {
        done_reg
            .stats()
            .record(&out, started.elapsed().as_millis() as u64);
        reply_blocked(client, &trigger_reply(&out));
    });
    crate::run::inline::go_on(state, rest, &reg.run_as, on_done);
    RedisValue::NoReply
}

fn run_async(
    ctx: &Context,
    state: &'static ModuleState,
    reg: Arc<Registration>,
    source: Box<ReadySource>,
    argv: Vec<Vec<u8>>,
) -> RedisResult {
    // Measured: a run slower than slowlog-log-slower-than is logged with its arguments.
    let client = block_measured(ctx);
    let run = Run {
        source,
        argv,
        client,
    };
    // This thread holds the Redis lock: a distributed run's order goes on the bus from here.
    with_lock_held(ctx, || {
        if reg.inorder {
            // `inorder`: one run at a time, in arrival order (1.2 gives it its own worker).
            reg.run_serial(Box::new(move |reg| start(state, reg, run, true)));
        } else {
            start(state, reg, run, false);
        }
    });
    Ok(RedisValue::NoReply)
}

/// One trigger run: its record, the trigger's arguments (every shard's record when the run
/// is distributed) and the blocked client.
struct Run {
    source: Box<ReadySource>,
    argv: Vec<Vec<u8>>,
    client: Blocked,
}

/// Starts one trigger execution; `serial`: start the registration's next one when done.
/// It is listed while it runs (abortable, also once its client is gone) and dropped before
/// its reply, as 1.2 drops trigger runs. A plan with a collect or repartition runs on
/// every shard (each shard's reader yields the trigger's arguments) and is collected here
/// (`run::distribute`).
fn start(state: &'static ModuleState, reg: Arc<Registration>, run: Run, serial: bool) {
    let Run {
        source,
        argv,
        client,
    } = run;
    let started = Instant::now();
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    let launched = distribute::launch(&entry.id, &reg, Some(argv)).map(Arc::new);
    let slot = Arc::new(std::sync::Mutex::new(Some(client)));
    let (done_reg, done_slot, done_entry) =
        (Arc::clone(&reg), Arc::clone(&slot), Arc::clone(&entry));
    let distributed = launched.clone();
    let complete = move |out: ExecutionOutput| {
        let out = done_entry.settle(out);
        done_reg
            .stats()
            .record(&out, started.elapsed().as_millis() as u64);
        let client = done_slot.lock().ok().and_then(|mut g| g.take());
        state.registry.remove(&done_entry.id);
        if let Some(c) = client {
            reply_blocked(c, &trigger_reply(&out));
        }
        if distributed.is_some() {
            distribute::drop_parts(&done_entry.id);
        }
        done_entry.finish(out);
        if serial {
            done_reg.next_serial();
        }
    };
    let local = launched.clone();
    let on_done = Box::new(move |out: ExecutionOutput| match local {
        Some(l) => l.local_done(out, Box::new(complete)),
        None => complete(out),
    });
    let control = ExecControl::new();
    let host = AsUser::new(ControlledRuntime(Arc::clone(&control)), reg.run_as.clone());
    let source = crate::redis::access::source(source, &reg.run_as);
    let shuffle = launched.as_ref().map(|l| &l.shuffle);
    let start =
        || crate::run::start::start_execution(state, source, &reg.plan, &host, shuffle, on_done);
    if let Err(e) = crate::run::start::start_listed(state, &entry, &slot, control, start) {
        if let Some(l) = &launched {
            l.abandon();
        }
        if let Some(c) = slot.lock().ok().and_then(|mut g| g.take()) {
            let e = Reply::Error(format!("ERR Could not trigger execution, {e}"));
            reply_blocked(c, &e);
        }
        if serial {
            reg.next_serial();
        }
    }
}
