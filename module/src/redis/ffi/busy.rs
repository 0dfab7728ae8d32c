//! Letting Redis serve clients while main-thread Python runs long (`RM_Yield`), and the
//! kill commands a busy server still accepts.

use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::{raw, Context, ContextFlags};

/// What clients get while a section is busy (Redis prefixes `-BUSY `).
const BUSY_REPLY: &CStr = c"Gearshift is busy running a Python callback that holds the Redis lock. You can only call RG.ABORTEXECUTION, SCRIPT KILL, FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Processes pending client events once; other clients' commands are refused with
/// `-BUSY` unless flagged allow-busy. Main thread, Redis lock held through `ctx`. False,
/// without yielding, inside a Lua script, a Function or MULTI/EXEC: Redis asserts that
/// none runs when it processes a client's command, so serving one there kills the server.
pub fn yield_to_clients(ctx: &Context) -> bool {
    let flags = ctx.get_flags();
    if flags.intersects(ContextFlags::LUA | ContextFlags::MULTI) {
        return false;
    }
    // SAFETY: `ctx` is the live context of the running section on the main thread; the
    // reply text is static.
    unsafe {
        if let Some(y) = raw::RedisModule_Yield {
            y(
                ctx.ctx,
                raw::REDISMODULE_YIELD_FLAG_CLIENTS as c_int,
                BUSY_REPLY.as_ptr(),
            );
        }
    }
    true
}
