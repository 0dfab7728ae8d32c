//! Runaway Python on Redis's main thread (sync registrations, time events, hooks, sessions
//! loaded from an RDB): the answer Redis gives a long Lua script. While such a section
//! runs past the busy threshold (`busy-reply-threshold`), a watchdog thread schedules a
//! CPython pending call; it runs on the main thread between two bytecodes and lets Redis
//! serve clients (the host yields: they get `-BUSY`, only kill commands run). A kill
//! request makes the next pending call raise `gears.forcestopped` in the section.
//!
//! Pending calls run only on the interpreter's main thread, which is Redis's (the
//! interpreter starts in the module's OnLoad). Code blocked in C (e.g. `time.sleep`) is
//! reached when it returns to bytecode. A named `unsafe` module (`Py_AddPendingCall`).
//! Bottom layer: depends on `services`, `errors`, `control` and `gil`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::raw::c_int;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use engine::sync::{AtomicBool, AtomicU64, Ordering};
use pyo3::prelude::*;

use crate::errors::ForceStopped;

/// How often the watchdog looks, and how often a busy section lets clients in.
const TICK: Duration = Duration::from_millis(20);

/// Milliseconds since `epoch()` when the running section started, plus one (0: none).
static SINCE: AtomicU64 = AtomicU64::new(0);
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(5000);
static KILL: AtomicBool = AtomicBool::new(false);
/// A pending call is scheduled and has not run yet.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The section passed the threshold: clients are being answered `-BUSY`.
static BUSY: AtomicBool = AtomicBool::new(false);
/// The execution id of the running section, when it has one (RG.ABORTEXECUTION <id>).
static SECTION_ID: Mutex<Option<String>> = Mutex::new(None);
/// `SECTION_ID` is set (spares the lock when sections end unnamed, the common case).
static NAMED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The Python thread ident of a worker holding the Redis lock in an `atomic()` block (0:
/// none; the lock is exclusive, so there is at most one), and since when (as `SINCE`).
static WORKER: AtomicU64 = AtomicU64::new(0);
static WORKER_SINCE: AtomicU64 = AtomicU64::new(0);
/// The stop of the current worker block was logged.
static WORKER_LOGGED: AtomicBool = AtomicBool::new(false);

/// A worker thread took the Redis lock for an `atomic()` block (GIL held). Redis cannot
/// answer `-BUSY` while another thread holds its lock, so past the busy threshold the
/// watchdog stops the block (`gears.forcestopped`) instead of letting the server hang.
pub fn worker_locked(ident: u64) {
    start_watchdog();
    WORKER_LOGGED.store(false, Ordering::Relaxed);
    WORKER_SINCE.store(now_ms() + 1, Ordering::Release);
    WORKER.store(ident, Ordering::Release);
}

/// The worker's `atomic()` block gave the lock back (GIL held).
pub fn worker_unlocked() {
    WORKER.store(0, Ordering::Release);
    WORKER_SINCE.store(0, Ordering::Release);
}

/// Stops a worker's `atomic()` block that held the Redis lock past the threshold.
fn stop_overdue_worker() {
    let since = WORKER_SINCE.load(Ordering::Acquire);
    let threshold = THRESHOLD_MS.load(Ordering::Relaxed);
    if since == 0 || threshold == 0 || now_ms() + 1 < since + threshold {
        return;
    }
    crate::control::force_stop(&WORKER);
    if WORKER_LOGGED.swap(true, Ordering::Relaxed) {
        return;
    }
    if let Some(h) = crate::services::get() {
        h.log(
            "warning",
            "Gearshift: an atomic() block held the Redis lock past busy-reply-threshold on a \
             worker thread (where Redis cannot answer -BUSY); it was stopped",
        );
    }
}

/// A section past the threshold inside a Lua script or MULTI/EXEC: no client can be
/// answered `-BUSY` or send a kill there, so it is stopped (as an overdue worker block).
fn stop_unservable() {
    BUSY.store(false, Ordering::Relaxed);
    KILL.store(true, Ordering::Release);
    if let Some(h) = crate::services::get() {
        h.log(
            "warning",
            "Gearshift: a Python callback held the Redis lock past busy-reply-threshold inside \
             a Lua script, Function or MULTI/EXEC (where Redis cannot answer -BUSY); it was \
             stopped",
        );
    }
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Sets the busy threshold in milliseconds (Redis's `busy-reply-threshold`; 0: never).
pub fn set_threshold(ms: u64) {
    THRESHOLD_MS.store(ms, Ordering::Relaxed);
}

/// A main-thread section that holds the Redis lock and may run Python.
#[derive(Debug)]
pub struct Section {
    outer: bool,
}

/// Enters a section on Redis's main thread (nested sections join the outer one).
pub fn enter() -> Section {
    let depth = DEPTH.with(|d| {
        let v = d.get();
        d.set(v + 1);
        v
    });
    let outer = depth == 0;
    if outer {
        start_watchdog();
        KILL.store(false, Ordering::Relaxed);
        SINCE.store(now_ms() + 1, Ordering::Release);
    }
    Section { outer }
}

impl Section {
    /// True for the outermost section of the thread (nested ones join it).
    pub fn is_outer(&self) -> bool {
        self.outer
    }
}

/// Names the execution the running section of this thread runs, so that
/// `RG.ABORTEXECUTION <id>` reaches it. No-op outside a section.
pub fn name_section(id: &str) {
    if DEPTH.with(|d| d.get()) > 0 {
        *lock_id() = Some(id.to_owned());
        NAMED.store(true, Ordering::Release);
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        if self.outer {
            SINCE.store(0, Ordering::Release);
            BUSY.store(false, Ordering::Relaxed);
            KILL.store(false, Ordering::Relaxed);
            if NAMED.swap(false, Ordering::AcqRel) {
                *lock_id() = None;
            }
        }
    }
}

fn lock_id() -> std::sync::MutexGuard<'static, Option<String>> {
    SECTION_ID.lock().unwrap_or_else(|e| e.into_inner())
}

/// True while a section has run past the threshold (clients get `-BUSY`).
pub fn is_busy() -> bool {
    BUSY.load(Ordering::Relaxed)
}

/// Asks the running section to stop; `id` must name it when given. True if one was asked.
pub fn kill(id: Option<&str>) -> bool {
    if SINCE.load(Ordering::Acquire) == 0 {
        return false;
    }
    if let Some(id) = id {
        if lock_id().as_deref() != Some(id) {
            return false;
        }
    }
    KILL.store(true, Ordering::Release);
    true
}

fn start_watchdog() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("gearshift-busy".into())
            .spawn(watchdog);
        if spawned.is_err() {
            // Without the watchdog a runaway section cannot be interrupted; nothing else
            // changes, so the section still runs.
            if let Some(h) = crate::services::get() {
                h.log(
                    "warning",
                    "Gearshift: could not start the busy watchdog thread",
                );
            }
        }
    });
}

