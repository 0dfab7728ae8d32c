//! The native module `_gearshift` behind the runtime API of every session: `execute`,
//! `log`, `configGet`, `hashtag`, and `run` (which hands a built plan to the session).
//!
//! Top layer: the API reaches everything a script may ask for (`session`, `register`,
//! `time_event`, `cluster`, `atomic`, `scope`, `caller`, `link`, `services`, `convert`,
//! `errors`); nothing in the crate depends on it but `lib`.

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::convert::{bytes_list, bytes_to_py};
use crate::errors::{FlatError, GearsError};
use crate::services::{self, CallReply};
use crate::session;

/// `execute(command, *args)`: runs a Redis command. The GIL is released before the Redis
/// lock is taken (DESIGN.md §5); an error reply raises `GearsError`.
#[pyfunction]
#[pyo3(signature = (*args))]
fn execute<'py>(py: Python<'py>, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    // 1.2 answered `[]`; a call that names no command is a bug to report (docs/compat.md).
    if args.is_empty() {
        return Err(GearsError::new_err(
            "wrong number of arguments for 'execute' command",
        ));
    }
    if !args.get_item(0)?.is_instance_of::<PyString>() {
        return Err(GearsError::new_err("the given command must be a string"));
    }
    let argv = args
        .iter()
        .map(|a| arg_bytes(&a))
        .collect::<PyResult<Vec<_>>>()?;
    let h = services::get().ok_or_else(|| GearsError::new_err("no Redis host"))?;
    // Read before the GIL is released: a coroutine's identity lives in its context.
    let caller = crate::caller::current(py);
    let reply = py.detach(|| h.call(caller.as_ref(), &argv));
    reply_to_py(py, reply)
}

fn arg_bytes(a: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    // A plain str is its own str(): its text, without the str() call and formatting.
    if let Ok(s) = a.cast_exact::<PyString>() {
        return Ok(s.to_string_lossy().as_bytes().to_vec());
    }
    if let Ok(b) = a.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = a.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    Ok(a.str()?.to_string().into_bytes())
}

fn reply_to_py(py: Python<'_>, r: CallReply) -> PyResult<Bound<'_, PyAny>> {
    Ok(match r {
        CallReply::Nil => py.None().into_bound(py),
        CallReply::Int(i) => i.into_bound_py_any(py)?,
        CallReply::Double(d) => d.into_bound_py_any(py)?,
        CallReply::Bulk(b) => bytes_to_py(py, &b)?,
        CallReply::Status(s) => s.into_bound_py_any(py)?,
        CallReply::Error(e) => return Err(GearsError::new_err(e)),
        CallReply::Array(items) => {
            let objs = items
                .into_iter()
                .map(|i| reply_to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, objs)?.into_any()
        }
    })
}

/// `log(msg, level='notice')`; the legacy form `log(level, msg)` still works (with a
/// deprecation warning in the Redis log, as in 1.2). Lines carry the `GEARS: ` prefix.
#[pyfunction]
#[pyo3(signature = (*args, **kwargs))]
fn log(args: &Bound<'_, PyTuple>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
    const LEVELS: [&str; 4] = ["debug", "verbose", "notice", "warning"];
    let mut level = match kwargs {
        Some(k) => k.get_item("level")?,
        None => None,
    };
    let msg = match args.len() {
        1 => args.get_item(0)?,
        2 => {
            if let Some(h) = services::get() {
                h.log(
                    "warning",
                    "Specify log level as the first argument to log function is depricated, \
                     use key argument 'level' instead",
                );
            }
            level = Some(args.get_item(0)?);
            args.get_item(1)?
        }
        _ => {
            return Err(GearsError::new_err(
                "log function must get a log message as input",
            ))
        }
    };
    let text = msg
        .cast::<PyString>()
        .map_err(|_| GearsError::new_err("Log message must be a string"))?
        .to_string_lossy()
        .into_owned();
    let level = match level {
        None => "notice".to_owned(),
        Some(l) => {
            let l: String = l
                .cast::<PyString>()
                .map(|s| s.to_string_lossy().into_owned())
                .map_err(|_| {
                    GearsError::new_err("Log level must be a sting (debug/verbose/notice/warning)")
                })?;
            if !LEVELS.contains(&l.as_str()) {
                return Err(GearsError::new_err(
                    "Log level should be one of the following : debug,verbose,notice,warning",
                ));
            }
            l
        }
    };
    if let Some(h) = services::get() {
        h.log(&level, &format!("GEARS: {text}"));
    }
    Ok(())
}

/// `configGet(key)`: a value of the extra config dictionary, or None.
#[pyfunction(name = "configGet")]
fn config_get(key: &str) -> Option<String> {
    services::get().and_then(|h| h.config_get(key))
}

/// `hashtag()`: a string that hashes to this shard's first slot (`06S` is slot 0).
#[pyfunction]
fn hashtag() -> String {
    crate::cluster::hashtag()
}

/// `_owns_key(key)`: whether this shard owns `key` (a StreamReader run reads a stream on
/// its owner only).
#[pyfunction(name = "_owns_key")]
fn owns_key(key: &Bound<'_, PyAny>) -> PyResult<bool> {
    let bytes: Vec<u8> = match key.extract::<String>() {
        Ok(s) => s.into_bytes(),
        Err(_) => key.extract::<Vec<u8>>()?,
    };
    Ok(crate::cluster::owns_key(&bytes))
}

/// `isAsyncAllow()`: true inside an execution that may wait for async records: one not
/// holding the Redis lock, or a `sync` keyspace event outside MULTI/Lua (its wait continues
/// in the background). Other sync runs, MULTI/Lua-triggered runs and atomic blocks: false.
#[pyfunction(name = "isAsyncAllow")]
fn is_async_allow() -> bool {
    crate::scope::in_execution()
        && (crate::scope::awaits_deferred()
            || !services::get().is_some_and(|h| h.holds_redis_lock()))
}

/// `run(reader, arg, steps, kwargs)`: called by `GearsBuilder.run`. In a script's body it
/// is the script's run; anywhere else a nested run that starts now. Either way it returns
/// the run's `GearsFuture`.
#[pyfunction]
fn run<'py>(
    reader: &str,
    arg: &Bound<'py, PyAny>,
    steps: &Bound<'py, PyList>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    // A sync registration fired by the script's own write runs its steps on this thread:
    // a run() there is nested, not the script's.
    if session::in_script() && !crate::scope::in_execution() {
        session::request_run(reader, arg, steps, kwargs)
    } else {
        crate::nested::start(reader, arg, steps, kwargs)
    }
}

