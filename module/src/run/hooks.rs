//! Command hooks (REFERENCE §2.3): a CommandReader registered with `hook=<command>` runs
//! instead of the command. A command filter rewrites `hset …` into `RG.TRIGGER hset …`
//! (as 1.2 does, so slowlog/monitor show RG.TRIGGER); the hook's single output record is
//! the reply, and `call_next(*args)` runs the next (older) hook or the real command.
//! `call_next` never reaches the hooks again; a flow's `execute()` from the background does
//! (see `redis::ffi::filter`), where a non-sync hook fails as in MULTI/Lua. Replicated or
//! loaded traffic runs unhooked. Registration checks are `run::hook_checks`.
//!
//! A non-sync hook whose plan crosses shards (`run::distribute`) runs as 1.2 runs it in a
//! cluster: a distributed execution started on every shard (each shard's reader yields the
//! hooked command) and collected here, where its one record is the reply; `call_next`
//! works in the steps that run here (elsewhere there is no command to call). Listed while it
//! runs and dropped on every shard once it replied, as a trigger run is.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine::batch::Batch;
use engine::exec::ExecutionOutput;
use engine::scoped::{CallScope, Scoped};
use engine::Datum;
use gearpy::services::CallReply;
use gearpy::{ControlledRuntime, EventPlan, ExecControl};
use redis_module::{Context, ContextFlags};

use crate::model::executions::Entry;
use crate::model::registrations::{Mode, Registration};
use crate::model::reply::{datum_reply, from_call_reply, to_call_reply};
use crate::model::state::ModuleState;
use crate::redis::access::{AsUser, RunAs, Scope};
use crate::redis::ffi::replies::{block, reply_blocked, Reply};
use crate::redis::lock::with_lock_held;
use crate::run::distribute;
use crate::run::inline::Inline;
use crate::run::readers::ready::ReadySource;

/// 1.2's error for a non-sync hook or trigger reached by a client that cannot block.
pub const NOT_SYNC_IN_MULTI: &str =
    "ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.";

/// One running hook: the command's argv, the hooks that apply, which one runs, and the
/// client who sent the command.
#[derive(Clone)]
struct Frame {
    argv: Vec<Vec<u8>>,
    hooks: Vec<Arc<Registration>>,
    idx: usize,
    /// The real command (`call_next` past the last hook) runs as this client's user: the
    /// command filter turned it into RG.TRIGGER before Redis checked its ACL, so this is
    /// where the client's permissions on it are enforced. The hook's own code runs as the
    /// registration's user.
    client: RunAs,
}

