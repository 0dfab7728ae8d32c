//! `register()`: collects the registrations a script prepares. They are installed by the
//! module after the script ends (REFERENCE §4.2: "register() inside a script only prepares").
//!
//! Top layer: depends on `plan`, `profile` (the session's globals), `cluster` (the pickle
//! check), `convert`, `services`, `errors` and `gil`.

use std::cell::RefCell;

use engine::plan::Plan;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::GearsError;
use crate::plan::build_plan;

/// A registration prepared by a script (KeysReader).
#[derive(Debug)]
pub struct RegisterRequest {
    pub reader: String,
    /// Trailing `*` = prefix match, else exact key.
    pub prefix: String,
    pub event_types: Option<Vec<String>>,
    pub key_types: Option<Vec<String>>,
    pub read_value: bool,
    /// `sync`, `async` or `async_local`.
    pub mode: String,
    pub desc: Option<String>,
    pub plan: Plan,
    pub on_registered: Option<OnRegistered>,
    /// CommandReader: the trigger name.
    pub trigger: Option<String>,
    /// CommandReader: run in arrival order.
    pub inorder: bool,
    /// CommandReader: the hooked command (lowercase).
    pub hook: Option<String>,
    /// CommandReader hook: fire only when a key argument starts with this.
    pub keyprefix: Option<String>,
    /// KeysReader: only events raised by these commands (lowercase) trigger, linked to them.
    pub commands: Option<Vec<String>>,
    /// StreamReader settings.
    pub stream: Option<StreamOptions>,
    /// The script's globals (for the session's profiler); set when the script ends.
    pub globals: Option<crate::profile::SessionGlobals>,
    /// The id `register()` returned (reserved from the host), used when it is installed.
    pub id: Option<String>,
    /// Made from a running step: its arguments cloudpickled (`register_from_wire` rebuilds
    /// it), as no session source makes it. None otherwise, or without cloudpickle.
    pub wire: Option<Vec<u8>>,
}

/// StreamReader register() settings (REFERENCE §2.2, §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// Entries per execution.
    pub batch: u64,
    /// Run a partial batch this many ms after its first entry (0: never).
    pub duration_ms: u64,
    /// `continue`, `abort` or `retry`.
    pub on_failed_policy: String,
    /// Seconds before a retry.
    pub retry_interval_s: u64,
    /// Delete processed entries.
    pub trim: bool,
}

fn opt_str(opts: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<String>> {
    opts.get_item(key)?
        .filter(|v| !v.is_none())
        .map(|v| v.extract())
        .transpose()
}

fn stream_options(opts: &Bound<'_, PyDict>) -> PyResult<Option<StreamOptions>> {
    let Some(batch) = opts.get_item("batch")? else {
        return Ok(None);
    };
    let get_u64 = |k: &str, d: u64| -> PyResult<u64> {
        Ok(opts
            .get_item(k)?
            .map(|v| v.extract::<u64>())
            .transpose()?
            .unwrap_or(d))
    };
    Ok(Some(StreamOptions {
        batch: batch.extract::<u64>()?.max(1),
        duration_ms: get_u64("duration", 0)?,
        on_failed_policy: opts
            .get_item("onFailedPolicy")?
            .map(|v| v.extract::<String>())
            .transpose()?
            .unwrap_or_else(|| "continue".to_owned()),
        retry_interval_s: get_u64("onFailedRetryInterval", 1)?,
        trim: opts
            .get_item("trimStream")?
            .map(|v| v.is_truthy())
            .transpose()?
            .unwrap_or(true),
    }))
}

thread_local! {
    static PREPARED: RefCell<Option<Vec<RegisterRequest>>> = const { RefCell::new(None) };
}

/// Starts collecting for a script on this thread.
pub(crate) fn begin() {
    PREPARED.with(|p| *p.borrow_mut() = Some(Vec::new()));
}

/// Ends collecting; returns what the script registered.
pub(crate) fn take() -> Vec<RegisterRequest> {
    PREPARED.with(|p| p.borrow_mut().take()).unwrap_or_default()
}

fn str_list(v: Option<Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => Ok(Some(v.extract()?)),
    }
}

/// `_gearshift.register(reader, prefix, steps, opts, desc)`, called by
/// `GearsBuilder.register` after it validated the arguments. Returns the registration's id
/// (reserved now, as RG.DUMPREGISTRATIONS will show it), or None where the host reserves
/// none (a session re-run while loading keeps its saved ids).
#[pyfunction]
#[pyo3(signature = (reader, prefix, steps, opts, desc = None))]
pub(crate) fn register(
    reader: &str,
    prefix: &str,
    steps: &Bound<'_, PyList>,
    opts: &Bound<'_, PyDict>,
    desc: Option<String>,
) -> PyResult<Option<String>> {
    let req = request_of(reader, prefix, steps, opts, desc)?;
    let req = PREPARED.with(|p| match p.borrow_mut().as_mut() {
        Some(list) => {
            let mut req = req;
            req.id = crate::services::get().and_then(|h| h.reserve_registration_id());
            let id = req.id.clone();
            list.push(req);
            Err(id)
        }
        None => Ok(req),
    });
    match req {
        Err(id) => Ok(id),
        Ok(mut req) => {
            let py = steps.py();
            let args = (reader, prefix, steps, opts, req.desc.clone()).into_pyobject(py)?;
            req.wire = wire_of(py, args);
            from_step(steps.py(), req).map(Some)
        }
    }
}