fn watchdog() {
    loop {
        std::thread::sleep(TICK);
        stop_overdue_worker();
        let since = SINCE.load(Ordering::Acquire);
        if since == 0 {
            continue;
        }
        let threshold = THRESHOLD_MS.load(Ordering::Relaxed);
        let overdue = threshold > 0 && now_ms() + 1 >= since + threshold;
        if !(overdue || KILL.load(Ordering::Acquire)) {
            continue;
        }
        if PENDING.swap(true, Ordering::AcqRel) {
            continue; // the last one has not run yet
        }
        // SAFETY: Py_AddPendingCall may be called from any thread without the GIL; the
        // callback is a plain function that takes no argument.
        let added = unsafe { pyo3::ffi::Py_AddPendingCall(Some(on_pending), std::ptr::null_mut()) };
        if added != 0 {
            PENDING.store(false, Ordering::Release);
            continue;
        }
        // CPython 3.11 arms the main thread's eval breaker for a pending call only when the
        // caller is the main thread; asking for the GIL arms it (a drop request), and the
        // main thread runs pending calls before it hands the GIL over.
        crate::gil::signal(|_| ());
    }
}

/// Runs on the main thread between two bytecodes, with the GIL.
extern "C" fn on_pending(_arg: *mut std::os::raw::c_void) -> c_int {
    PENDING.store(false, Ordering::Release);
    let r = std::panic::catch_unwind(|| {
        if SINCE.load(Ordering::Acquire) == 0 {
            return 0; // the section ended before this ran
        }
        if !KILL.load(Ordering::Acquire) {
            BUSY.store(true, Ordering::Relaxed);
            // Clients are served here; one may ask for the kill.
            let served = crate::services::get().is_none_or(|h| h.yield_to_clients());
            if !served {
                stop_unservable();
            }
        }
        if KILL.load(Ordering::Acquire) {
            // A pending call runs with this thread's GIL: attaching only nests.
            crate::gil::signal(|py| {
                PyErr::new::<ForceStopped, _>("Execution was aborted (busy script killed)")
                    .restore(py)
            });
            return -1;
        }
        0
    });
    r.unwrap_or(0)
}
