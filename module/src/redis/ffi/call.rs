//! `execute()`'s `RM_Call` with its arguments passed as buffers (format `b`), its reply
//! copied into owned data straight from the call reply.
//!
//! The crate's `call_ext` made a C string of the command, a module string per argument
//! (created and freed), an argument vector and a typed reply tree per call: about a third
//! of an `execute('INCR', k)` outside Redis's own work (perf, issue #13). This path makes
//! none of them, for calls of up to `MAX_ARGS` arguments and a command name shorter than
//! `NAME_MAX`; others go through `call_ext` (`None`). Replies are RESP2 (no `0`/`3` flag),
//! converted as `crate::redis::call` converts the crate's `CallReply`. Lock held.

use std::os::raw::c_char;

use gearpy::services::CallReply as PyReply;
use redis_module::{raw, Context};

use super::reply::{Element, OwnedReply};

/// Arguments after the command name this path takes.
pub const MAX_ARGS: usize = 4;
/// Command names shorter than this (bytes) are copied to a NUL-terminated stack buffer.
const NAME_MAX: usize = 48;

/// Runs `cmd args…` on `ctx` with RM_Call `flags` (e.g. `E!S`); `None` when the call is
/// not one this path takes (too many arguments, a long name, a NUL in the name or flags).
pub fn call_buffers(ctx: &Context, cmd: &[u8], flags: &str, args: &[&[u8]]) -> Option<PyReply> {
    if args.len() > MAX_ARGS || cmd.len() >= NAME_MAX || cmd.contains(&0) {
        return None;
    }
    if flags.len() > 8 || flags.contains('\0') {
        return None;
    }
    let mut name = [0u8; NAME_MAX];
    name[..cmd.len()].copy_from_slice(cmd);
    // "b" per argument, the flags, a NUL.
    let mut fmt = [0u8; MAX_ARGS + 9];
    fmt[..args.len()].fill(b'b');
    fmt[args.len()..args.len() + flags.len()].copy_from_slice(flags.as_bytes());
    let reply = call(ctx, name.as_ptr().cast(), fmt.as_ptr().cast(), args);
    Some(take_reply(reply))
}

/// Whether clients are paused (`CLIENT PAUSE`, `FAILOVER`, a cluster manual failover):
/// Redis 7.0 must then propagate nothing. Lock held.
pub fn writes_paused() -> bool {
    // SAFETY: a plain query of the server's pause state, lock held (caller contract).
    unsafe { raw::RedisModule_AvoidReplicaTraffic.is_some_and(|f| f() != 0) }
}

/// The variadic RM_Call for `args.len()` ≤ `MAX_ARGS` buffers.
fn call(
    ctx: &Context,
    name: *const c_char,
    fmt: *const c_char,
    args: &[&[u8]],
) -> *mut raw::RedisModuleCallReply {
    let p = |i: usize| args[i].as_ptr().cast::<c_char>();
    let l = |i: usize| args[i].len();
    // SAFETY: lock held (caller contract); `name` and `fmt` are NUL-terminated buffers that
    // outlive the call; `fmt` has one `b` per argument, and each `b` is given exactly a
    // pointer and a length of a live slice (RM_Call copies them).
    unsafe {
        let f = raw::RedisModule_Call.expect("api");
        let c = ctx.ctx;
        match args.len() {
            0 => f(c, name, fmt),
            1 => f(c, name, fmt, p(0), l(0)),
            2 => f(c, name, fmt, p(0), l(0), p(1), l(1)),
            3 => f(c, name, fmt, p(0), l(0), p(1), l(1), p(2), l(2)),
            _ => f(c, name, fmt, p(0), l(0), p(1), l(1), p(2), l(2), p(3), l(3)),
        }
    }
}

/// Copies a call's reply and frees it. NULL (no reply) reads as nil, as in the crate.
fn take_reply(reply: *mut raw::RedisModuleCallReply) -> PyReply {
    // SAFETY: what RM_Call just returned; nothing else frees it.
    let reply = unsafe { OwnedReply::new(reply) };
    owned(reply.root())
}

/// A reply (or an element of one) as owned data.
fn owned(r: Element<'_>) -> PyReply {
    match r.kind() {
        raw::REDISMODULE_REPLY_STRING => PyReply::Bulk(r.bytes().to_vec()),
        raw::REDISMODULE_REPLY_ERROR => {
            PyReply::Error(String::from_utf8_lossy(r.bytes()).into_owned())
        }
        raw::REDISMODULE_REPLY_INTEGER => PyReply::Int(r.integer()),
        raw::REDISMODULE_REPLY_ARRAY => {
            let n = r.len().unwrap_or(0);
            PyReply::Array((0..n).map(|i| owned(r.at(i))).collect())
        }
        // Null (or no reply), unknown, and the RESP3 types a RESP2 call never returns.
        _ => PyReply::Nil,
    }
}
