//! Redis ACL users through the raw module API (present on 7.0.15, checked with `strings
//! redis-server`): who a client is, a user handle by name, key permission checks, and
//! attaching a user to a context so `RM_Call` with the `C` flag runs as that user (on
//! 7.0.15 the command's temporary client then carries the user too, so an `EVAL` it runs
//! is checked as that user). The policy around them lives in `crate::redis::access`.
//! Also the marks of Gearshift's own calls on a thread (`own_call`, and `unhooked`, which
//! the command filter reads) that decide who such a call runs as and whether hooks see it.
//!
//! Every function here must be called with the Redis lock held.

use std::os::raw::c_int;

use redis_module::{raw, Context, ContextFlags};

/// Who sent the command of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientUser {
    /// A client Redis does not restrict (the master link, AOF loading).
    Unrestricted,
    Named(String),
}

/// Copies a module string and frees it (on `ctx`, which may track it for auto-memory).
///
/// # Safety
/// `s` must be a live string created on `ctx` (or with a null context), not used after.
unsafe fn take_string(ctx: *mut raw::RedisModuleCtx, s: *mut raw::RedisModuleString) -> String {
    let mut len = 0usize;
    // SAFETY: `s` is live (caller contract); Redis returns `len` bytes owned by it.
    let text = unsafe {
        let p = raw::RedisModule_StringPtrLen.expect("api")(s, &mut len);
        if p.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(p.cast::<u8>(), len)).into_owned()
        }
    };
    // SAFETY: freed once, on the context it was created on (caller contract).
    unsafe { raw::RedisModule_FreeString.expect("api")(ctx, s) };
    text
}

/// A name no ACL user can have (Redis refuses user names with spaces): the identity of
/// code that had none, carried where an identity must be (its calls stay refused).
pub const NO_USER: &str = " no user";

