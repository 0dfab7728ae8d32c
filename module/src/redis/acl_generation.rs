//! The ACL generation: a counter bumped before every command that may change ACL users or
//! the superuser config, and the handle of the user `execute()` last ran as on this thread,
//! kept until the generation moves.
//!
//! A user handle (`RM_GetModuleUserFromUserName`) points at Redis's user itself: rules
//! changed in place (`ACL SETUSER`) are seen through it, but `ACL DELUSER` or `ACL LOAD`
//! free that user. Only a command can do either, and the command filter (or `execute()`,
//! whose own calls the filter skips while one of this module's commands runs) bumps the
//! generation first, under the same Redis-lock hold: a handle resolved at the current
//! generation is therefore live. Looking the user up on every call cost an allocation, a
//! module string and a dictionary search per `execute()` (perf, issue #13).
//! Depends on `ffi::acl`.

use std::cell::RefCell;

use engine::sync::{AtomicU64, Ordering};

use crate::redis::ffi::acl::ModuleUser;

/// Bumped by every command that may change ACLs; starts at 1 (0 marks "no verdict").
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The current generation.
pub fn current() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Invalidates every cached verdict and user handle (before an ACL-changing command).
pub fn changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Whether the first word of a command (any case) may change ACLs or the superuser mode.
pub fn may_change_acl(command: &[u8]) -> bool {
    [&b"acl"[..], b"exec", b"config", b"rg.configset"]
        .iter()
        .any(|c| command.eq_ignore_ascii_case(c))
}

/// A user handle and the generation it was resolved at.
struct Resolved {
    name: String,
    generation: u64,
    user: ModuleUser,
}

thread_local! {
    static LAST: RefCell<Option<Resolved>> = const { RefCell::new(None) };
}

/// Calls `f` with the user named `name` (`None`: there is none), resolved once per
/// generation on this thread (lock held).
pub fn with_user<R>(name: &str, f: impl FnOnce(Option<&ModuleUser>) -> R) -> R {
    let generation = current();
    LAST.with(|last| {
        // Borrowed while `f` runs: a nested call (a command that raises an event whose
        // sync flow calls `execute()`) resolves its own handle.
        let Ok(mut slot) = last.try_borrow_mut() else {
            return f(ModuleUser::by_name(name).as_ref());
        };
        let fresh = slot
            .as_ref()
            .is_some_and(|r| r.generation == generation && r.name == name);
        if !fresh {
            *slot = ModuleUser::by_name(name).map(|user| Resolved {
                name: name.to_owned(),
                generation,
                user,
            });
        }
        f(slot.as_ref().map(|r| &r.user))
    })
}
