//! Taking the Redis lock from a worker thread on a thread-safe context the thread keeps.
//!
//! `redis_module`'s `ThreadSafeContext::lock` creates a second context per lock (and frees
//! it on unlock), and each context comes with a Redis client of its own: creating and
//! freeing two clients cost more than a short command takes to run (`execute('INCR', …)`
//! from an event's callback, issue #13). Here each thread makes one context, the first
//! time it takes the lock, and locks on it from then on. A command leaves the context as
//! it found it: `RM_Call` runs each command on a temporary client, and an ACL user set
//! for a call is detached after it (`acl::ContextUser`).

use std::ops::Deref;

use redis_module::{raw, Context};

/// A thread's own thread-safe context (freed when the thread ends).
struct OwnContext(*mut raw::RedisModuleCtx);

impl OwnContext {
    fn new() -> OwnContext {
        // SAFETY: no preconditions (a context detached from any client).
        OwnContext(unsafe {
            raw::RedisModule_GetThreadSafeContext.expect("api")(std::ptr::null_mut())
        })
    }
}

impl Drop for OwnContext {
    fn drop(&mut self) {
        // SAFETY: made by GetThreadSafeContext, freed once; its lock is not held (an
        // `OwnLock` borrows the thread, which is ending).
        unsafe { raw::RedisModule_FreeThreadSafeContext.expect("api")(self.0) }
    }
}

thread_local! {
    static OWN: OwnContext = OwnContext::new();
}

/// The Redis lock, held on this thread's own context until dropped.
pub struct OwnLock {
    ctx: Context,
    /// A context made for this lock alone (the thread's own is gone: thread exit); freed
    /// after the unlock.
    _temporary: Option<OwnContext>,
}

/// Takes the Redis lock on this thread's own context (the caller must not hold it, nor
/// the GIL).
pub fn lock() -> OwnLock {
    let (ptr, temporary) = match OWN.try_with(|c| c.0) {
        Ok(p) => (p, None),
        Err(_) => {
            let c = OwnContext::new();
            (c.0, Some(c))
        }
    };
    // SAFETY: `ptr` is a live thread-safe context; the lock is released by `OwnLock`.
    unsafe { raw::RedisModule_ThreadSafeContextLock.expect("api")(ptr) };
    OwnLock {
        ctx: Context::new(ptr),
        _temporary: temporary,
    }
}

impl Deref for OwnLock {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl Drop for OwnLock {
    fn drop(&mut self) {
        // SAFETY: the lock was taken on this context by `lock` and is released once.
        unsafe { raw::RedisModule_ThreadSafeContextUnlock.expect("api")(self.ctx.ctx) }
    }
}
