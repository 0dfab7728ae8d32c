//! The thread-local execution scope: whether this thread runs an execution's Python code
//! now (read by `isAsyncAllow()` and `run()`), and whether that code runs in a `sync`
//! event whose awaits continue in the background.
//!
//! [`ExecutionScope`] is entered around every batch of callbacks (stages, readers, events)
//! and [`DeferScope`] around batched `sync` events. Bottom layer: depends on `atomic` only
//! (a scope closes the `atomic()` block its callbacks left open).

use std::cell::Cell;

thread_local! {
    static IN_EXECUTION: Cell<bool> = const { Cell::new(false) };
    /// A `sync` event runs on this thread whose awaits continue in the background.
    static AWAITS_DEFERRED: Cell<bool> = const { Cell::new(false) };
}

/// True while an execution's Python code runs on this thread.
pub(crate) fn in_execution() -> bool {
    IN_EXECUTION.with(|c| c.get())
}

/// True while a `sync` event that may await (in the background) runs on this thread.
pub(crate) fn awaits_deferred() -> bool {
    AWAITS_DEFERRED.with(|c| c.get())
}

/// Marks the current thread as running an execution's Python code.
pub(crate) struct ExecutionScope {
    /// An `atomic()` block was already open (a sync flow fired by a write inside one).
    atomic_before: bool,
}

impl ExecutionScope {
    pub(crate) fn enter() -> Self {
        IN_EXECUTION.with(|c| c.set(true));
        ExecutionScope {
            atomic_before: crate::atomic::atomic_open(),
        }
    }
}

impl Drop for ExecutionScope {
    fn drop(&mut self) {
        IN_EXECUTION.with(|c| c.set(false));
        // The callbacks have returned: an atomic() they entered and never left must not
        // keep the Redis lock (the next lock taken on this thread would wait for itself).
        // One opened before this scope is not theirs to close.
        if !self.atomic_before {
            crate::atomic::release_leaked_atomic();
        }
    }
}

/// Marks the current thread as running `sync` events whose awaits are deferred (for
/// `isAsyncAllow()`), restoring the previous mark on drop (sync events nest when a flow
/// writes a key).
pub(crate) struct DeferScope(Option<bool>);

impl DeferScope {
    pub(crate) fn enter(on: bool) -> Self {
        DeferScope(on.then(|| AWAITS_DEFERRED.with(|c| c.replace(true))))
    }
}

impl Drop for DeferScope {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            AWAITS_DEFERRED.with(|c| c.set(prev));
        }
    }
}