/// `call_next(*args)`: inside a command hook, runs the next hook or the real command with
/// `args` (the command's arguments, without its name).
#[pyfunction]
#[pyo3(signature = (*args))]
fn call_next<'py>(py: Python<'py>, args: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let argv = args
        .iter()
        .map(|a| arg_bytes(&a))
        .collect::<PyResult<Vec<_>>>()?;
    let h = services::get().ok_or_else(|| GearsError::new_err("Can not get CommandHook ctx"))?;
    match py.detach(|| h.call_next(&argv)) {
        Some(reply) => reply_to_py(py, reply),
        None => Err(GearsError::new_err("Can not get CommandHook ctx")),
    }
}

/// `get_command()`: the argv of the hooked (or linked) command.
#[pyfunction]
fn get_command(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let argv = services::get()
        .and_then(|h| h.hooked_command())
        .or_else(|| crate::link::current().map(|l| l.argv()))
        .ok_or_else(|| GearsError::new_err("Can not get command ctx"))?;
    bytes_list(py, argv.iter().map(|a| &a[..]))
}

/// `override_reply(value)`: replaces the reply of the command that triggered this
/// execution (KeysReader `commands=`).
#[pyfunction]
fn override_reply(value: &Bound<'_, PyAny>) -> PyResult<()> {
    let link =
        crate::link::current().ok_or_else(|| GearsError::new_err("Can not get command ctx"))?;
    link.override_reply(crate::convert::py_to_datum(value))
        .map_err(GearsError::new_err)
}

/// Builds the `_gearshift` module.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "_gearshift")?;
    m.add_function(wrap_pyfunction!(execute, &m)?)?;
    m.add_function(wrap_pyfunction!(log, &m)?)?;
    m.add_function(wrap_pyfunction!(config_get, &m)?)?;
    m.add_function(wrap_pyfunction!(hashtag, &m)?)?;
    m.add_function(wrap_pyfunction!(owns_key, &m)?)?;
    m.add_function(wrap_pyfunction!(is_async_allow, &m)?)?;
    m.add_function(wrap_pyfunction!(run, &m)?)?;
    m.add_function(wrap_pyfunction!(crate::atomic::atomic_enter, &m)?)?;
    crate::time_event::add_to(&m)?;
    m.add_function(wrap_pyfunction!(call_next, &m)?)?;
    m.add_function(wrap_pyfunction!(get_command, &m)?)?;
    m.add_function(wrap_pyfunction!(override_reply, &m)?)?;
    m.add_function(wrap_pyfunction!(crate::atomic::atomic_exit, &m)?)?;
    m.add_function(wrap_pyfunction!(crate::atomic::atomic_open_py, &m)?)?;
    crate::future::add_to(&m)?;
    m.add_function(wrap_pyfunction!(crate::register::register, &m)?)?;
    crate::caller::add_to(&m)?;
    m.add("GearsError", py.get_type::<GearsError>())?;
    m.add("FlatError", py.get_type::<FlatError>())?;
    Ok(m)
}
