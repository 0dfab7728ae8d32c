//! Writing RESP replies with the raw reply API, so arrays can hold error elements with
//! any text (1.2 replies `'-1'` as an error element) — `RedisValue` cannot. Also blocked
//! clients: blocking, replying from any thread, and acting when one disconnects first.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::Mutex;

use redis_module::{raw, Context, ContextFlags};

/// A reply to send; defined with its bus codec in the engine (`engine::wire::reply`).
pub use engine::wire::Reply;

/// A bulk-string reply of `s`.
pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// Something that writes itself as one reply: a [`Reply`], or a view that writes straight
/// from the data it borrows (no reply tree; see `model::reply::ExecutionReply`).
pub trait WriteReply {
    fn write_to(&self, ctx: &Context);
}

impl WriteReply for Reply {
    fn write_to(&self, ctx: &Context) {
        write(ctx, self);
    }
}

/// Starts an array reply of `len` elements; the next `len` replies written are its items.
pub fn write_array_len(ctx: &Context, len: usize) {
    // SAFETY: as in `write`.
    unsafe { raw::RedisModule_ReplyWithArray.expect("reply api")(ctx.ctx, len as _) };
}

/// Writes a bulk string of `b`.
pub fn write_bulk(ctx: &Context, b: &[u8]) {
    // SAFETY: as in `write`; Redis copies `b` before returning.
    unsafe {
        raw::RedisModule_ReplyWithStringBuffer.expect("reply api")(
            ctx.ctx,
            b.as_ptr().cast(),
            b.len(),
        )
    };
}

/// Writes `r` on `ctx`.
pub fn write(ctx: &Context, r: &Reply) {
    let c = ctx.ctx;
    // SAFETY: `c` is the live context of the command (or of a blocked client's thread-safe
    // context) for the duration of this call; strings passed are valid for the call.
    unsafe {
        match r {
            Reply::Null => {
                raw::RedisModule_ReplyWithNull.expect("reply api")(c);
            }
            Reply::Int(i) => {
                raw::RedisModule_ReplyWithLongLong.expect("reply api")(c, *i);
            }
            Reply::Double(d) => {
                raw::RedisModule_ReplyWithDouble.expect("reply api")(c, *d);
            }
            Reply::Bulk(b) => {
                raw::RedisModule_ReplyWithStringBuffer.expect("reply api")(
                    c,
                    b.as_ptr().cast(),
                    b.len(),
                );
            }
            Reply::Status(s) => {
                let s = c_text(s);
                raw::RedisModule_ReplyWithSimpleString.expect("reply api")(c, s.as_ptr());
            }
            Reply::Error(e) => {
                let e = c_text(e);
                raw::RedisModule_ReplyWithError.expect("reply api")(c, e.as_ptr());
            }
            Reply::Array(items) => {
                raw::RedisModule_ReplyWithArray.expect("reply api")(c, items.len() as _);
                for i in items {
                    write(ctx, i);
                }
            }
        }
    }
}

/// Writes an error reply whose text is raw bytes (Redis echoes client bytes in some errors,
/// UTF-8 or not). CR/LF become spaces and the text ends at a NUL, as Redis's own do.
pub fn write_error_bytes(ctx: &Context, text: &[u8]) {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let clean: Vec<u8> = text[..end]
        .iter()
        .map(|&b| if matches!(b, b'\r' | b'\n') { b' ' } else { b })
        .collect();
    let e = CString::new(clean).unwrap_or_default();
    // SAFETY: `ctx.ctx` is the live context of the command; `e` is valid for the call.
    unsafe {
        raw::RedisModule_ReplyWithError.expect("reply api")(ctx.ctx, e.as_ptr());
    }
}

/// RESP simple strings and errors cannot hold CR/LF or NUL; Redis itself replaces line
/// breaks with spaces in errors.
fn c_text(s: &str) -> CString {
    let clean: String = s
        .chars()
        .map(|c| if matches!(c, '\r' | '\n') { ' ' } else { c })
        .filter(|&c| c != '\0')
        .collect();
    CString::new(clean).unwrap_or_default()
}

/// A client blocked by a command, to be answered later from any thread.
#[derive(Debug)]
pub struct Blocked {
    bc: *mut raw::RedisModuleBlockedClient,
    /// Its blocked time counts as the command's duration (SLOWLOG, command stats).
    measured: bool,
    /// An action waits in `ON_DISCONNECT` for this client.
    watched: bool,
}

