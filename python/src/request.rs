//! Run requests: what a `run()` asks for — where the run reads ([`ReaderSpec`]) and its
//! plan — built from the `GearsBuilder`'s reader, argument, step tuples and options, with
//! 1.2's argument checks. Built for a script's `run()` (`session`) and for a run another
//! shard shipped (`cluster`).
//!
//! Middle layer: depends on `plan` (step tuples → engine plan), `reader` and `errors`.

use engine::plan::Plan;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFunction, PyList, PyString};

use crate::errors::GearsError;
use crate::plan::build_plan;
use crate::reader::GeneratorSource;

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

/// Told a run's output once it ends (completes the `GearsFuture` `run()` returned).
pub type RunDone = Box<dyn FnOnce(&engine::exec::ExecutionOutput) + Send>;

/// A `run()` requested by a script (or nested in an execution, `nested`).
pub struct RunRequest {
    pub reader: ReaderSpec,
    pub plan: Plan,
    /// The run for the other shards of a cluster (`None`: it runs on this shard only).
    pub wire: Option<Vec<u8>>,
    /// Call with the output when the run ends (the host must call it exactly once).
    pub on_done: Option<RunDone>,
}

/// The run `reader(arg)` with `steps` and `kwargs` asks for; `wire` is its form for the
/// other shards, if it has one.
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
        on_done: None,
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
