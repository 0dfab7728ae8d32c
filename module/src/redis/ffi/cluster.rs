//! The Redis Cluster bus: sending module messages to other shards and receiving them.
//!
//! `RM_SendClusterMessage` needs a context that names this module, so init keeps one
//! detached thread-safe context for sends; the Redis lock must be held while sending (the
//! caller's, or one taken here). Received messages arrive on the main thread and go to
//! the handler given at install (the cluster layer's dispatch), behind the panic trampoline.

use engine::sync::{AtomicPtr, Ordering};
use std::ffi::CString;
use std::sync::OnceLock;

use redis_module::{raw, Context, ThreadSafeContext};

/// Our message type on the bus. The module name "rg" gives module id 0, shared with other
/// modules whose names are not 9 characters, so payloads also start with a magic.
const MSG_TYPE: u8 = 71;

static MODULE_CTX: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(std::ptr::null_mut());

/// What a received message goes to (main thread, Redis lock held): sender id, payload
/// (the one copy of the bus's buffer, owned so a shuffle bundle can be kept without
/// another).
pub type Handler = fn(&Context, &str, Vec<u8>);

static HANDLER: OnceLock<Handler> = OnceLock::new();

/// Registers the receiver, which hands every message to `handler`, and keeps a context
/// for sends. Call once, from module init.
pub fn install(ctx: &Context, handler: Handler) -> Result<(), String> {
    let _ = HANDLER.set(handler);
    // SAFETY: called from the module's OnLoad with its valid context; both functions are
    // part of the module API Redis 7 exports, checked for presence before the call.
    unsafe {
        let (Some(detach), Some(register)) = (
            raw::RedisModule_GetDetachedThreadSafeContext,
            raw::RedisModule_RegisterClusterMessageReceiver,
        ) else {
            return Err("this Redis has no cluster message API".into());
        };
        let detached = detach(ctx.ctx);
        MODULE_CTX.store(detached, Ordering::Release);
        register(ctx.ctx, MSG_TYPE, Some(receive));
    }
    Ok(())
}

/// Sends `payload` to the node `target` (its 40-character id), or to every other node
/// (`None`). Takes the Redis lock unless this thread holds it. False: not sent.
pub fn send(target: Option<&str>, payload: &[u8]) -> bool {
    if crate::redis::lock::lock_held() {
        return send_locked(target, payload);
    }
    let tsc = ThreadSafeContext::new();
    let _guard = tsc.lock();
    send_locked(target, payload)
}

fn send_locked(target: Option<&str>, payload: &[u8]) -> bool {
    let ctx = MODULE_CTX.load(Ordering::Acquire);
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    // Redis looks the target up with strlen: it must be NUL-terminated.
    let target = match target.map(CString::new) {
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return false,
        None => None,
    };
    let Some(send) = unsafe_send_fn() else {
        return false;
    };
    if ctx.is_null() {
        return false;
    }
    let target_ptr = target.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
    // SAFETY: `ctx` is the detached module context made in `install` (never freed); the
    // Redis lock is held by this thread (checked or taken by `send`); `target_ptr` is NULL
    // or a NUL-terminated string and `payload` is valid for `len` bytes, both outliving
    // the call (Redis copies them into the bus buffer).
    let rc = unsafe { send(ctx, target_ptr, MSG_TYPE, payload.as_ptr().cast(), len) };
    rc == raw::REDISMODULE_OK as i32
}

type SendFn = unsafe extern "C" fn(
    *mut raw::RedisModuleCtx,
    *const std::os::raw::c_char,
    u8,
    *const std::os::raw::c_char,
    u32,
) -> i32;

fn unsafe_send_fn() -> Option<SendFn> {
    // SAFETY: reading the API function pointer Redis filled in at module load.
    unsafe { raw::RedisModule_SendClusterMessage }
}

/// The bus receiver: copies the sender id and payload, then dispatches (main thread).
extern "C" fn receive(
    ctx: *mut raw::RedisModuleCtx,
    sender: *const std::os::raw::c_char,
    _ty: u8,
    payload: *const std::os::raw::c_uchar,
    len: u32,
) {
    if sender.is_null() || (payload.is_null() && len > 0) {
        return;
    }
    // SAFETY: Redis passes a 40-byte node id (not NUL-terminated) and `len` payload bytes,
    // valid for the duration of this callback; both are copied before it returns.
    let (sender, payload) = unsafe {
        let id = std::slice::from_raw_parts(sender.cast::<u8>(), 40);
        let body = if len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(payload, len as usize)
        };
        (String::from_utf8_lossy(id).into_owned(), body.to_vec())
    };
    let ctx = Context::new(ctx);
    let Some(handler) = HANDLER.get() else { return };
    super::trampoline::callback("a cluster message handler", (), || {
        crate::redis::lock::with_lock_held(&ctx, || handler(&ctx, &sender, payload))
    });
}
