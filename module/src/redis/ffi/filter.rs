//! The command filter behind command hooks: on Redis's main thread, for every command,
//! rewrite `<hooked command> args…` into `RG.TRIGGER <hooked command> args…`; and while
//! main-thread Python is busy, SCRIPT KILL / FUNCTION KILL into its kill. It must be
//! cheap: one flag check each when nothing is hooked or busy.

use std::os::raw::c_int;
use std::sync::OnceLock;

use redis_module::{raw, Context};

fn arg(fctx: *mut raw::RedisModuleCommandFilterCtx, i: c_int) -> Vec<u8> {
    // SAFETY: `fctx` is the live filter context of this callback and `i` is in range;
    // the returned string is owned by the context and read before it returns.
    unsafe {
        let s = raw::RedisModule_CommandFilterArgGet.expect("filter api")(fctx, i);
        if s.is_null() {
            return Vec::new();
        }
        let mut len = 0usize;
        let p = raw::RedisModule_StringPtrLen.expect("api")(s, &mut len);
        if p.is_null() {
            return Vec::new();
        }
        std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec()
    }
}

/// What the filter asks of the registrations (set once at load).
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Whether any registration hooks or links a command (the fast path's check).
    pub any: fn() -> bool,
    /// Whether command `name` (lower case) is hooked or linked.
    pub hooked: fn(&str) -> bool,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

pub use super::acl::unhooked;

/// Rewrites the command when a hook fires for it.
fn rewrite_hooked(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    if super::acl::take_unhooked() {
        return;
    }
    let Some(hooks) = HOOKS.get() else {
        return;
    };
    // Gearshift's own reads (a KeysReader's GET, a StreamReader's XREADGROUP) are not the
    // user's commands: they fire no hook.
    if !(hooks.any)() || super::acl::in_own_call() {
        return;
    }
    // SAFETY: live filter context of this callback.
    let argc = unsafe { raw::RedisModule_CommandFilterArgsCount.expect("filter api")(fctx) };
    if argc < 1 {
        return;
    }
    let name = String::from_utf8_lossy(&arg(fctx, 0)).to_ascii_lowercase();
    // Gearshift's own commands are never hooked (registration refuses them; this also
    // covers a session saved by a build that did not).
    if name.starts_with("rg.") || !(hooks.hooked)(&name) {
        return;
    }
    const TRIGGER: &[u8] = b"RG.TRIGGER";
    // SAFETY: inserting at position 0 of the live filter context; Redis takes ownership of
    // the new string (created with a NULL context, so it is not auto-freed).
    unsafe {
        let s = raw::RedisModule_CreateString.expect("api")(
            std::ptr::null_mut(),
            TRIGGER.as_ptr().cast(),
            TRIGGER.len(),
        );
        raw::RedisModule_CommandFilterArgInsert.expect("filter api")(fctx, 0, s);
    }
}

/// The argument of `RG.ABORTEXECUTION` that SCRIPT KILL and FUNCTION KILL become while
/// main-thread Python is busy (they would otherwise answer that no script runs).
pub const KILL_BUSY: &str = "BUSY-SECTION";

/// While busy: `SCRIPT KILL` / `FUNCTION KILL` → `RG.ABORTEXECUTION BUSY-SECTION`.
fn rewrite_kill(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    // SAFETY: live filter context of this callback.
    let argc = unsafe { raw::RedisModule_CommandFilterArgsCount.expect("filter api")(fctx) };
    if argc != 2 || !arg(fctx, 1).eq_ignore_ascii_case(b"kill") {
        return;
    }
    let name = arg(fctx, 0);
    if !(name.eq_ignore_ascii_case(b"script") || name.eq_ignore_ascii_case(b"function")) {
        return;
    }
    for (i, text) in [(0, &b"RG.ABORTEXECUTION"[..]), (1, KILL_BUSY.as_bytes())] {
        // SAFETY: replacing an existing argument of the live filter context; Redis takes
        // ownership of the new string (NULL context: not auto-freed).
        unsafe {
            let s = raw::RedisModule_CreateString.expect("api")(
                std::ptr::null_mut(),
                text.as_ptr().cast(),
                text.len(),
            );
            raw::RedisModule_CommandFilterArgReplace.expect("filter api")(fctx, i, s);
        }
    }
}

/// Calls `f` with the command's name, borrowed from the filter context (no copy).
fn with_name<R>(fctx: *mut raw::RedisModuleCommandFilterCtx, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: `fctx` is the live filter context of this callback; the name string is owned
    // by it and read before this returns.
    unsafe {
        let s = raw::RedisModule_CommandFilterArgGet.expect("filter api")(fctx, 0);
        let mut len = 0usize;
        let p = if s.is_null() {
            std::ptr::null()
        } else {
            raw::RedisModule_StringPtrLen.expect("api")(s, &mut len)
        };
        if p.is_null() {
            return f(&[]);
        }
        f(std::slice::from_raw_parts(p.cast::<u8>(), len))
    }
}

extern "C" fn filter(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    super::trampoline::callback("the command filter", (), || {
        // Runs before the command: cached ACL verdicts are stale once it has run.
        if with_name(fctx, crate::redis::acl_generation::may_change_acl) {
            crate::redis::acl_generation::changed();
        }
        rewrite_hooked(fctx)
    });
}

/// The kill rewrite has a filter of its own, without `NOSELF`: while a section runs inside
/// one of this module's calls (a KeysReader `commands=` registration runs in one), Redis
/// skips `NOSELF` filters for every command, and `SCRIPT KILL` answered `NOTBUSY`.
extern "C" fn kill_filter(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    if gearpy::busy::is_busy() {
        super::trampoline::callback("the kill filter", (), || rewrite_kill(fctx));
    }
}

/// Installs the command filter (once, at load). Commands this module calls while one of
/// its commands runs are not filtered (`NOSELF`: a sync hook's own `execute()`); those a
/// background execution calls are, except a `call_next` to the real command ([`unhooked`]).
pub fn install(ctx: &Context, hooks: Hooks) -> Result<(), String> {
    let _ = HOOKS.set(hooks);
    // SAFETY: OnLoad context; the callback is a plain function.
    let f = unsafe {
        raw::RedisModule_RegisterCommandFilter.expect("filter api")(
            ctx.ctx,
            Some(filter),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        )
    };
    if f.is_null() {
        return Err("could not register the command filter".into());
    }
    // SAFETY: as above.
    let k = unsafe {
        raw::RedisModule_RegisterCommandFilter.expect("filter api")(ctx.ctx, Some(kill_filter), 0)
    };
    if k.is_null() {
        return Err("could not register the kill command filter".into());
    }
    Ok(())
}
