//! What the Python layer knows of the cluster: whether runs are distributed, and this
//! shard's `hashtag()`. The module sets it from the topology; the default is standalone.
//!
//! Also the wire form of a `run()`: its reader, argument, steps and options, cloudpickled
//! (1.2 ships callbacks the same way), rebuilt on every other shard into the same plan.
//!
//! Top layer: depends on `request` (rebuilding a shipped run), `convert`, `errors` and `gil`.

use std::sync::RwLock;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::request::{build_request, RunRequest};

struct View {
    hashtag: String,
    /// The slot ranges this shard owns (`first..=last`).
    owned: Vec<(u16, u16)>,
}

static VIEW: RwLock<Option<View>> = RwLock::new(None);

/// Cluster mode on (with this shard's hashtag and owned slot ranges) or off (`None`).
pub fn set_cluster(view: Option<(String, Vec<(u16, u16)>)>) {
    if let Ok(mut v) = VIEW.write() {
        *v = view.map(|(hashtag, owned)| View { hashtag, owned });
    }
}

/// Whether this shard owns `key` (always outside a cluster).
pub(crate) fn owns_key(key: &[u8]) -> bool {
    let slot = engine::shuffle::key_hash_slot(key);
    VIEW.read().ok().is_none_or(|v| {
        v.as_ref()
            .is_none_or(|v| v.owned.iter().any(|&(a, b)| (a..=b).contains(&slot)))
    })
}

pub(crate) fn is_cluster() -> bool {
    VIEW.read().map(|v| v.is_some()).unwrap_or(false)
}

/// `hashtag()`: a string that hashes to this shard's lowest slot (`06S`, slot 0, standalone).
pub(crate) fn hashtag() -> String {
    VIEW.read()
        .ok()
        .and_then(|v| v.as_ref().map(|v| v.hashtag.clone()))
        .unwrap_or_else(|| "06S".to_owned())
}

/// The run's wire form, or `None` when it stays on this shard (standalone, `async_local`).
pub(crate) fn wire_of(
    py: Python<'_>,
    reader: &str,
    arg: &Bound<'_, PyAny>,
    steps: &Bound<'_, PyList>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<Option<Vec<u8>>> {
    let local = kwargs
        .get_item("mode")?
        .is_some_and(|m| m.extract::<String>().is_ok_and(|m| m == "async_local"));
    if !is_cluster() || local {
        return Ok(None);
    }
    let spec = PyTuple::new(
        py,
        [
            PyString::new(py, reader).into_any(),
            arg.clone(),
            steps.clone().into_any(),
            kwargs.clone().into_any(),
        ],
    )?;
    let cloudpickle = py.import("cloudpickle").map_err(|_| {
        crate::errors::GearsError::new_err(
            "running on a cluster needs the cloudpickle package in the server's Python \
             (python3 -m pip install cloudpickle), or run(mode='async_local')",
        )
    })?;
    let dumped = match cloudpickle.call_method1("dumps", (spec,)) {
        Ok(d) => d,
        Err(e) => return Err(serialize_error(py, &cloudpickle, arg, steps, e)),
    };
    Ok(Some(dumped.cast::<PyBytes>()?.as_bytes().to_vec()))
}

/// 1.2's error for a plan that cannot be shipped, naming the first callback (the reader's
/// argument, then the steps' callables) that cloudpickle refuses.
fn serialize_error(
    py: Python<'_>,
    cloudpickle: &Bound<'_, PyModule>,
    arg: &Bound<'_, PyAny>,
    steps: &Bound<'_, PyList>,
    err: PyErr,
) -> PyErr {
    let callables = std::iter::once(arg.clone()).chain(step_callables(steps));
    match first_unpicklable(cloudpickle, callables) {
        Some(e) => e,
        None => serialized_error(py, "<plan>".to_owned(), err),
    }
}

/// The callables of a `GearsBuilder`'s step tuples (`(op, args...)`).
fn step_callables<'py>(steps: &Bound<'py, PyList>) -> Vec<Bound<'py, PyAny>> {
    let mut callables = Vec::new();
    for step in steps.iter() {
        if let Ok(t) = step.cast::<PyTuple>() {
            callables.extend(t.iter().skip(1).filter(|x| x.is_callable()));
        }
    }
    callables
}

/// 1.2's error for the first of `callables` that cloudpickle refuses, if any.
fn first_unpicklable<'py>(
    cloudpickle: &Bound<'py, PyModule>,
    callables: impl IntoIterator<Item = Bound<'py, PyAny>>,
) -> Option<PyErr> {
    let (c, e) = callables
        .into_iter()
        .filter(|c| c.is_callable())
        .find_map(|c| {
            cloudpickle
                .call_method1("dumps", (&c,))
                .err()
                .map(|e| (c, e))
        })?;
    let name = c
        .getattr("__name__")
        .and_then(|n| n.extract::<String>())
        .unwrap_or_else(|_| c.to_string());
    Some(serialized_error(c.py(), name, e))
}

fn serialized_error(py: Python<'_>, name: String, e: PyErr) -> PyErr {
    let text = e.value(py).to_string();
    crate::errors::GearsError::new_err(format!(
        "Error occured when serialized a python callback, callback={name} error={text}"
    ))
}

/// A registration's callbacks (its steps' and `on_registered`) must pickle, as 1.2 pickles
/// them when it registers (sessions here are kept as source; the check keeps 1.2's
/// refusal). Without the cloudpickle package there is nothing to check with.
pub(crate) fn check_picklable(
    steps: &Bound<'_, PyList>,
    on_registered: Option<Bound<'_, PyAny>>,
) -> PyResult<()> {
    let Ok(cloudpickle) = steps.py().import("cloudpickle") else {
        return Ok(());
    };
    let callables = step_callables(steps).into_iter().chain(on_registered);
    first_unpicklable(&cloudpickle, callables).map_or(Ok(()), Err)
}

/// Rebuilds a run shipped by another shard (`Err`: the reply text of the failure).
pub fn run_from_wire(bytes: &[u8]) -> Result<RunRequest, String> {
    crate::gil::request(|py| {
        let spec = py
            .import("cloudpickle")?
            .call_method1("loads", (crate::convert::py_bytes(py, bytes)?,))?;
        let spec = spec.cast::<PyTuple>()?;
        let reader: String = spec.get_item(0)?.extract()?;
        let arg = spec.get_item(1)?;
        let steps = spec.get_item(2)?;
        let kwargs = spec.get_item(3)?;
        build_request(
            &reader,
            &arg,
            steps.cast::<PyList>()?,
            kwargs.cast::<PyDict>()?,
            None,
        )
    })
}
