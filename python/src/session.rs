//! Sessions: running an RG.PYEXECUTE script in its own globals, and collecting the one
//! `run()` it may request (REFERENCE §1.1, §5).

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::sync::OnceLock;

use engine::plan::Plan;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFunction, PyList, PyString};

use crate::errors::{error_text, GearsError};
use crate::reader::GeneratorSource;
use crate::steps::build_plan;

/// Where a run reads its input.
pub enum ReaderSpec {
    /// KeysReader: glob `pattern` (or exact key with `no_scan`).
    Keys {
        pattern: Vec<u8>,
        no_scan: bool,
        read_value: bool,
    },
    /// KeysOnlyReader without a pattern generator: key names straight from the scan.
    KeyNames { pattern: Vec<u8>, no_scan: bool },
    /// PythonReader (also ShardsIDReader, StreamReader.run and generated KeysOnlyReader).
    Python(GeneratorSource),
}

/// A `run()` requested by a script.
pub struct RunRequest {
    pub reader: ReaderSpec,
    pub plan: Plan,
    /// The run for the other shards of a cluster (`None`: it runs on this shard only).
    pub wire: Option<Vec<u8>>,
}

/// How a script ended.
pub enum ScriptOutcome {
    /// Neither run() nor register(): reply OK.
    NoRun,
    Run(RunRequest),
    /// A Python exception or a Gears error, as reply text.
    Error(String),
    /// The script prepared registrations (and no run).
    Registered(Vec<crate::register::RegisterRequest>),
}

thread_local! {
    static PENDING: RefCell<Option<Option<RunRequest>>> = const { RefCell::new(None) };
    static IN_EXECUTION: Cell<bool> = const { Cell::new(false) };
    /// A `sync` event runs on this thread whose awaits continue in the background.
    static AWAITS_DEFERRED: Cell<bool> = const { Cell::new(false) };
}

static PRELUDE_GLOBALS: OnceLock<Py<PyDict>> = OnceLock::new();

pub(crate) fn set_prelude(d: Py<PyDict>) {
    let _ = PRELUDE_GLOBALS.set(d);
}

pub(crate) fn in_execution() -> bool {
    IN_EXECUTION.with(|c| c.get())
}

/// True while a `sync` event that may await (in the background) runs on this thread.
pub(crate) fn awaits_deferred() -> bool {
    AWAITS_DEFERRED.with(|c| c.get())
}

/// Marks (or unmarks) this thread as running a `sync` event that may await; returns the
/// previous mark, to restore.
pub(crate) fn set_awaits_deferred(on: bool) -> bool {
    AWAITS_DEFERRED.with(|c| c.replace(on))
}

/// Runs `code` as a new session and returns what it asked for.
pub fn run_script(code: &str) -> ScriptOutcome {
    let Ok(code) = CString::new(code) else {
        return ScriptOutcome::Error(
            "Error type: <class 'ValueError'>, Value: source code string cannot contain null bytes"
                .into(),
        );
    };
    Python::attach(|py| {
        let globals = match session_globals(py) {
            Ok(g) => g,
            Err(e) => return ScriptOutcome::Error(error_text(py, &e)),
        };
        PENDING.with(|p| *p.borrow_mut() = Some(None));
        crate::register::begin();
        let atomic_before = crate::atomic::atomic_open();
        let res = py.run(&code, Some(&globals), None);
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
            Ok(()) if pending.is_none() && !registrations.is_empty() => {
                ScriptOutcome::Registered(registrations)
            }
            Ok(()) => pending
                .map(ScriptOutcome::Run)
                .unwrap_or(ScriptOutcome::NoRun),
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

/// Records the script's `run()`; a second one is an error (1.2's text).
pub(crate) fn request_run(
    reader: &str,
    arg: &Bound<'_, PyAny>,
    steps: &Bound<'_, PyList>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let in_script = PENDING.with(|p| p.borrow().is_some());
    if !in_script {
        return Err(GearsError::new_err(
            "run() inside an execution is not supported by this Gearshift build yet",
        ));
    }
    if PENDING.with(|p| p.borrow().as_ref().map(|r| r.is_some()).unwrap_or(false)) {
        return Err(GearsError::new_err(
            "Can not run more then 1 executions in a single script",
        ));
    }
    let wire = crate::cluster::wire_of(arg.py(), reader, arg, steps, kwargs)?;
    let req = build_request(reader, arg, steps, kwargs, wire)?;
    PENDING.with(|p| *p.borrow_mut() = Some(Some(req)));
    Ok(())
}

pub(crate) fn build_request(
    reader: &str,
    arg: &Bound<'_, PyAny>,
    steps: &Bound<'_, PyList>,
    kwargs: &Bound<'_, PyDict>,
    wire: Option<Vec<u8>>,
) -> PyResult<RunRequest> {
    Ok(RunRequest {
        reader: reader_spec(reader, arg, kwargs)?,
        plan: build_plan(steps)?,
        wire,
    })
}

fn reader_spec(
    reader: &str,
    arg: &Bound<'_, PyAny>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<ReaderSpec> {
    match reader {
        "KeysReader" => {
            let pattern = arg
                .cast::<PyString>()
                .map_err(|_| GearsError::new_err("regex argument must be a string"))?
                .to_string_lossy()
                .into_owned()
                .into_bytes();
            let no_scan = bool_kwarg(kwargs, "noScan", false, "exactMatch value is not boolean")?;
            let read_value =
                bool_kwarg(kwargs, "readValue", true, "readValue value is not boolean")?;
            Ok(ReaderSpec::Keys {
                pattern,
                no_scan,
                read_value,
            })
        }
        "KeysOnlyReader" => Ok(ReaderSpec::KeyNames {
            pattern: arg.str()?.to_string().into_bytes(),
            no_scan: bool_kwarg(kwargs, "noScan", false, "noScan value is not boolean")?,
        }),
        "PythonReader" => {
            if !arg.is_instance_of::<PyFunction>() {
                return Err(GearsError::new_err("pyreader argument must be a function"));
            }
            Ok(ReaderSpec::Python(GeneratorSource::new(
                arg.clone().unbind(),
            )))
        }
        // StreamReader.run is a PythonReader generator by the time it gets here (prelude).
        _ => Err(GearsError::new_err(
            "Given reader do not support run or not exists",
        )),
    }
}

/// A boolean keyword argument: absent → `default`, not a bool → `error` (1.2's checks).
fn bool_kwarg(
    kwargs: &Bound<'_, PyDict>,
    name: &str,
    default: bool,
    error: &str,
) -> PyResult<bool> {
    match kwargs.get_item(name)? {
        None => Ok(default),
        Some(v) if v.is_instance_of::<PyBool>() => v.is_truthy(),
        Some(_) => Err(GearsError::new_err(error.to_owned())),
    }
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
