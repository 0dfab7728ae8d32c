//! `registerTE(seconds, fn, keyName=None)` (REFERENCE §5, §9): a callback Redis's main
//! thread calls every `seconds` until it raises.
//!
//! Without a key name the timer lives in memory only. With one, the host stores it in a
//! key of module type `rg_timeev` holding the period and the callback cloudpickled (as 1.2
//! stores it): the key travels through RDB saves, `DEBUG RELOAD`, restarts and replication,
//! and deleting it stops the timer. A reloaded key rebuilds its callback with [`restore`]
//! when the timer first fires (so it does not matter whether keys load before or after
//! the sessions they came from).
//!
//! Top layer: depends on `caller`, `services`, `convert`, `errors` and `gil`.

use std::time::Duration;

use pyo3::prelude::*;

use crate::caller::RunAs;
use crate::errors::GearsError;
use crate::services;

/// A time event's callback: returns false once the timer must stop (the function raised).
pub type Tick = Box<dyn FnMut() -> bool + Send>;

/// Wraps `f` as a tick: called with the GIL taken (the caller holds the Redis lock, which
/// comes first), as `run_as` (the ACL user of the code that registered it); an exception
/// is logged and stops the timer.
fn tick_for(f: Py<PyAny>, run_as: Option<RunAs>) -> Tick {
    Box::new(move || {
        let _as = crate::caller::Scope::enter_opt(run_as.clone());
        crate::gil::callback(&f, "time event stopped")
    })
}

/// Rebuilds a persisted time event's callback from its cloudpickled bytes, to run as
/// `run_as` (unpickling runs as that user too). Call with the Redis lock held and without
/// the GIL (it takes the GIL).
pub fn restore(pickled: &[u8], run_as: RunAs) -> Result<Tick, String> {
    let _as = crate::caller::Scope::enter(run_as.clone());
    crate::gil::request(|py| {
        let f = py
            .import("cloudpickle")?
            .call_method1("loads", (crate::convert::py_bytes(py, pickled)?,))?;
        Ok(tick_for(f.unbind(), Some(run_as)))
    })
}

/// The longest period of any timer (2^32-1 s); defined with the time-event value checks in
/// the engine (`engine::wire::time_event`).
pub use engine::wire::time_event::MAX_PERIOD_SECS;

/// Checks that `pickled` is one well-formed pickle (walking its opcodes with `pickletools`,
/// which runs none of them), so a time event key never holds bytes that can only fail
/// later. Unpickling itself waits for the first firing (see the module doc). Takes the GIL.
pub fn check_pickle(pickled: &[u8]) -> Result<(), String> {
    crate::gil::request(|py| {
        let walk = || -> PyResult<()> {
            let ops = py
                .import("pickletools")?
                .call_method1("genops", (crate::convert::py_bytes(py, pickled)?,))?;
            for op in ops.try_iter()? {
                op?;
            }
            Ok(())
        };
        // The exception's own `str()`, not an execution's error text.
        Ok(walk().map_err(|e| format!("bad time event callback: {e}")))
    })?
}

/// A period given in seconds, checked (`registerTE` already refused non-integers).
pub fn period(seconds: u64) -> PyResult<Duration> {
    if seconds == 0 || seconds > MAX_PERIOD_SECS {
        return Err(GearsError::new_err(format!(
            "time argument must be between 1 and {MAX_PERIOD_SECS} seconds"
        )));
    }
    Ok(Duration::from_secs(seconds))
}

/// `registerTE(seconds, fn)`: an in-memory time event.
#[pyfunction]
fn register_te(py: Python<'_>, seconds: u64, f: Py<PyAny>) -> PyResult<bool> {
    let h = services::get().ok_or_else(|| GearsError::new_err("no Redis host"))?;
    let period = period(seconds)?;
    let tick = tick_for(f, crate::caller::current(py));
    py.detach(|| h.start_timer(period, tick));
    Ok(true)
}

/// `registerTE(seconds, fn, keyName)`: a time event stored in key `key` (`pickled` is `fn`
/// cloudpickled, see the prelude). False if the key already exists.
#[pyfunction]
fn register_te_key(
    py: Python<'_>,
    seconds: u64,
    f: Py<PyAny>,
    key: &str,
    pickled: Vec<u8>,
) -> PyResult<bool> {
    let h = services::get().ok_or_else(|| GearsError::new_err("no Redis host"))?;
    let period = period(seconds)?;
    let run_as = crate::caller::current(py);
    let tick = tick_for(f, run_as.clone());
    py.detach(|| h.create_time_event(key.as_bytes(), period, pickled, run_as, tick))
        .map_err(GearsError::new_err)
}

/// Adds the time-event functions to the `_gearshift` module.
pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(register_te, m)?)?;
    m.add_function(wrap_pyfunction!(register_te_key, m)?)?;
    m.add("MAX_TIMER_SECONDS", MAX_PERIOD_SECS)?;
    Ok(())
}