thread_local! {
    /// Hooks running on this thread (call_next nests them).
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Whether `reg` fires for `argv` (`[command, args...]`): any key argument starting with
/// its `keyprefix`, or always without one.
fn fires_for(reg: &Registration, argv: &[Vec<u8>]) -> bool {
    let Some(prefix) = &reg.keyprefix else {
        return true;
    };
    let (first, last, step) = *reg.key_spec.lock().unwrap_or_else(|e| e.into_inner());
    if first <= 0 || step <= 0 {
        return false;
    }
    let n = argv.len() as i64;
    let last = if last < 0 { n + last } else { last.min(n - 1) };
    (first..=last)
        .step_by(step as usize)
        .any(|i| argv[i as usize].starts_with(prefix.as_bytes()))
}

/// The reply of a hook run: its first error, else its one record.
fn hook_reply(out: &ExecutionOutput) -> Reply {
    if let Some(e) = out.errors.first() {
        return Reply::Error(e.clone());
    }
    match out.results.as_slice() {
        [one] => datum_reply(one),
        _ => Reply::Error("Command hook must return exactly one result".into()),
    }
}

/// Runs hook `frame.idx` on `frame.argv` (on this thread; `ctx` when it holds the lock).
fn run_frame(frame: Frame, ctx: Option<&Context>) -> Reply {
    let reg = Arc::clone(&frame.hooks[frame.idx]);
    let source = Box::new(record_of(&frame.argv));
    reg.stats().triggered += 1;
    let started = Instant::now();
    FRAMES.with(|f| f.borrow_mut().push(frame));
    let out = Inline {
        ctx,
        run_as: Some(&reg.run_as),
        section: None,
    }
    .run(&reg.plan, source);
    FRAMES.with(|f| f.borrow_mut().pop());
    reg.stats()
        .record(&out, started.elapsed().as_millis() as u64);
    hook_reply(&out)
}

/// The hook's reader: the one record `[command, args...]`.
fn record_of(argv: &[Vec<u8>]) -> ReadySource {
    let items = argv
        .iter()
        .map(|a| Datum::text_or_bytes(a.clone()))
        .collect();
    ReadySource::new(Batch::datums(vec![Datum::List(items)]))
}

/// A sync hook of a record-local flow outside MULTI/Lua (REFERENCE §12.5): run inline,
/// but a callback that awaits moves the rest of the run to a worker once the await is over;
/// the client is blocked meanwhile and gets the hook's reply then.
fn run_frame_deferring(
    state: &'static ModuleState,
    frame: Frame,
    ctx: &Context,
    plan: &EventPlan,
) -> HookRun {
    let reg = Arc::clone(&frame.hooks[frame.idx]);
    let items = frame
        .argv
        .iter()
        .map(|a| Datum::text_or_bytes(a.clone()))
        .collect();
    reg.stats().triggered += 1;
    let started = Instant::now();
    FRAMES.with(|f| f.borrow_mut().push(frame));
    let ran = with_lock_held(ctx, || {
        let _as = Scope::enter(reg.run_as.clone());
        plan.run_record(&Datum::List(items))
    });
    let frame = FRAMES.with(|f| f.borrow_mut().pop());
    let rest = match (ran, frame) {
        (Ok(out), _) => {
            reg.stats()
                .record(&out, started.elapsed().as_millis() as u64);
            return HookRun::Reply(hook_reply(&out));
        }
        (Err(rest), Some(frame)) => (rest, frame),
        (Err(_), None) => return HookRun::Reply(Reply::Error("ERR hook frame lost".into())),
    };
    let client = block(ctx);
    let (rest, frame) = rest;
    finish_rest(state, *rest, frame, reg, (client, started));
    HookRun::Blocked
}

/// Finishes a sync hook's deferred rest on the worker pool, inside its frame, once its
/// await is over; a later await hands it back and it goes on once that one is over too, so
/// no worker waits. The blocked client then gets the hook's reply.
fn finish_rest(
    state: &'static ModuleState,
    rest: gearpy::Deferred,
    frame: Frame,
    reg: Arc<Registration>,
    (client, started): (crate::redis::ffi::replies::Blocked, Instant),
) {
    rest.when_ready(move |rest| {
        state.pool.spawn_fn(move || {
            FRAMES.with(|f| f.borrow_mut().push(frame));
            let ran = {
                let _as = Scope::enter(reg.run_as.clone());
                rest.finish_or_defer()
            };
            let frame = FRAMES.with(|f| f.borrow_mut().pop());
            match (ran, frame) {
                (Ok(out), _) => {
                    reg.stats()
                        .record(&out, started.elapsed().as_millis() as u64);
                    reply_blocked(client, &hook_reply(&out));
                }
                (Err(again), Some(frame)) => {
                    finish_rest(state, *again, frame, reg, (client, started))
                }
                (Err(_), None) => {
                    reply_blocked(client, &Reply::Error("ERR hook frame lost".into()))
                }
            }
        })
    });
}

/// The argv of the innermost running hook (`get_command()`).
pub fn current_argv() -> Option<Vec<Vec<u8>>> {
    FRAMES.with(|f| f.borrow().last().map(|fr| fr.argv.clone()))
}

/// `call_next(*args)`: the next hook that fires, else the real command. `None` outside a
/// hook. Called with the GIL released.
pub fn call_next(args: &[Vec<u8>]) -> Option<CallReply> {
    let (cmd, hooks, idx, client) = FRAMES.with(|f| {
        f.borrow().last().map(|fr| {
            (
                fr.argv[0].clone(),
                fr.hooks.clone(),
                fr.idx,
                fr.client.clone(),
            )
        })
    })?;
    let mut argv = vec![cmd];
    argv.extend_from_slice(args);
    let next = (idx + 1..hooks.len()).find(|&i| fires_for(&hooks[i], &argv));
    Some(match next {
        Some(i) => to_call_reply(run_frame(
            Frame {
                argv,
                hooks,
                idx: i,
                client,
            },
            None,
        )),
        // The real command: the command filter must not send it through the hooks again
        // (it would, when called from a background thread).
        None => {
            crate::redis::ffi::filter::unhooked(|| crate::redis::call::call(Some(&client), &argv))
        }
    })
}

/// What RG.TRIGGER does for a command name.
pub enum HookRun {
    /// No hook of that command: RG.TRIGGER looks for a trigger instead.
    NotHooked,
    Reply(Reply),
    /// The client is blocked and gets its reply when the async hook ends.
    Blocked,
}

/// RG.TRIGGER for a hooked command: `argv` is `[command, args...]`.
pub fn run(ctx: &Context, state: &'static ModuleState, argv: Vec<Vec<u8>>) -> HookRun {
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let mut hooks = state.registrations.hooks_of(&name);
    if hooks.is_empty() {
        return HookRun::NotHooked;
    }
    // A hook sees (and may change) the call: it fires only for calls its registration's
    // user could make itself, or a user limited to some keys would read others' writes.
    let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    hooks.retain(|h| crate::redis::access::may_run(&h.run_as, &args));
    let flags = ctx.get_flags();
    let first = hooks.iter().position(|h| fires_for(h, &argv));
    let replicated = flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING);
    let client = crate::redis::access::of_client(ctx);
    let (Some(idx), false) = (first, replicated) else {
        // Replicated/AOF traffic, or no hook fires: the real command runs, unhooked, as
        // the client (this thread holds the lock: call on this context).
        return HookRun::Reply(from_call_reply(with_lock_held(ctx, || {
            crate::redis::call::call(Some(&client), &argv)
        })));
    };
    let frame = Frame {
        argv,
        hooks,
        idx,
        client,
    };
    let blocking_ok = !flags.intersects(crate::redis::ffi::replies::CANNOT_BLOCK);
    let reg = Arc::clone(&frame.hooks[idx]);
    if let (Mode::Sync, true, Some(plan)) = (reg.mode, blocking_ok, &reg.fast) {
        return run_frame_deferring(state, frame, ctx, plan);
    }
    if reg.mode == Mode::Sync {
        return HookRun::Reply(run_frame(frame, Some(ctx)));
    }
    // A non-sync hook needs a client that can block: not inside MULTI or Lua, nor a call
    // made by a module (a background execution's `execute()`).
    if !blocking_ok {
        return HookRun::Reply(Reply::Error(NOT_SYNC_IN_MULTI.into()));
    }
    let frame = match run_distributed(state, ctx, frame) {
        Ok(blocked) => return blocked,
        Err(frame) => frame,
    };
    // Async hooks: the client waits; Redis does not.
    let client = block(ctx);
    state.pool.spawn_fn(move || {
        let r = run_frame(frame, None);
        reply_blocked(client, &r);
    });
    HookRun::Blocked
}

