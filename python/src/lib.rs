//! Gearshift's Python layer (pyo3): the embedded interpreter, the GearsBuilder API and
//! runtime functions, and the engine host that runs Python steps a batch at a time.
//!
//! Depends on `engine`; never on redis-module — Redis reaches this crate only through
//! [`services::HostServices`], which the module crate implements.
//!
//! - `embed`, `pymem`, `busy`: interpreter start-up, Python's allocator hooks, and the
//!   busy watchdog for runaway main-thread Python (the crate's only `unsafe`).
//! - `runtime` + `py/prelude.py`: the API scripts see (`py/arrow_batch.py`: the arrow
//!   format of the `mapBatch` extension).
//! - `session`: running a script, collecting its `run()`.
//! - `caller`: the ACL identity user code runs as (set by the host, read by `execute()`).
//! - `steps`, `stage`, `builtins`, `column`, `convert`: plans and batched execution of
//!   callbacks, and the native halves of the built-in operations.
//! - `reader`: PythonReader as an engine source.
//! - `register`: registrations a script prepares.
//! - `time_event`: `registerTE` timers, in memory or persisted in a key.
#![deny(unsafe_code)]

mod asyncio_bridge;
mod atomic;
mod builtins;
pub mod busy;
pub mod caller;
pub mod cluster;
mod column;
pub mod control;
mod convert;
mod embed;
pub mod errors;
pub mod event;
mod gil;
pub mod link;
pub mod metrics;
mod plan;
pub mod profile;
pub mod pymem;
pub mod reader;
pub mod register;
mod request;
mod runtime;
mod scope;
pub mod services;
pub mod session;
pub mod site;
pub mod stage;
pub mod step;
pub mod time_event;

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use atomic::release_leaked_atomic;
pub use column::PyColumnDecoder;
pub use control::ExecControl;
pub use event::{Deferred, EventPlan};
pub use register::{OnRegistered, RegisterRequest, StreamOptions};
pub use request::{ReaderSpec, RunRequest};
pub use session::{run_script, ScriptOutcome};
pub use stage::{ControlledRuntime, PyRuntime};

/// A Python source file of this crate as a C string (checked at compile time: no NUL).
macro_rules! embedded_py {
    ($path:literal) => {
        match std::ffi::CStr::from_bytes_with_nul(concat!(include_str!($path), "\0").as_bytes()) {
            Ok(c) => c,
            Err(_) => panic!(concat!($path, " contains NUL")),
        }
    };
}

/// The module's former path of [`services`], kept while module/ still names it (issue 12
/// renames this crate's `host` to `services`; the module crate moves over separately).
pub mod host {
    pub use crate::services::{CallReply, HostServices};
}

const PRELUDE: &std::ffi::CStr = embedded_py!("py/prelude.py");

/// Caps `sys.setrecursionlimit` to what Redis's thread stacks hold (run once at start-up).
const STACK_GUARD: &std::ffi::CStr = embedded_py!("py/stack_guard.py");

/// The `redisgears` module (1.2's native names), built in the prelude's namespace.
const REDISGEARS_MODULE: &std::ffi::CStr = embedded_py!("py/redisgears_module.py");

/// The readers 1.2 implements in Python (loaded before the prelude, which imports them).
const READERS: &std::ffi::CStr = embedded_py!("py/readers.py");

/// `mapBatch(f, format='arrow')` support (imports pyarrow only when a flow uses it).
const ARROW_BATCH: &std::ffi::CStr = embedded_py!("py/arrow_batch.py");

/// Starts the interpreter and loads the runtime API. Call once, at module load. With
/// `allocator`, Python's memory comes from it (see [`pymem`]).
pub fn init(
    python_home: Option<&str>,
    services: Arc<dyn services::HostServices>,
    allocator: Option<pymem::HostAllocator>,
) -> Result<(), String> {
    services::install(services);
    if let Some(a) = allocator {
        pymem::route(a);
    }
    embed::initialize(python_home)?;
    gil::request(load_runtime)
}

fn load_runtime(py: Python<'_>) -> PyResult<()> {
    PyModule::from_code(
        py,
        STACK_GUARD,
        c"gearshift_stack_guard.py",
        c"_gearshift_stack_guard",
    )?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item("_gearshift", runtime::module(py)?)?;
    let arrow = PyModule::from_code(py, ARROW_BATCH, c"gearshift_arrow.py", c"_gearshift_arrow")?;
    modules.set_item("_gearshift_arrow", &arrow)?;
    let readers = PyModule::from_code(py, READERS, c"gearshift_readers.py", c"_gearshift_readers")?;
    modules.set_item("_gearshift_readers", &readers)?;
    let prelude = PyModule::from_code(py, PRELUDE, c"gearshift_prelude.py", c"gearshift_prelude")?;
    modules.set_item("gearshift_prelude", &prelude)?;
    py.run(REDISGEARS_MODULE, Some(&prelude.dict()), None)?;
    let globals: Bound<'_, PyDict> = prelude.dict().copy()?;
    session::set_prelude(globals.unbind());
    Ok(())
}
