//! Who holds the Redis lock on this thread: the main thread (marked at load), sync runs
//! and callbacks from Redis (`with_lock_held`), and `atomic()` blocks on workers
//! (`lock_for_atomic`/`unlock_atomic`). Everything that must run under the lock from any
//! thread goes through `with_redis`. Depends on `redis::ffi` and the Python layer's busy
//! sections only.

use std::cell::Cell;

use redis_module::{raw, Context, ContextGuard, DetachedFromClient, ThreadSafeContext};

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

/// An `atomic()` block on a worker takes the Redis lock; false when this thread already
/// holds it (main thread or a sync run).
pub fn lock_for_atomic() -> bool {
    if lock_held() {
        return false;
    }
    let tsc = ThreadSafeContext::new();
    let guard = tsc.lock();
    LOCKED_CTX.with(|c| c.set(guard.ctx));
    ATOMIC_HOLD.with(|h| *h.borrow_mut() = Some((guard, tsc)));
    true
}

/// Ends the `atomic()` block `lock_for_atomic` opened on this thread, if any.
pub fn unlock_atomic() {
    // Drop order: the guard (unlock) first, then its thread-safe context.
    if let Some((guard, tsc)) = ATOMIC_HOLD.with(|h| h.borrow_mut().take()) {
        LOCKED_CTX.with(|c| c.set(std::ptr::null_mut()));
        drop(guard);
        drop(tsc);
    }
}

/// On the main thread inside a busy section: lets clients in (`-BUSY` replies). False when
/// Redis cannot serve them from here (a script or MULTI/EXEC runs).
pub fn yield_to_clients() -> bool {
    let held = LOCKED_CTX.with(|c| c.get());
    if !held.is_null() && MAIN_THREAD.with(|m| m.get()) {
        return crate::redis::ffi::busy::yield_to_clients(&Context::new(held));
    }
    true
}

/// The context of the lock this thread holds, if any.
pub(crate) fn held_context() -> Option<Context> {
    let held = LOCKED_CTX.with(|c| c.get());
    (!held.is_null()).then(|| Context::new(held))
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
