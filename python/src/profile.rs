//! Per-session Python profiling (`ProfileExecutions 1`, `RG.PYPROFILE`): each session's
//! globals hold a `cProfile.Profile` that every Python stage running the session's
//! callbacks enables around its batch. `RG.PYPROFILE STATS` renders it with `pstats`
//! (stats, callers, callees; sorted by `tottime`, as 1.2 does).
//!
//! Middle layer: depends on `step` (the callbacks name the session), `services` and `gil`.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::step::PyStep;

const PROFILER: &str = "__gearshift_profiler__";

/// A session's globals, kept by the module to reach its profiler.
#[derive(Debug)]
pub struct SessionGlobals(pub(crate) Py<PyDict>);

impl SessionGlobals {
    /// Whether both are the same globals (the same session's code). No GIL needed.
    pub fn same(&self, other: &SessionGlobals) -> bool {
        self.0.as_ptr() == other.0.as_ptr()
    }
}

fn profiler<'py>(py: Python<'py>, globals: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    if let Some(p) = globals.get_item(PROFILER)? {
        return Ok(p);
    }
    let p = py.import("cProfile")?.getattr("Profile")?.call0()?;
    globals.set_item(PROFILER, &p)?;
    Ok(p)
}

/// While alive, the session's profiler records this thread's Python calls.
pub(crate) struct Profiling<'py>(Option<Bound<'py, PyAny>>);

impl<'py> Profiling<'py> {
    /// Enables the profiler of the session owning `steps`' callbacks when
    /// `ProfileExecutions` is on.
    pub(crate) fn start(py: Python<'py>, steps: &[std::sync::Arc<PyStep>]) -> Self {
        let on = crate::services::get().is_some_and(|h| h.profile_executions());
        Profiling(on.then(|| Self::enable(py, steps)).flatten())
    }

    fn enable(py: Python<'py>, steps: &[std::sync::Arc<PyStep>]) -> Option<Bound<'py, PyAny>> {
        // The first callback defined by the session's script, or wrapped by one of the
        // prelude's (`aggregateby`'s lambdas hold the script's callbacks in their closure).
        let globals = steps.iter().filter_map(|s| s.callable()).find_map(|f| {
            let f = f.bind(py);
            script_globals(f).or_else(|| {
                let cells = f.getattr("__closure__").ok()?;
                cells
                    .try_iter()
                    .ok()?
                    .filter_map(|c| c.ok()?.getattr("cell_contents").ok())
                    .find_map(|inner| script_globals(&inner))
            })
        })?;
        let p = profiler(py, &globals).ok()?;
        p.call_method0("enable").ok()?;
        Some(p)
    }
}

/// The globals of `f` when a session's script defined it (wrappers from Gearshift's own
/// modules have other globals).
fn script_globals<'py>(f: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let g = f.getattr("__globals__").ok()?.cast_into::<PyDict>().ok()?;
    let name = g.get_item("__name__").ok()??;
    (name.extract::<String>().ok()? == "__main__").then_some(g)
}

impl Drop for Profiling<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.call_method0("disable");
        }
    }
}

/// `RG.PYPROFILE STATS`: the pstats report; an error when nothing was profiled.
pub fn stats(g: &SessionGlobals) -> Result<String, String> {
    crate::gil::request(|py| {
        let globals = g.0.bind(py);
        let p = profiler(py, globals)?;
        let stream = py.import("io")?.getattr("StringIO")?.call0()?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("stream", &stream)?;
        let stats = py
            .import("pstats")?
            .getattr("Stats")?
            .call((p,), Some(&kwargs))?;
        stats.call_method1("sort_stats", ("tottime",))?;
        stats.call_method0("print_stats")?;
        stats.call_method0("print_callers")?;
        stats.call_method0("print_callees")?;
        stream.call_method0("getvalue")?.extract()
    })
}

/// `RG.PYPROFILE RESET`: a fresh profiler for the session.
pub fn reset(g: &SessionGlobals) -> Result<(), String> {
    crate::gil::request(|py| {
        let p = py.import("cProfile")?.getattr("Profile")?.call0()?;
        g.0.bind(py).set_item(PROFILER, p)
    })
}
