//! `run()` anywhere but a script's body (REFERENCE §4.1, §12.3): from a step, a coroutine,
//! a `registerTE` callback. The run starts at once through the host
//! ([`NestedRuns::start_nested`], installed by the module) and `run()` returns a
//! `GearsFuture` (`py/nested.py`) that the run's end completes with `[results, errors]`; a
//! coroutine awaits it on its loop without blocking that loop, and a run nobody awaits
//! still runs (the host drops it when done).
//!
//! Deadlock: a step awaiting a nested run parks its stage (`stage::park`: the worker is
//! free meanwhile). One that still waits on its worker (a wave of several `async def`
//! records, steps at the end of input) must not wait on the pool it occupies. A run
//! started from code at depth `n` runs at depth `n + 1`
//! on the host's pool for that depth, so waiters only ever wait for deeper pools; depth is
//! bounded by [`MAX_DEPTH`] (deeper: an error, never a hang). The depth travels with the
//! caller's identity (`caller`), set on threads by [`depth::AtDepth`].
//!
//! Top layer: depends on `request`, `cluster`, `caller`, `convert`, `gil`, `errors`, and
//! through `keep` on `stage`, `control` and `column`.

pub mod depth;
mod keep;

use keep::Kept;
pub use keep::NestedRuntime;

use std::sync::OnceLock;

use engine::exec::ExecutionOutput;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyWeakrefReference};

use crate::errors::GearsError;
use crate::request::{build_request, RunDone, RunRequest};

/// A nested run to start: its request and depth, and where its results are kept.
pub struct NestedRun {
    /// `req.on_done` must get the output when the run ends (exactly once).
    pub req: RunRequest,
    /// 1 for a run started by a top-level execution, one more per level.
    pub depth: u32,
    kept: Kept,
}

impl NestedRun {
    /// The request, and the run's runtime: its Python stages (abortable through
    /// `control`) run at its depth and its results are kept as Python objects. Wrap its
    /// source in [`depth::source`] (a PythonReader's code may `run()` too).
    pub fn into_parts(
        self,
        control: std::sync::Arc<crate::control::ExecControl>,
    ) -> (RunRequest, NestedRuntime) {
        let rt = NestedRuntime::new(control, self.depth, self.kept);
        (self.req, rt)
    }
}

/// What the host (the module) does for nested runs; installed once at start-up.
pub trait NestedRuns: Send + Sync {
    /// Starts `run` now, without waiting for it, on a pool for its depth, as `caller`
    /// (with the runtime of [`NestedRun::into_parts`] and its source wrapped in
    /// [`depth::source`]). Listed while it runs, dropped when done. Called with the GIL
    /// released.
    fn start_nested(
        &self,
        caller: Option<crate::caller::RunAs>,
        run: NestedRun,
    ) -> Result<(), String>;
}

static HOST: OnceLock<Box<dyn NestedRuns>> = OnceLock::new();

/// Installs the host's nested runs; later calls are ignored.
pub fn install(host: Box<dyn NestedRuns>) {
    let _ = HOST.set(host);
}

/// The deepest a `run()` may nest: a run started at this depth may not start another.
pub const MAX_DEPTH: u32 = 8;

/// The awaitable class (`py/nested.py`, loaded with the runtime).
static FUTURE_CLASS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Keeps the `GearsFuture` class of `py/nested.py` (once, when the runtime loads).
pub(crate) fn set_class(py: Python<'_>, class: Py<PyAny>) {
    let _ = FUTURE_CLASS.set(py, class);
}

/// A new, pending `GearsFuture`.
pub(crate) fn new_future(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    FUTURE_CLASS
        .get(py)
        .ok_or_else(|| GearsError::new_err("Gearshift Python runtime not initialised"))?
        .bind(py)
        .call0()
}

/// What completes `fut` when its run ends (called once, from any thread, GIL not held).
pub(crate) fn completer(fut: &Bound<'_, PyAny>) -> PyResult<RunDone> {
    completer_keeping(fut, None)
}

/// As [`completer`]; the results are the records in `kept` (Python objects), followed by
/// the output's native ones. The future is held weakly: once nothing else refers to it
/// (nobody can await it any more), its output is not converted at all. Never panics (the
/// run's own completion goes on after it).
fn completer_keeping(fut: &Bound<'_, PyAny>, kept: Option<Kept>) -> PyResult<RunDone> {
    let fut = PyWeakrefReference::new(fut)?.unbind();
    Ok(Box::new(move |out: &ExecutionOutput| {
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::gil::completion(|py| complete(py, &fut, kept, out))
        }));
        if done.is_err() {
            if let Some(h) = crate::services::get() {
                h.log(
                    "warning",
                    "Gearshift: a run's output could not reach its GearsFuture",
                );
            }
        }
    }))
}

/// Completes the future `fut` refers to with the output, if it is still alive.
fn complete(
    py: Python<'_>,
    fut: &Py<PyWeakrefReference>,
    kept: Option<Kept>,
    out: &ExecutionOutput,
) {
    let kept = kept.map(|k| k.take()).unwrap_or_default();
    let Some(fut) = fut.bind(py).upgrade() else {
        return;
    };
    let done = output_to_py(py, kept, out).and_then(|v| fut.call_method1("_complete", (v,)));
    if let Err(e) = done {
        e.write_unraisable(py, None);
    }
}

/// `[results, errors]` as a nested run's awaiter gets it.
fn output_to_py<'py>(
    py: Python<'py>,
    kept: Vec<Py<PyAny>>,
    out: &ExecutionOutput,
) -> PyResult<Bound<'py, PyList>> {
    let mut results: Vec<Bound<'py, PyAny>> = kept.into_iter().map(|o| o.into_bound(py)).collect();
    for d in &out.results {
        results.push(crate::convert::datum_to_py(py, d)?);
    }
    let results = PyList::new(py, results)?;
    let errors = PyList::new(py, out.errors.iter())?;
    PyList::new(py, [results.into_any(), errors.into_any()])
}

/// Starts the run `reader(arg)` with `steps` one level deeper than the code calling, as
/// that code's ACL user, and returns its `GearsFuture`.
pub(crate) fn start<'py>(
    reader: &str,
    arg: &Bound<'py, PyAny>,
    steps: &Bound<'py, PyList>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = arg.py();
    let depth = crate::caller::depth(py) + 1;
    if depth > MAX_DEPTH {
        return Err(GearsError::new_err(format!(
            "Can not run: run() nested too deep (at most {MAX_DEPTH} levels of nested executions)"
        )));
    }
    let host = HOST.get().ok_or_else(|| {
        GearsError::new_err("run() inside an execution is not supported by this host")
    })?;
    let wire = crate::cluster::wire_of(py, reader, arg, steps, kwargs)?;
    let mut req = build_request(reader, arg, steps, kwargs, wire)?;
    let fut = new_future(py)?;
    let kept = Kept::default();
    req.on_done = Some(completer_keeping(&fut, Some(kept.clone()))?);
    let run = NestedRun { req, depth, kept };
    let caller = crate::caller::current(py);
    py.detach(|| host.start_nested(caller, run))
        .map_err(GearsError::new_err)?;
    Ok(fut)
}
