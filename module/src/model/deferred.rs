//! Work recorded now and settled later: sync event executions are recorded in a batch
//! (`run::events::lazy`) and kept only when something looks at the kept executions or a
//! registration's stats. This module owns the "something is deferred" flag and the hook
//! that settles it; the registry (`executions::Registry`) and the registrations' stats and
//! kept lists call [`settle`] before every use, so no reader sees a batch half kept.
//!
//! Depends on nothing else in the module (the hook is a plain `fn`, installed by whoever
//! defers work).

use std::cell::Cell;
use std::sync::OnceLock;

use engine::sync::{AtomicBool, Ordering};

static DIRTY: AtomicBool = AtomicBool::new(false);
static HOOK: OnceLock<fn()> = OnceLock::new();

thread_local! {
    /// True while this thread runs the hook (its own uses of the registry do not recurse).
    static SETTLING: Cell<bool> = const { Cell::new(false) };
}

/// Marks work as deferred; `hook` settles it (the first hook given stays).
pub fn defer(hook: fn()) {
    if HOOK.get().is_none() {
        let _ = HOOK.set(hook);
    }
    DIRTY.store(true, Ordering::Release);
}

/// Settles deferred work, if any (not from inside the hook itself).
pub fn settle() {
    if !DIRTY.load(Ordering::Acquire) || SETTLING.with(Cell::get) {
        return;
    }
    if let Some(hook) = HOOK.get() {
        hook();
    }
}

/// Held by the hook while it settles: clears the flag when dropped (the hook holds its own
/// lock across both, so no deferral is lost in between).
pub struct Settling(());

impl Settling {
    pub fn start() -> Settling {
        SETTLING.with(|s| s.set(true));
        Settling(())
    }

    /// Nothing is deferred any more (call with the hook's lock held, after settling).
    pub fn done(self) {
        DIRTY.store(false, Ordering::Release);
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        SETTLING.with(|s| s.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use engine::sync::AtomicUsize;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn hook() {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let s = Settling::start();
        settle(); // no recursion from inside the hook
        s.done();
    }

    #[test]
    fn settles_once_per_deferral_and_never_recursively() {
        settle();
        assert_eq!(CALLS.load(Ordering::Relaxed), 0, "nothing deferred");
        defer(hook);
        settle();
        settle();
        assert_eq!(CALLS.load(Ordering::Relaxed), 1);
        defer(hook);
        settle();
        assert_eq!(CALLS.load(Ordering::Relaxed), 2);
    }
}