/// What runs when a watched blocked client disconnects before its reply, by the blocked
/// client's address (taken out by the reply, so an address Redis reuses finds nothing).
type OnDisconnect = Box<dyn FnOnce(&Context) + Send>;
static ON_DISCONNECT: Mutex<Option<HashMap<usize, OnDisconnect>>> = Mutex::new(None);

fn watchers() -> std::sync::MutexGuard<'static, Option<HashMap<usize, OnDisconnect>>> {
    ON_DISCONNECT.lock().unwrap_or_else(|e| e.into_inner())
}

impl Blocked {
    /// Runs `f` on the main thread, Redis lock held, if the client disconnects before it
    /// gets its reply. Call on the main thread, right after blocking.
    pub fn on_disconnect(&mut self, f: OnDisconnect) {
        // SAFETY: the API table is filled once at module load and only read afterwards.
        let Some(set) = (unsafe { raw::RedisModule_SetDisconnectCallback }) else {
            return;
        };
        watchers()
            .get_or_insert_with(HashMap::new)
            .insert(self.bc as usize, f);
        self.watched = true;
        // SAFETY: `self.bc` is a live blocked client not yet unblocked; the callback is an
        // `extern "C"` function that lives as long as the module.
        unsafe { set(self.bc, Some(disconnected)) };
    }
}

/// Redis's disconnect callback of a watched blocked client (main thread, lock held).
extern "C" fn disconnected(ctx: *mut raw::RedisModuleCtx, bc: *mut raw::RedisModuleBlockedClient) {
    let f = watchers().as_mut().and_then(|m| m.remove(&(bc as usize)));
    if let Some(f) = f {
        super::trampoline::callback("a client disconnect", (), || f(&Context::new(ctx)));
    }
}

// SAFETY: a blocked-client handle may be used from any thread (that is its purpose);
// it is consumed exactly once by `reply_blocked`.
unsafe impl Send for Blocked {}

/// Where a client cannot be blocked: inside MULTI or a Lua script, or a module's call
/// (user code's `execute()`), where Redis 7.0 aborts once the call blocks.
pub const CANNOT_BLOCK: ContextFlags = ContextFlags::MULTI
    .union(ContextFlags::LUA)
    .union(ContextFlags::DENY_BLOCKING);

/// Whether the client of `ctx` cannot be blocked ([`CANNOT_BLOCK`]).
pub fn cannot_block(ctx: &Context) -> bool {
    ctx.get_flags().intersects(CANNOT_BLOCK)
}

/// Blocks the client of the current command (no timeout, no callbacks).
pub fn block(ctx: &Context) -> Blocked {
    // SAFETY: `ctx` is the live context of a command being executed on the main thread.
    let bc =
        unsafe { raw::RedisModule_BlockClient.expect("block api")(ctx.ctx, None, None, None, 0) };
    Blocked {
        bc,
        measured: false,
        watched: false,
    }
}

/// As [`block`], measuring the time until the reply as the command's own: Redis logs it
/// in SLOWLOG (with the client's arguments) when it exceeds `slowlog-log-slower-than`.
pub fn block_measured(ctx: &Context) -> Blocked {
    let mut b = block(ctx);
    // SAFETY: the API table is filled once at module load and only read afterwards;
    // `b.bc` is the live blocked client just created, not yet unblocked.
    unsafe {
        if let Some(start) = raw::RedisModule_BlockedClientMeasureTimeStart {
            b.measured = start(b.bc) == raw::REDISMODULE_OK as i32;
        }
    }
    b
}

/// Replies to a blocked client and unblocks it.
pub fn reply_blocked(bc: Blocked, r: &(impl WriteReply + ?Sized)) {
    if bc.watched {
        if let Some(m) = watchers().as_mut() {
            m.remove(&(bc.bc as usize));
        }
    }
    // SAFETY: `bc.0` is a live blocked client (consumed here, once). Reply functions on a
    // blocked client's thread-safe context need no Redis lock; the reply is delivered
    // when the client is unblocked.
    unsafe {
        if bc.measured {
            if let Some(end) = raw::RedisModule_BlockedClientMeasureTimeEnd {
                end(bc.bc);
            }
        }
        let tctx = raw::RedisModule_GetThreadSafeContext.expect("api")(bc.bc);
        r.write_to(&Context::new(tctx));
        raw::RedisModule_FreeThreadSafeContext.expect("api")(tctx);
        raw::RedisModule_UnblockClient.expect("api")(bc.bc, std::ptr::null_mut());
    }
}
