//! Building a batch of record dicts without Python's cyclic collector running in the middle.
//!
//! Every dict a batch conversion makes counts toward the collector's young-generation
//! threshold (700 allocations), so building 1,000 records would run two or three young
//! collections, each walking every record of the batch built so far (they are alive: the
//! batch is not done) and promoting them to older generations, whose collections then walk
//! them again. Records made by Rust from a key batch form no cycles, so a collection during
//! the build can free nothing. [`building`] turns the collector off for the build only (no
//! Python code runs inside it: only dicts and strings are made) and back on after, if it
//! was on; the deferred count then triggers a collection at the next allocation made with
//! the collector on, or is paid back as the records are freed (a freed container lowers the
//! count). What user code sees of `gc` (`isenabled()`, thresholds, what gets collected) is
//! unchanged: it never runs inside the window.
//!
//! Bottom layer: depends on pyo3 only.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// `gc.isenabled`, `gc.disable` and `gc.enable`, looked up once at start-up, before any
/// script runs (`prepare`): a script that replaces the `gc` module's attributes does not
/// change what this module calls, so no user code runs inside a window.
struct Gc {
    isenabled: Py<PyAny>,
    disable: Py<PyAny>,
    enable: Py<PyAny>,
}

static GC: PyOnceLock<Option<Gc>> = PyOnceLock::new();

fn gc(py: Python<'_>) -> Option<&Gc> {
    GC.get_or_init(py, || {
        let m = py.import("gc").ok()?;
        Some(Gc {
            isenabled: m.getattr("isenabled").ok()?.unbind(),
            disable: m.getattr("disable").ok()?.unbind(),
            enable: m.getattr("enable").ok()?.unbind(),
        })
    })
    .as_ref()
}

/// Looks the functions up; call at start-up, before any script runs.
pub(crate) fn prepare(py: Python<'_>) {
    gc(py);
}

/// Turns the collector back on when dropped (also if `f` panics).
struct Resume<'a, 'py> {
    py: Python<'py>,
    gc: &'a Gc,
}

impl Drop for Resume<'_, '_> {
    fn drop(&mut self) {
        // Cannot fail in CPython; if it did, the collector would stay off until the next
        // window's check finds it off and leaves it so: losing speed, never records.
        let _ = self.gc.enable.call0(self.py);
    }
}

/// Runs `f`, which makes records and calls no Python code, with the cyclic collector off.
/// Leaves the collector as it found it (off stays off: a script may have turned it off).
pub(crate) fn building<'py, R>(py: Python<'py>, f: impl FnOnce() -> R) -> R {
    let Some(gc) = gc(py) else { return f() };
    let on = gc
        .isenabled
        .call0(py)
        .and_then(|v| v.is_truthy(py))
        .unwrap_or(false);
    if !on || gc.disable.call0(py).is_err() {
        return f();
    }
    let _resume = Resume { py, gc };
    f()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests take the GIL directly

    use super::*;

    fn enabled(py: Python<'_>) -> bool {
        let gc = py.import("gc").unwrap();
        gc.call_method0("isenabled").unwrap().is_truthy().unwrap()
    }

    #[test]
    fn the_collector_is_off_inside_and_as_it_was_after() {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            let gc = py.import("gc").unwrap();
            gc.call_method0("enable").unwrap();
            assert!(!building(py, || enabled(py)));
            assert!(enabled(py));
            // A script turned it off: it stays off.
            gc.call_method0("disable").unwrap();
            assert!(!building(py, || enabled(py)));
            assert!(!enabled(py));
            gc.call_method0("enable").unwrap();
            // A panic inside still turns it back on.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                building(py, || panic!("inside"))
            }));
            assert!(r.is_err());
            assert!(enabled(py));
        });
    }
}
