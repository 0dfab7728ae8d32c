//! Command hooks (REFERENCE §2.3): a CommandReader registered with `hook=<command>` runs
//! instead of the command. A command filter rewrites `hset …` into `RG.TRIGGER hset …`
//! (as 1.2 does, so slowlog/monitor show RG.TRIGGER); the hook's single output record is
//! the reply, and `call_next(*args)` runs the next (older) hook or the real command.
//! Commands the module itself calls are not filtered (NOSELF), and replicated or loaded
//! traffic runs unhooked.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use engine::batch::Batch;
use engine::exec::ExecutionOutput;
use engine::Datum;
use gearpy::services::CallReply;
use redis_module::{Context, ContextFlags};

use crate::model::registrations::{Mode, Registration};
use crate::model::reply::{datum_reply, from_call_reply, to_call_reply};
use crate::model::state::ModuleState;
use crate::redis::access::RunAs;
use crate::redis::ffi::replies::{block, reply_blocked, Reply};
use crate::redis::lock::with_lock_held;
use crate::run::inline::Inline;
use crate::run::readers::ready::ReadySource;

/// One running hook: the command's argv, the hooks that apply, which one runs, and the
/// client who sent the command.
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
    let items = frame
        .argv
        .iter()
        .map(|a| Datum::text_or_bytes(a.clone()))
        .collect();
    let source = Box::new(ReadySource::new(Batch::datums(vec![Datum::List(items)])));
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
        None => crate::redis::call::call(Some(&client), &argv),
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
pub fn run(ctx: &Context, state: &ModuleState, argv: Vec<Vec<u8>>) -> HookRun {
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let hooks = state.registrations.hooks_of(&name);
    if hooks.is_empty() {
        return HookRun::NotHooked;
    }
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
    let blocking_ok =
        !flags.intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING);
    if frame.hooks[idx].mode == Mode::Sync || !blocking_ok {
        return HookRun::Reply(run_frame(frame, Some(ctx)));
    }
    // Async hooks: the client waits; Redis does not.
    let client = block(ctx);
    state.pool.spawn_fn(move || {
        let r = run_frame(frame, None);
        reply_blocked(client, &r);
    });
    HookRun::Blocked
}

/// COMMAND INFO of `command`: (flags, key positions), `None` for an unknown command.
/// Works from any thread (through `host::call`).
fn command_info(command: &str) -> Option<(Vec<String>, (i64, i64, i64))> {
    let reply = crate::redis::call::call_internal(&[
        b"COMMAND".to_vec(),
        b"INFO".to_vec(),
        command.as_bytes().to_vec(),
    ]);
    let CallReply::Array(outer) = reply else {
        return None;
    };
    let Some(CallReply::Array(info)) = outer.into_iter().next() else {
        return None;
    };
    let flags = match info.get(2) {
        Some(CallReply::Array(f)) => f
            .iter()
            .filter_map(|x| match x {
                CallReply::Status(s) => Some(s.clone()),
                CallReply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let int = |i: usize| match info.get(i) {
        Some(CallReply::Int(v)) => *v,
        _ => 0,
    };
    Some((flags, (int(3), int(4), int(5))))
}

/// Records the hooked command's key positions on a new hook registration (for keyprefix).
pub fn resolve(reg: &Registration) {
    if let Some((_, spec)) = reg.hook.as_deref().and_then(command_info) {
        *reg.key_spec.lock().unwrap_or_else(|e| e.into_inner()) = spec;
    }
}

/// Checks a script's hooks before they are installed (1.2's texts). `replaced`: the
/// session an UPGRADE replaces.
pub fn check(
    state: &ModuleState,
    hooks: &[(String, Option<String>)],
    replaced: Option<&str>,
) -> Result<(), String> {
    for (cmd, keyprefix) in hooks {
        let (flags, _) = command_info(cmd).ok_or("Can not override an unexisting command")?;
        if flags.iter().any(|f| f == "noscript") {
            return Err("Can not override a command which are not allowed inside a script".into());
        }
        if keyprefix.is_some() && flags.iter().any(|f| f == "movablekeys") {
            return Err("Can not override a command with moveable keys by key prefix".into());
        }
        let newest = state
            .registrations
            .hooks_of(cmd)
            .into_iter()
            .find(|h| Some(h.session.as_str()) != replaced);
        if newest.is_some_and(|h| h.mode != Mode::Sync) {
            return Err("Can not override a none sync registration".into());
        }
    }
    Ok(())
}
