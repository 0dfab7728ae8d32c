//! `HostServices` for the Python layer: Redis commands, logging and config, honouring the
//! lock rule (DESIGN.md §5): the Python layer releases the GIL before calling in here, and
//! we take the Redis lock only if this thread does not already hold it.

use std::cell::Cell;
use std::sync::Arc;

use gearpy::host::{CallReply as PyReply, HostServices};
use redis_module::{
    raw, CallReply, CallResult, Context, ContextGuard, DetachedFromClient, ThreadSafeContext,
};

use crate::redis::access::RunAs;
use crate::redis::config::Config;

thread_local! {
    /// The context of the Redis lock this thread holds (main thread, sync runs), if any.
    static LOCKED_CTX: Cell<*mut raw::RedisModuleCtx> = const { Cell::new(std::ptr::null_mut()) };
}

thread_local! {
    /// Redis's main thread (marked at load): Python it runs with the lock held is watched
    /// for running long (`gearpy::busy`).
    static MAIN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as Redis's main thread (module load).
pub fn mark_main_thread() {
    MAIN_THREAD.with(|m| m.set(true));
}

thread_local! {
    /// A saved session is being rebuilt on this thread: its registrations keep their
    /// saved ids, so `register()` reserves none.
    static REBUILDING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a saved session's script) with no registration ids reserved.
pub fn rebuilding<R>(f: impl FnOnce() -> R) -> R {
    let prev = REBUILDING.with(|r| r.replace(true));
    let out = f();
    REBUILDING.with(|r| r.set(prev));
    out
}

thread_local! {
    /// The lock an `atomic()` block holds on this thread.
    static ATOMIC_HOLD: std::cell::RefCell<Option<(ContextGuard, ThreadSafeContext<DetachedFromClient>)>> =
        const { std::cell::RefCell::new(None) };
}

/// After a worker task: an `atomic()` block its user code entered and never left gives
/// the Redis lock back (else the server would wait for it forever).
pub fn release_leaked_lock() {
    if gearpy::release_leaked_atomic() {
        crate::redis::ffi::log::warning(
            "Gearshift: user code left an atomic() block open; the Redis lock was released",
        );
    }
}

/// Marks that this thread holds the Redis lock through `ctx` while `f` runs. On the main
/// thread it is a busy section: Python running long there lets clients in (`-BUSY`) and
/// can be killed.
pub fn with_lock_held<R>(ctx: &Context, f: impl FnOnce() -> R) -> R {
    let prev = LOCKED_CTX.with(|c| c.replace(ctx.ctx));
    let section = MAIN_THREAD.with(|m| m.get()).then(gearpy::busy::enter);
    let r = f();
    if section.as_ref().is_some_and(|s| s.is_outer()) {
        // The main thread holds the lock anyway; an unclosed atomic() only leaves its flag.
        gearpy::release_leaked_atomic();
    }
    drop(section);
    LOCKED_CTX.with(|c| c.set(prev));
    r
}

/// Whether this thread holds the Redis lock (main thread, sync runs, atomic blocks).
pub fn lock_held() -> bool {
    !LOCKED_CTX.with(|c| c.get()).is_null()
}

#[derive(Debug)]
pub struct RedisHost {
    config: Arc<Config>,
}

impl RedisHost {
    pub fn new(config: Arc<Config>) -> Self {
        RedisHost { config }
    }
}

impl HostServices for RedisHost {
    fn call(&self, caller: Option<&RunAs>, args: &[Vec<u8>]) -> PyReply {
        call(caller, args)
    }

    fn call_next(&self, args: &[Vec<u8>]) -> Option<PyReply> {
        crate::run::hooks::call_next(args)
    }

    fn hooked_command(&self) -> Option<Vec<Vec<u8>>> {
        crate::run::hooks::current_argv()
    }

    fn log(&self, level: &str, msg: &str) {
        use crate::redis::ffi::log::Level;
        let level = match level {
            "debug" => Level::Debug,
            "verbose" => Level::Verbose,
            "warning" => Level::Warning,
            _ => Level::Notice,
        };
        crate::redis::ffi::log::log(level, msg);
    }

    fn config_get(&self, key: &str) -> Option<String> {
        self.config.extra(key)
    }

    fn attempt_traceback(&self) -> bool {
        self.config.int("PythonAttemptTraceback") != 0
    }

    fn lock_redis(&self) -> bool {
        if !LOCKED_CTX.with(|c| c.get()).is_null() {
            return false; // main thread or a sync run: the lock is already ours
        }
        let tsc = ThreadSafeContext::new();
        let guard = tsc.lock();
        LOCKED_CTX.with(|c| c.set(guard.ctx));
        ATOMIC_HOLD.with(|h| *h.borrow_mut() = Some((guard, tsc)));
        true
    }

    fn reserve_registration_id(&self) -> Option<String> {
        if REBUILDING.with(|r| r.get()) {
            return None;
        }
        crate::model::state::get().map(|s| s.registrations.next_id())
    }

    fn yield_to_clients(&self) {
        let held = LOCKED_CTX.with(|c| c.get());
        if !held.is_null() && MAIN_THREAD.with(|m| m.get()) {
            crate::redis::ffi::busy::yield_to_clients(&Context::new(held));
        }
    }

    fn holds_redis_lock(&self) -> bool {
        !LOCKED_CTX.with(|c| c.get()).is_null()
    }

    fn execution_memory_limit(&self) -> i64 {
        self.config.int("ExecutionMemoryLimit")
    }

    fn profile_executions(&self) -> bool {
        self.config.int("ProfileExecutions") != 0
    }

    fn start_timer(&self, period: std::time::Duration, tick: Box<dyn FnMut() -> bool + Send>) {
        crate::redis::timers::start(period, tick);
    }

    fn create_time_event(
        &self,
        key: &[u8],
        period: std::time::Duration,
        pickled: Vec<u8>,
        run_as: Option<RunAs>,
        tick: Box<dyn FnMut() -> bool + Send>,
    ) -> Result<bool, String> {
        crate::run::time_events::create(key, period, pickled, run_as, tick)
    }

    fn unlock_redis(&self) {
        // Drop order: the guard (unlock) first, then its thread-safe context.
        if let Some((guard, tsc)) = ATOMIC_HOLD.with(|h| h.borrow_mut().take()) {
            LOCKED_CTX.with(|c| c.set(std::ptr::null_mut()));
            drop(guard);
            drop(tsc);
        }
    }
}

/// Runs `f` with the Redis lock from any thread: on this thread's context when it holds
/// the lock, else under the lock (the caller must not hold the GIL).
pub fn with_redis<R>(f: impl FnOnce(&Context) -> R) -> R {
    let held = LOCKED_CTX.with(|c| c.get());
    if !held.is_null() {
        return f(&Context::new(held));
    }
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    f(&guard)
}

/// Runs a Redis command as `run_as` (`crate::redis::access`) from any thread: directly when this
/// thread holds the Redis lock, else under the lock (the caller holds no GIL).
pub fn call(run_as: Option<&RunAs>, args: &[Vec<u8>]) -> PyReply {
    let held = LOCKED_CTX.with(|c| c.get());
    if !held.is_null() {
        // This thread's context may be a notification's or a timer's (`acl::call_as`).
        return call_on(&Context::new(held), run_as, true, args);
    }
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    let reply = call_on(&guard, run_as, false, args);
    // In a cluster, a key another shard owns: run the command there (lock released first,
    // since the owner's answer arrives through this shard's main thread), as the same user.
    if crate::cluster::forward::is_non_local(&reply) {
        if let Some(owner) = crate::cluster::forward::owner(&guard, args) {
            drop(guard);
            // Code without an identity is refused on the owning shard too.
            let run_as = run_as
                .cloned()
                .unwrap_or_else(|| RunAs::user(crate::redis::access::NO_USER));
            return crate::cluster::forward::forward(
                owner,
                run_as,
                args,
                crate::model::topology::wait_bound(),
            );
        }
    }
    reply
}

/// Gearshift's own commands (never user code's): unrestricted.
pub fn call_internal(args: &[Vec<u8>]) -> PyReply {
    call(Some(&RunAs::Superuser), args)
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