thread_local! {
    /// Depth of Gearshift's own `RM_Call`s on this thread made without an ACL user.
    static OWN_CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, an `RM_Call` of Gearshift's own made without an ACL user attached: a command
/// of this module it reaches runs unrestricted (its client's user is NULL).
pub fn own_call<R>(f: impl FnOnce() -> R) -> R {
    OWN_CALLS.with(|c| c.set(c.get() + 1));
    let r = f();
    OWN_CALLS.with(|c| c.set(c.get() - 1));
    r
}

/// True inside [`own_call`] on this thread.
pub fn in_own_call() -> bool {
    OWN_CALLS.with(|c| c.get()) > 0
}

thread_local! {
    /// Set by [`unhooked`] for the command about to be called on this thread.
    static UNHOOKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, which calls one command, so that the filter leaves that command alone (a
/// hook's `call_next` reaching the real command). The filter runs on the calling thread
/// before the command and consumes the mark, so commands run by that command (a flow its
/// events trigger) are filtered as usual. Needed off the main thread, where `NOSELF`
/// does not apply (it only covers calls made while one of this module's commands runs).
pub fn unhooked<R>(f: impl FnOnce() -> R) -> R {
    UNHOOKED.with(|u| u.set(true));
    let r = f();
    UNHOOKED.with(|u| u.set(false));
    r
}

/// Takes the [`unhooked`] mark of this thread (the filter, for the command it sees).
pub fn take_unhooked() -> bool {
    UNHOOKED.with(|u| u.replace(false))
}

/// The ACL user of the client running the command of `ctx`.
pub fn client_user(ctx: &Context) -> ClientUser {
    // Replicated and loaded commands come from clients Redis does not restrict, whose
    // user is NULL: asking for its name would dereference it.
    if ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
    {
        return ClientUser::Unrestricted;
    }
    // SAFETY: `ctx` is the live context of a command (lock held); the strings returned are
    // taken (copied and freed) at once.
    unsafe {
        let id = raw::RedisModule_GetClientId.expect("api")(ctx.ctx);
        let by_id = raw::RedisModule_GetClientUserNameById.expect("api")(ctx.ctx, id);
        if !by_id.is_null() {
            return ClientUser::Named(take_string(ctx.ctx, by_id));
        }
        match std::io::Error::last_os_error().raw_os_error() {
            // A listed client without a user: Redis does not restrict it.
            Some(libc::ENOTSUP) => ClientUser::Unrestricted,
            // A client Redis does not list: a module call's or a script's. Inside one of our
            // own calls the thread says who it runs as (a call without a user attached has a
            // client with a NULL user, whose name must not be asked for).
            _ => {
                if let Some(who) = gearpy::caller::on_this_thread() {
                    return match who {
                        gearpy::caller::RunAs::Superuser => ClientUser::Unrestricted,
                        gearpy::caller::RunAs::User(n) => ClientUser::Named(n.to_string()),
                    };
                }
                if in_own_call() {
                    return ClientUser::Unrestricted;
                }
                // A script's client carries its caller's user. Any other module call's
                // client may have none (asking its name would dereference NULL): its
                // commands are refused rather than run unrestricted.
                if !ctx.get_flags().contains(ContextFlags::LUA) {
                    return ClientUser::Named(NO_USER.to_owned());
                }
                let s = raw::RedisModule_GetCurrentUserName.expect("api")(ctx.ctx);
                if s.is_null() {
                    return ClientUser::Unrestricted;
                }
                ClientUser::Named(take_string(ctx.ctx, s))
            }
        }
    }
}

/// A handle on an ACL user, valid while the Redis lock is held (Redis may free the user
/// once the lock is released, e.g. `ACL DELUSER`): never keep one across lock holds.
#[derive(Debug)]
pub struct ModuleUser(*mut raw::RedisModuleUser);

impl ModuleUser {
    /// The user named `name`; `None` if there is none.
    pub fn by_name(name: &str) -> Option<ModuleUser> {
        // SAFETY: lock held (module contract); the name string is created and freed here,
        // and the returned handle is owned by the new `ModuleUser`.
        unsafe {
            let s = raw::RedisModule_CreateString.expect("api")(
                std::ptr::null_mut(),
                name.as_ptr().cast(),
                name.len(),
            );
            let u = raw::RedisModule_GetModuleUserFromUserName.expect("acl api")(s);
            raw::RedisModule_FreeString.expect("api")(std::ptr::null_mut(), s);
            (!u.is_null()).then(|| ModuleUser(u))
        }
    }

    /// Whether the user's root selector may read every key (`~*`, `%R~*`, `%RW~*`):
    /// then no key needs checking. Selectors (`(...)`) only add permissions, so they need
    /// not be looked at; a user with all-keys access only through one is checked per key.
    pub fn reads_all_keys(&self) -> bool {
        // SAFETY: lock held; `self.0` is a live user handle; the description string is
        // created by Redis for us, copied and freed here.
        let text = unsafe {
            let s = raw::RedisModule_GetModuleUserACLString.expect("acl api")(self.0);
            if s.is_null() {
                return false;
            }
            take_string(std::ptr::null_mut(), s)
        };
        root_reads_all_keys(&text)
    }

    /// Whether the user may read key `key` (an existing module string).
    ///
    /// # Safety
    /// `key` must be a live module string.
    pub unsafe fn may_read_string(&self, key: *mut raw::RedisModuleString) -> bool {
        let flags = raw::REDISMODULE_CMD_KEY_ACCESS as c_int;
        // SAFETY: `self.0` is a live user handle and `key` a live string (caller contract).
        unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.expect("acl api")(self.0, key, flags)
                == raw::REDISMODULE_OK as c_int
        }
    }

    /// Whether the user may access key `key` with every permission of `flags`
    /// (`REDISMODULE_CMD_KEY_ACCESS`, `_UPDATE`, `_INSERT`, `_DELETE`).
    pub fn may_access(&self, key: &[u8], flags: u32) -> bool {
        // SAFETY: lock held; the key string is created, checked and freed here.
        unsafe {
            let s = raw::RedisModule_CreateString.expect("api")(
                std::ptr::null_mut(),
                key.as_ptr().cast(),
                key.len(),
            );
            let ok = raw::RedisModule_ACLCheckKeyPermissions.expect("acl api")(
                self.0,
                s,
                flags as c_int,
            ) == raw::REDISMODULE_OK as c_int;
            raw::RedisModule_FreeString.expect("api")(std::ptr::null_mut(), s);
            ok
        }
    }

    /// Whether the user may run command `argv` (command, subcommand and keys).
    pub fn may_run(&self, argv: &[&[u8]]) -> bool {
        // SAFETY: lock held; the argument strings are created, checked and freed here.
        unsafe {
            let mut strings: Vec<*mut raw::RedisModuleString> = argv
                .iter()
                .map(|a| {
                    raw::RedisModule_CreateString.expect("api")(
                        std::ptr::null_mut(),
                        a.as_ptr().cast(),
                        a.len(),
                    )
                })
                .collect();
            let ok = raw::RedisModule_ACLCheckCommandPermissions.expect("acl api")(
                self.0,
                strings.as_mut_ptr(),
                strings.len() as c_int,
            ) == raw::REDISMODULE_OK as c_int;
            for s in strings {
                raw::RedisModule_FreeString.expect("api")(std::ptr::null_mut(), s);
            }
            ok
        }
    }
}

/// `ACL GETUSER`-style rules (`on nopass ~* &* +@all (~x +get)`): does the root part, before
/// the first selector, grant reading every key?
fn root_reads_all_keys(rules: &str) -> bool {
    rules
        .split(' ')
        .take_while(|t| !t.starts_with('('))
        .any(|t| matches!(t, "~*" | "allkeys" | "%R~*" | "%RW~*" | "%WR~*"))
}

impl Drop for ModuleUser {
    fn drop(&mut self) {
        // SAFETY: the handle came from GetModuleUserFromUserName and is freed once; that
        // frees only the handle, never the ACL user itself.
        unsafe { raw::RedisModule_FreeModuleUser.expect("acl api")(self.0) };
    }
}

/// While alive, `RM_Call`s on the context with the `C` flag run as the user; the context
/// goes back to no user on drop.
pub struct ContextUser<'a> {
    ctx: &'a Context,
    _user: &'a ModuleUser,
}

impl<'a> ContextUser<'a> {
    pub fn attach(ctx: &'a Context, user: &'a ModuleUser) -> ContextUser<'a> {
        // SAFETY: lock held; `user` outlives the guard, which detaches it before either goes.
        unsafe { raw::RedisModule_SetContextUser.expect("acl api")(ctx.ctx, user.0) };
        ContextUser { ctx, _user: user }
    }
}

