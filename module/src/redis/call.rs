//! Calling Redis commands from any thread (`execute()`, Gearshift's own calls), as the
//! ACL user given, with errors as replies. A key another shard owns is forwarded through
//! the slot the cluster layer fills at load (`set_forwarder`). Gearshift's own replication
//! goes through `replicate_on`, which holds it while clients are paused. Depends on `redis::lock`,
//! `redis::access` and `redis::ffi`.

use std::sync::OnceLock;

use gearpy::services::CallReply as PyReply;
use redis_module::{CallReply, CallResult, Context, ThreadSafeContext};

use crate::redis::access::RunAs;
use crate::redis::lock::held_context;

/// How a call for a key this shard does not own reaches its owner (cluster mode).
#[derive(Clone, Copy)]
pub struct Forwarder {
    /// The owning shard of the call's keys when `reply` says they are not local (lock held).
    pub owner: fn(&Context, &PyReply, &[Vec<u8>]) -> Option<String>,
    /// Runs the call on `owner` as `run_as` (no lock held) and returns its reply.
    pub forward: fn(String, RunAs, &[Vec<u8>]) -> PyReply,
}

static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

/// Installs the forwarder (once, at load).
pub fn set_forwarder(f: Forwarder) {
    let _ = FORWARDER.set(f);
}

/// How deep calls may nest on one thread. A call can run user code that calls again
/// (`execute('RG.TRIGGER', …)` of a trigger that does the same, or through `EVAL`); every
/// level takes some KiB of C stack (about 10 KiB for a trigger), and the main thread has
/// only the process's (8 MiB by default): past this, the call is refused instead.
pub const MAX_NESTED_CALLS: u32 = 100;

thread_local! {
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts one call in progress on this thread for as long as it lives.
struct Nested;

impl Nested {
    fn enter() -> Option<Nested> {
        let depth = DEPTH.with(|d| d.get());
        if depth >= MAX_NESTED_CALLS {
            return None;
        }
        DEPTH.with(|d| d.set(depth + 1));
        Some(Nested)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs a Redis command as `run_as` (`crate::redis::access`) from any thread: directly when this
/// thread holds the Redis lock, else under the lock (the caller holds no GIL).
pub fn call(run_as: Option<&RunAs>, args: &[Vec<u8>]) -> PyReply {
    let Some(_nested) = Nested::enter() else {
        return PyReply::Error(format!(
            "ERR execute() calls nested too deep (more than {MAX_NESTED_CALLS} levels of \
             commands that run user code that calls again)"
        ));
    };
    if let Some(ctx) = held_context() {
        // This thread's context may be a notification's or a timer's (`access::call_as`).
        return call_on(&ctx, run_as, true, args);
    }
    // Locked on this thread's own context (`ffi::own_lock`: no context made per call).
    let guard = crate::redis::ffi::own_lock::lock();
    let reply = call_on(&guard, run_as, false, args);
    // In a cluster, a key another shard owns: run the command there (lock released first,
    // since the owner's answer arrives through this shard's main thread), as the same user.
    if let Some(fw) = FORWARDER.get() {
        if let Some(owner) = (fw.owner)(&guard, &reply, args) {
            drop(guard);
            // Code without an identity is refused on the owning shard too.
            let run_as = run_as
                .cloned()
                .unwrap_or_else(|| RunAs::user(crate::redis::access::NO_USER));
            return (fw.forward)(owner, run_as, args);
        }
    }
    reply
}

/// Gearshift's own commands (never user code's): unrestricted, and past every hook (a
/// user's hook on COMMAND must not answer the COMMAND INFO a registration asks).
pub fn call_internal(args: &[Vec<u8>]) -> PyReply {
    crate::redis::ffi::acl::own_call(|| call(Some(&RunAs::Superuser), args))
}

/// Runs a command with errors as replies (real Redis error texts) and replication.
fn call_on(ctx: &Context, run_as: Option<&RunAs>, temp: bool, args: &[Vec<u8>]) -> PyReply {
    let Some((cmd, rest)) = args.split_first() else {
        return PyReply::Error("ERR wrong number of arguments for 'execute' command".into());
    };
    // RM_Call takes the name as a C string: a NUL (or non-UTF-8) name names no command, and
    // the crate would panic on the NUL.
    let cmd = match std::str::from_utf8(cmd) {
        Ok(c) if !c.contains('\0') => c,
        _ => {
            let shown = String::from_utf8_lossy(cmd).replace('\0', "\\x00");
            return PyReply::Error(format!("ERR unknown command '{shown}'"));
        }
    };
    let rest: Vec<&[u8]> = rest.iter().map(|a| a.as_slice()).collect();
    crate::redis::access::call_as(ctx, run_as, temp, cmd, &rest, owned)
}

/// Copies a call result into owned data while the lock is still held.
fn owned(r: CallResult) -> PyReply {
    match r {
        Err(e) => PyReply::Error(e.to_string()),
        Ok(reply) => owned_reply(&reply),
    }
}

fn owned_reply(r: &CallReply) -> PyReply {
    match r {
        CallReply::Unknown => PyReply::Nil,
        CallReply::Null(_) => PyReply::Nil,
        CallReply::I64(i) => PyReply::Int(i.to_i64()),
        CallReply::Bool(b) => PyReply::Int(b.to_bool() as i64),
        CallReply::Double(d) => PyReply::Double(d.to_double()),
        CallReply::String(s) => PyReply::Bulk(s.as_bytes().to_vec()),
        CallReply::BigNumber(b) => PyReply::Bulk(b.to_string().unwrap_or_default().into_bytes()),
        CallReply::VerbatimString(v) => PyReply::Bulk(format!("{v:?}").into_bytes()),
        CallReply::Array(a) => PyReply::Array(a.iter().map(owned).collect()),
        CallReply::Set(s) => PyReply::Array(s.iter().map(owned).collect()),
        CallReply::Map(m) => {
            PyReply::Array(m.iter().flat_map(|(k, v)| [owned(k), owned(v)]).collect())
        }
    }
}

/// Sends `command args` to replicas and the AOF from a worker (on a thread-safe context
/// of its own, so it is not folded into a command's MULTI).
pub fn replicate(command: &str, args: &[&[u8]]) {
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    replicate_on(&guard, command, args);
}

/// Replication held while clients are paused, in order.
type Held = Vec<(String, Vec<Vec<u8>>)>;

fn held() -> std::sync::MutexGuard<'static, Held> {
    static HELD: std::sync::Mutex<Held> = std::sync::Mutex::new(Vec::new());
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// `ctx.replicate(command, args)` (lock held), except while clients are paused
/// (`CLIENT PAUSE`, a failover): Redis 7.0 asserts that nothing propagates then, so the
/// command is held and sent, after what was held before it, by [`flush_held`] once the
/// pause ends.
pub fn replicate_on(ctx: &Context, command: &str, args: &[&[u8]]) {
    if crate::redis::ffi::call::writes_paused() {
        let owned = args.iter().map(|a| a.to_vec()).collect();
        held().push((command.to_owned(), owned));
        return;
    }
    flush_held(ctx);
    ctx.replicate(command, args);
}

/// Sends the replication held during a pause, once it ended (lock held; the limits
/// refresh calls it every tenth of a second).
pub fn flush_held(ctx: &Context) {
    let mut held = held();
    if held.is_empty() || crate::redis::ffi::call::writes_paused() {
        return;
    }
    for (command, args) in held.drain(..) {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        ctx.replicate(&command, &args[..]);
    }
}