/// A non-sync hook whose plan crosses shards: started here and on every other shard, the
/// client blocked until every part ended (`Err` gives the frame back when the run is not
/// distributed: outside a cluster, or a plan that stays on this shard).
fn run_distributed(
    state: &'static ModuleState,
    ctx: &Context,
    frame: Frame,
) -> Result<HookRun, Frame> {
    let reg = Arc::clone(&frame.hooks[frame.idx]);
    if !distribute::crosses_shards(&reg) {
        return Err(frame);
    }
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    // This thread holds the Redis lock: the order goes on the bus from here.
    let argv = frame.argv.clone();
    let Some(launched) = with_lock_held(ctx, || distribute::launch(&entry.id, &reg, Some(argv)))
    else {
        return Err(frame);
    };
    let launched = Arc::new(launched);
    reg.stats().triggered += 1;
    let started = Instant::now();
    let slot = Arc::new(Mutex::new(Some(block(ctx))));
    let (done_reg, done_slot, done_entry) =
        (Arc::clone(&reg), Arc::clone(&slot), Arc::clone(&entry));
    let complete = move |out: ExecutionOutput| {
        let out = done_entry.settle(out);
        done_reg
            .stats()
            .record(&out, started.elapsed().as_millis() as u64);
        state.registry.remove(&done_entry.id);
        if let Some(c) = done_slot.lock().ok().and_then(|mut g| g.take()) {
            reply_blocked(c, &hook_reply(&out));
        }
        distribute::drop_parts(&done_entry.id);
        done_entry.finish(out);
    };
    let local = Arc::clone(&launched);
    let on_done = Box::new(move |out: ExecutionOutput| local.local_done(out, Box::new(complete)));
    let control = ExecControl::new();
    let host = Scoped::<Frame, _>::new(
        AsUser::new(ControlledRuntime(Arc::clone(&control)), reg.run_as.clone()),
        frame.clone(),
    );
    let source = crate::redis::access::source(Box::new(record_of(&frame.argv)), &reg.run_as);
    let shuffle = Some(&launched.shuffle);
    let start =
        || crate::run::start::start_execution(state, source, &reg.plan, &host, shuffle, on_done);
    if let Err(e) = crate::run::start::start_listed(state, &entry, &slot, control, start) {
        launched.abandon();
        if let Some(c) = slot.lock().ok().and_then(|mut g| g.take()) {
            let e = Reply::Error(format!("ERR Could not trigger execution, {e}"));
            reply_blocked(c, &e);
        }
    }
    Ok(HookRun::Blocked)
}

/// A hook run's operators run with its frame pushed (whatever worker runs them), so that
/// `call_next` and `get_command()` reach the hooked command: the frame is the scope of an
/// `engine::scoped::Scoped`.
impl CallScope for Frame {
    type Guard = FramePushed;

    fn enter(&self) -> FramePushed {
        FRAMES.with(|fr| fr.borrow_mut().push(self.clone()));
        FramePushed
    }
}

/// While alive, a frame is the innermost running hook of this thread.
struct FramePushed;

impl Drop for FramePushed {
    fn drop(&mut self) {
        FRAMES.with(|fr| fr.borrow_mut().pop());
    }
}