impl Drop for ContextUser<'_> {
    fn drop(&mut self) {
        // SAFETY: lock held; a null user detaches it (a context has none unless set).
        unsafe {
            raw::RedisModule_SetContextUser.expect("acl api")(self.ctx.ctx, std::ptr::null())
        };
    }
}

/// Runs `f` on a context of its own whose client has a (non-NULL) user, on a thread that
/// already holds the Redis lock: there `RM_Call` may refuse a command as another user
/// without crashing Redis 7.0 (it logs the refusal under the context client's user).
pub fn with_own_client<R>(f: impl FnOnce(&Context) -> R) -> R {
    // SAFETY: the lock is held (module contract), so the new context is used under it
    // without locking it again; it is freed before returning.
    unsafe {
        let ctx = raw::RedisModule_GetThreadSafeContext.expect("api")(std::ptr::null_mut());
        let r = f(&Context::new(ctx));
        raw::RedisModule_FreeThreadSafeContext.expect("api")(ctx);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::root_reads_all_keys;

    #[test]
    fn all_keys_only_from_the_root_selector() {
        assert!(root_reads_all_keys(
            "on nopass sanitize-payload ~* &* +@all"
        ));
        assert!(root_reads_all_keys("on #abc %R~* resetchannels +get"));
        assert!(!root_reads_all_keys("on #abc %W~* resetchannels +set"));
        assert!(!root_reads_all_keys("on #abc ~app:* resetchannels +@all"));
        assert!(!root_reads_all_keys("on #abc ~app:* +@all (~* +get)"));
        assert!(!root_reads_all_keys("off resetchannels -@all"));
    }
}
