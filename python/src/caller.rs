//! Who the Python code running right now acts for: the ACL user whose permissions its
//! `execute()` calls get. This crate only carries the name; the host enforces it.
//!
//! The module crate sets it around every piece of user code it runs (a script, a batch of
//! a run, an event, a time event, a hook...) with [`Scope`], and `execute()` reads it with
//! [`current`]. A thread-local is enough for worker threads and the main thread: one
//! execution's code runs there at a time, and nested scopes restore the outer one.
//! Coroutines are different: every `async def` callback runs on the one shared asyncio
//! loop thread, interleaved with other executions' coroutines, so the prelude wraps each
//! coroutine to carry the caller in a context variable instead (each asyncio task has a
//! context of its own). The thread-local wins where both are set.
//!
//! The token also carries the nesting depth of the code calling (0 for top-level
//! executions, `n` inside an execution a `run()` nested `n` levels deep started): nested
//! runs of depth `n` get pools of their own, so a waiter never fills the pool it waits on
//! (`nested`). [`DepthScope`] sets it on a thread as [`Scope`] does the identity.
//!
//! Bottom layer, a leaf: depends on `engine` (`RunAs`) and pyo3 only.

use std::cell::{Cell, RefCell};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The identity user code runs as; defined with its wire form in the engine
/// (`engine::wire::run_as`).
pub use engine::wire::RunAs;

thread_local! {
    static CURRENT: RefCell<Option<RunAs>> = const { RefCell::new(None) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// While alive, code on this thread runs at the given nesting depth (the previous one
/// comes back on drop).
#[derive(Debug)]
#[must_use = "the depth applies only while the scope lives"]
pub struct DepthScope(u32);

impl DepthScope {
    pub fn enter(depth: u32) -> DepthScope {
        DepthScope(DEPTH.with(|d| d.replace(depth)))
    }
}

impl Drop for DepthScope {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(self.0));
    }
}

/// While alive, code on this thread runs as the given identity; the previous one comes
/// back on drop (scopes nest: a flow's write can run a sync registration of another user).
#[derive(Debug)]
#[must_use = "the identity applies only while the scope lives"]
pub struct Scope(Option<RunAs>);

/// An identity as the scope of an `engine::scoped::Scoped` (the host's `AsUser`).
#[derive(Debug, Clone)]
pub struct ActingAs(pub RunAs);

impl From<RunAs> for ActingAs {
    fn from(run_as: RunAs) -> ActingAs {
        ActingAs(run_as)
    }
}

impl engine::scoped::CallScope for ActingAs {
    type Guard = Scope;

    fn enter(&self) -> Scope {
        Scope::enter(self.0.clone())
    }
}

impl Scope {
    pub fn enter(run_as: RunAs) -> Scope {
        Scope(CURRENT.with(|c| c.replace(Some(run_as))))
    }

    /// As [`Scope::enter`]; `None` leaves the thread's current identity as it is.
    pub fn enter_opt(run_as: Option<RunAs>) -> Scope {
        match run_as {
            Some(r) => Scope::enter(r),
            None => Scope(CURRENT.with(|c| c.borrow().clone())),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// This thread's identity, without looking at coroutine contexts (no GIL needed).
pub fn on_this_thread() -> Option<RunAs> {
    CURRENT.with(|c| c.borrow().clone())
}

/// An identity as Python sees it: opaque, and not constructible from Python.
#[pyclass(frozen, module = "_gearshift")]
pub(crate) struct CallerToken(RunAs, u32);

/// The context variable coroutines carry their identity in.
static CALLER_VAR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(crate) fn caller_var(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    CALLER_VAR.get_or_try_init(py, || {
        Ok(py
            .import("contextvars")?
            .getattr("ContextVar")?
            .call1(("gears_caller",))?
            .unbind())
    })
}

/// The identity and depth of the code calling now: this thread's, else the running
/// coroutine's.
fn current_with_depth(py: Python<'_>) -> Option<(RunAs, u32)> {
    if let Some(r) = on_this_thread() {
        return Some((r, DEPTH.with(|d| d.get())));
    }
    let var = caller_var(py).ok()?;
    let tok = var.bind(py).call_method1("get", (py.None(),)).ok()?;
    let tok = tok.cast::<CallerToken>().ok()?;
    Some((tok.get().0.clone(), tok.get().1))
}

/// The identity of the code calling now: this thread's, else the running coroutine's.
pub fn current(py: Python<'_>) -> Option<RunAs> {
    current_with_depth(py).map(|(r, _)| r)
}

/// The nesting depth of the code calling now (0 outside nested executions).
pub fn depth(py: Python<'_>) -> u32 {
    current_with_depth(py).map_or(0, |(_, d)| d)
}

/// `caller_token()`: the current identity and depth, for a coroutine wrapper to carry
/// (None outside any execution).
#[pyfunction]
pub(crate) fn caller_token(py: Python<'_>) -> Option<CallerToken> {
    current_with_depth(py).map(|(r, d)| CallerToken(r, d))
}

/// Adds the token function and the context variable to the `_gearshift` module.
pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<CallerToken>()?;
    m.add_function(wrap_pyfunction!(caller_token, m)?)?;
    m.add("caller_var", caller_var(m.py())?.clone_ref(m.py()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(on_this_thread(), None);
        {
            let _a = Scope::enter(RunAs::user("a"));
            assert_eq!(on_this_thread(), Some(RunAs::user("a")));
            {
                let _b = Scope::enter(RunAs::Superuser);
                assert_eq!(on_this_thread(), Some(RunAs::Superuser));
                let _keep = Scope::enter_opt(None);
                assert_eq!(on_this_thread(), Some(RunAs::Superuser));
            }
            assert_eq!(on_this_thread(), Some(RunAs::user("a")));
        }
        assert_eq!(on_this_thread(), None);
    }
}
