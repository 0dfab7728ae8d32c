//! Gearshift's Python layer (pyo3): the embedded interpreter, the GearsBuilder API and
//! runtime functions, and the engine's `UdfRuntime` that runs Python steps a batch at a
//! time.
//!
//! Depends on `engine`; never on redis-module — Redis reaches this crate only through
//! [`services::HostServices`], which the module crate implements.
//!
//! The files form three layers; a module depends only on its own layer or those below
//! (no import cycles: `python3 /work/shared/hooks/cycles.py python/src`):
//!
//! - **Bottom — services and plumbing**, no plans, no flows:
//!   `services` (what Redis offers), `caller` and `link` (who code runs for, which command
//!   it answers), `errors` (1.2's error texts), `gil` (the only place the GIL is taken),
//!   `metrics`, `convert`, `builtins` and `column` (records between Rust and Python),
//!   `dict_version` (a dict's change tag: a named `unsafe` module),
//!   `arrow` (the arrow format's data: Arrow C Data Interface, a named `unsafe` module),
//!   `embed`, `pymem` and `busy` (interpreter start-up, allocator hooks, the busy
//!   watchdog: the named `unsafe` modules), `control` (aborting an execution),
//!   `atomic` (`with atomic():`), `scope` (the thread-local execution scope),
//!   `future` (async records: which callback call created one, completions),
//!   `asyncio_bridge` (awaiting coroutines and completions), `site` (requirements' site dirs).
//! - **Middle — plans and running them**: `step` (`PyStep`), `plan` (step tuples → engine
//!   plan), `profile`, `stage/` (`PyStage`, the engine operator, and `PyRuntime`),
//!   `event/` (keyspace events run many at a time, deferred `sync` awaits), `reader`
//!   (PythonReader as a source), `request` (building a `run()`'s request).
//! - **Top — what scripts and the module call**: `register` (registrations a script
//!   prepares), `time_event` (`registerTE`), `cluster` (the shard's view, a run's wire
//!   form), `nested` (`run()` inside executions, the `GearsFuture` it returns),
//!   `session` (running a script), `runtime` (the `_gearshift` module behind
//!   `py/prelude.py`, the API scripts see) and this file (start-up).
#![deny(unsafe_code)]

// Bottom layer.
mod arrow;
mod asyncio_bridge;
mod atomic;
mod builtins;
pub mod busy;
pub mod caller;
mod column;
pub mod control;
mod convert;
mod dict_version;
mod embed;
pub mod errors;
mod future;
mod gc_pause;
mod gil;
pub mod link;
pub mod metrics;
pub mod pymem;
mod scope;
pub mod services;
pub mod site;

// Middle layer.
pub mod event;
mod plan;
pub mod profile;
pub mod reader;
mod request;
pub mod stage;
pub mod step;

// Top layer.
pub mod cluster;
pub mod nested;
pub mod register;
mod runtime;
pub mod session;
pub mod time_event;

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use atomic::release_leaked_atomic;
pub use column::PyColumnDecoder;
pub use control::ExecControl;
pub use event::{Deferred, EventPlan};
pub use register::{register_from_wire, OnRegistered, RegisterRequest, StreamOptions};
pub use request::{ReaderSpec, RunDone, RunRequest};
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

const PRELUDE: &std::ffi::CStr = embedded_py!("py/prelude.py");

/// Caps `sys.setrecursionlimit` to what Redis's thread stacks hold (run once at start-up).
const STACK_GUARD: &std::ffi::CStr = embedded_py!("py/stack_guard.py");

/// The `redisgears` module (1.2's native names), built in the prelude's namespace.
const REDISGEARS_MODULE: &std::ffi::CStr = embedded_py!("py/redisgears_module.py");

/// The readers 1.2 implements in Python (loaded before the prelude, which imports them).
const READERS: &std::ffi::CStr = embedded_py!("py/readers.py");

/// `gearsFuture()`, completions and the gears asyncio loop (loaded before the prelude).
const FUTURES: &std::ffi::CStr = embedded_py!("py/futures.py");

/// The `GearsFuture` that `run()` returns (`nested`).
const NESTED: &std::ffi::CStr = embedded_py!("py/nested.py");

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
    gc_pause::prepare(py);
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
    let futures = PyModule::from_code(py, FUTURES, c"gearshift_futures.py", c"_gearshift_futures")?;
    modules.set_item("_gearshift_futures", &futures)?;
    let nested = PyModule::from_code(py, NESTED, c"gearshift_nested.py", c"_gearshift_nested")?;
    modules.set_item("_gearshift_nested", &nested)?;
    nested::set_class(py, nested.getattr("GearsFuture")?.unbind());
    let readers = PyModule::from_code(py, READERS, c"gearshift_readers.py", c"_gearshift_readers")?;
    modules.set_item("_gearshift_readers", &readers)?;
    let prelude = PyModule::from_code(py, PRELUDE, c"gearshift_prelude.py", c"gearshift_prelude")?;
    modules.set_item("gearshift_prelude", &prelude)?;
    py.run(REDISGEARS_MODULE, Some(&prelude.dict()), None)?;
    let globals: Bound<'_, PyDict> = prelude.dict().copy()?;
    session::set_prelude(globals.unbind());
    Ok(())
}