/// The registration `register()` asks for.
fn request_of(
    reader: &str,
    prefix: &str,
    steps: &Bound<'_, PyList>,
    opts: &Bound<'_, PyDict>,
    desc: Option<String>,
) -> PyResult<RegisterRequest> {
    let plan = build_plan(steps)?;
    let on_registered = opts.get_item("onRegistered")?.filter(|f| !f.is_none());
    crate::cluster::check_picklable(steps, on_registered)?;
    let req = RegisterRequest {
        reader: reader.to_owned(),
        prefix: prefix.to_owned(),
        event_types: str_list(opts.get_item("eventTypes")?)?,
        key_types: str_list(opts.get_item("keyTypes")?)?,
        read_value: opts
            .get_item("readValue")?
            .map(|v| v.is_truthy())
            .transpose()?
            .unwrap_or(true),
        mode: opts
            .get_item("mode")?
            .map(|v| v.extract())
            .transpose()?
            .unwrap_or_else(|| "async".to_owned()),
        desc,
        plan,
        on_registered: opts
            .get_item("onRegistered")?
            .filter(|f| !f.is_none())
            .map(|f| OnRegistered(f.unbind())),
        trigger: opts
            .get_item("trigger")?
            .filter(|t| !t.is_none())
            .map(|t| t.extract())
            .transpose()?,
        inorder: opts
            .get_item("inorder")?
            .map(|v| v.is_truthy())
            .transpose()?
            .unwrap_or(false),
        stream: stream_options(opts)?,
        hook: opt_str(opts, "hook")?.map(|h| h.to_ascii_lowercase()),
        keyprefix: opt_str(opts, "keyprefix")?,
        commands: str_list(opts.get_item("commands")?)?
            .map(|v| v.into_iter().map(|c| c.to_ascii_lowercase()).collect()),
        globals: None,
        id: None,
        wire: None,
    };
    Ok(req)
}

/// A step's registration arguments, cloudpickled (None without cloudpickle: the
/// registration then lives in memory only).
fn wire_of(py: Python<'_>, args: Bound<'_, pyo3::types::PyTuple>) -> Option<Vec<u8>> {
    let dumped = py
        .import("cloudpickle")
        .ok()?
        .call_method1("dumps", (args,))
        .ok()?;
    dumped.extract::<Vec<u8>>().ok()
}

/// Rebuilds a registration made from a step from its wire form (RDB load, replica);
/// `Err`: the reason it cannot be rebuilt.
pub fn register_from_wire(bytes: &[u8]) -> Result<RegisterRequest, String> {
    crate::gil::request(|py| {
        let args = py
            .import("cloudpickle")?
            .call_method1("loads", (crate::convert::py_bytes(py, bytes)?,))?;
        let args = args.cast::<pyo3::types::PyTuple>()?;
        let reader: String = args.get_item(0)?.extract()?;
        let prefix: String = args.get_item(1)?.extract()?;
        let steps = args.get_item(2)?;
        let opts = args.get_item(3)?;
        let desc: Option<String> = args.get_item(4)?.extract()?;
        let mut req = request_of(
            &reader,
            &prefix,
            steps.cast::<PyList>()?,
            opts.cast::<PyDict>()?,
            desc,
        )?;
        req.wire = Some(bytes.to_vec());
        Ok(req)
    })
}

/// `register()` called from a running step: the registration joins the session whose
/// script defined the code calling (REFERENCE §12.7), installed at once.
fn from_step(py: Python<'_>, mut req: RegisterRequest) -> PyResult<String> {
    let not_here = || GearsError::new_err("register() can only be called from RG.PYEXECUTE");
    let globals = calling_script_globals(py).ok_or_else(not_here)?;
    let install = *STEP_REGISTRAR.get().ok_or_else(not_here)?;
    req.globals = Some(crate::profile::SessionGlobals(globals.unbind()));
    let caller = crate::caller::current(py);
    py.detach(|| install(req, caller))
        .map_err(GearsError::new_err)
}

/// How the host installs a registration made from a step: `req.globals` are the globals
/// of the code calling, `caller` who it runs as; it returns the registration's id or an
/// error text. Called with the GIL released.
pub type StepRegistrar =
    fn(RegisterRequest, Option<crate::caller::RunAs>) -> Result<String, String>;

static STEP_REGISTRAR: std::sync::OnceLock<StepRegistrar> = std::sync::OnceLock::new();

/// Installs the host's [`StepRegistrar`] (once, at load).
pub fn set_step_registrar(f: StepRegistrar) {
    let _ = STEP_REGISTRAR.set(f);
}

/// The globals of the innermost frame run by a session's script code (`__name__` is
/// `__main__` there; the prelude's and other modules' frames have their own).
fn calling_script_globals(py: Python<'_>) -> Option<Bound<'_, PyDict>> {
    let mut frame = py.import("sys").ok()?.call_method0("_getframe").ok()?;
    while !frame.is_none() {
        let globals = frame
            .getattr("f_globals")
            .ok()?
            .cast_into::<PyDict>()
            .ok()?;
        let name = globals.get_item("__name__").ok().flatten();
        if name.is_some_and(|n| n.extract::<String>().is_ok_and(|n| n == "__main__")) {
            return Some(globals);
        }
        frame = frame.getattr("f_back").ok()?;
    }
    None
}

/// A registration's `onRegistered` callback.
#[derive(Debug)]
pub struct OnRegistered(Py<PyAny>);

impl OnRegistered {
    /// Calls it (taking the GIL); exceptions are only logged, as in 1.2.
    pub fn call(&self) {
        crate::gil::callback(&self.0, "onRegistered failed");
    }
}
