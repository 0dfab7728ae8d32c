//! Sessions: running an RG.PYEXECUTE script in its own globals (a copy of the prelude's),
//! and collecting what it asks for: the one `run()` it may request (REFERENCE §1.1, §5) or
//! the registrations it prepares.
//!
//! Top layer: depends on `request` (building the run), `cluster` (its wire form),
//! `nested` (the `GearsFuture` `run()` returns), `register`, `profile`, `atomic`, `errors`
//! and `gil`.

use std::cell::RefCell;
use std::ffi::CString;
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{error_text, GearsError};
use crate::request::{build_request, RunRequest};

/// How a script ended.
pub enum ScriptOutcome {
    /// Neither run() nor register(): reply OK.
    NoRun,
    Run(RunRequest),
    /// A Python exception or a Gears error, as reply text.
    Error(String),
    /// The script prepared registrations (and no run).
    Registered(Vec<crate::register::RegisterRequest>),
    /// The script prepared registrations and asked for a run: 1.2 keeps the registrations
    /// and replies with the run's result.
    RegisteredAndRun(Vec<crate::register::RegisterRequest>, RunRequest),
}

thread_local! {
    /// The `run()` of the script running on this thread: `None` outside a script,
    /// `Some(None)` until it asks for one.
    static PENDING: RefCell<Option<Option<RunRequest>>> = const { RefCell::new(None) };
}

/// The prelude's globals, which every session starts from (a copy).
static PRELUDE_GLOBALS: OnceLock<Py<PyDict>> = OnceLock::new();

/// Keeps the prelude's globals (once, when the runtime loads).
pub(crate) fn set_prelude(d: Py<PyDict>) {
    let _ = PRELUDE_GLOBALS.set(d);
}

/// Runs `code` as a new session and returns what it asked for; `control`, if given, can
/// stop the body while it runs.
pub fn run_script(code: &str, control: Option<&crate::ExecControl>) -> ScriptOutcome {
    let Ok(code) = CString::new(code) else {
        return ScriptOutcome::Error(
            "Error type: <class 'ValueError'>, Value: source code string cannot contain null bytes"
                .into(),
        );
    };
    crate::gil::script(|py| {
        let globals = match session_globals(py) {
            Ok(g) => g,
            Err(e) => return ScriptOutcome::Error(error_text(py, &e)),
        };
        PENDING.with(|p| *p.borrow_mut() = Some(None));
        crate::register::begin();
        let atomic_before = crate::atomic::atomic_open();
        // While the body runs, `control` can stop it (`ExecControl::interrupt_thread`).
        if let Some(c) = control {
            c.claim_thread_stoppable(py);
        }
        let res = py.run(&code, Some(&globals), None);
        if let Some(c) = control {
            c.release_thread_stoppable(py);
        }
        if !atomic_before {
            crate::atomic::release_leaked_atomic();
        }
        let pending = PENDING.with(|p| p.borrow_mut().take()).flatten();
        let mut registrations = crate::register::take();
        for r in &mut registrations {
            r.globals = Some(crate::profile::SessionGlobals(globals.clone().unbind()));
        }
        match res {
            Err(e) => ScriptOutcome::Error(error_text(py, &e)),
            Ok(()) => match pending {
                None if registrations.is_empty() => ScriptOutcome::NoRun,
                None => ScriptOutcome::Registered(registrations),
                Some(run) if registrations.is_empty() => ScriptOutcome::Run(run),
                Some(run) => ScriptOutcome::RegisteredAndRun(registrations, run),
            },
        }
    })
}

fn session_globals(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let prelude = PRELUDE_GLOBALS
        .get()
        .ok_or_else(|| GearsError::new_err("Gearshift Python runtime not initialised"))?;
    let g = prelude.bind(py).copy()?;
    g.set_item("__name__", "__main__")?;
    Ok(g)
}

/// True while a script's body runs on this thread (its `run()` is the script's run).
pub(crate) fn in_script() -> bool {
    PENDING.with(|p| p.borrow().is_some())
}

/// Records the script's `run()` and returns its `GearsFuture` (completed when the run
/// ends); a second one is an error (1.2's text).
pub(crate) fn request_run<'py>(
    reader: &str,
    arg: &Bound<'py, PyAny>,
    steps: &Bound<'py, PyList>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    if PENDING.with(|p| p.borrow().as_ref().map(|r| r.is_some()).unwrap_or(false)) {
        return Err(GearsError::new_err(
            "Can not run more then 1 executions in a single script",
        ));
    }
    let wire = crate::cluster::wire_of(arg.py(), reader, arg, steps, kwargs)?;
    let mut req = build_request(reader, arg, steps, kwargs, wire)?;
    let fut = crate::nested::new_future(arg.py())?;
    req.on_done = Some(crate::nested::completer(&fut)?);
    PENDING.with(|p| *p.borrow_mut() = Some(Some(req)));
    Ok(fut)
}
