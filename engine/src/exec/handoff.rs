//! The executor's hand-offs between threads: a stage's state to whichever worker runs its
//! turn ([`TurnCell`], exclusive by the [`Schedule`] state machine instead of a mutex per
//! turn), a one-shot value to whichever caller takes it first ([`TakeOnce`], one swap
//! instead of a mutex: the execution's completion callback), and a callback waiting for a
//! one-time event that may happen before or after it is set ([`OnceNotice`]: "the execution
//! parked on an await", which a blocked client's caller waits for).
//!
//! A named unsafe module: the first two hold an [`UnsafeCell`] whose exclusive access the
//! atomics prove. Built under loom too, where loom's cell checks that no two accesses
//! overlap and the models in `loom_schedule` look for lost notices. Depends on `sync` and
//! `schedule`.
#![allow(unsafe_code)]

use super::schedule::{Schedule, Turn};
use crate::sync::{AtomicBool, Mutex, Ordering, UnsafeCell};

/// A value that only the worker running the stage's turn touches.
#[derive(Debug)]
pub(crate) struct TurnCell<T> {
    schedule: Schedule,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is reached only in `run`, by the one thread whose `begin` moved the
// schedule SCHEDULED → RUNNING, until its `finish` leaves RUNNING; no other transition
// enters RUNNING, so two accesses never overlap. Each transition is an acquire-release
// RMW, so a turn happens after the one before it and sees its writes. `T: Send` because
// successive turns run on different threads. (`into_inner` takes `self`.)
unsafe impl<T: Send> Sync for TurnCell<T> {}

impl<T> TurnCell<T> {
    /// An idle cell: the first [`TurnCell::wake`] schedules it.
    pub(crate) fn new(value: T) -> Self {
        Self::with_schedule(value, Schedule::new())
    }

    pub(crate) fn with_schedule(value: T, schedule: Schedule) -> Self {
        TurnCell {
            schedule,
            value: UnsafeCell::new(value),
        }
    }

    /// See [`Schedule::wake`]: true when the caller must hand the task to the pool.
    pub(crate) fn wake(&self) -> bool {
        self.schedule.wake()
    }

    /// Runs one turn, `f`, with the value if the cell was scheduled (else does nothing).
    /// True: it is scheduled again and the caller must hand the task to the pool. If `f`
    /// unwinds the cell stays RUNNING: no turn ever runs again (the value is dropped
    /// with the cell).
    pub(crate) fn run(&self, f: impl FnOnce(&mut T) -> Turn) -> bool {
        if !self.schedule.begin() {
            return false;
        }
        let turn = self.value.with_mut(|p| {
            // SAFETY: `begin` made this thread the only one in RUNNING (see the `Sync`
            // impl); the reference lives for `f` only, before `finish` leaves RUNNING.
            f(unsafe { &mut *p })
        });
        self.schedule.finish(turn)
    }

    /// The value, once no turn can run (the cell is owned).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// A value that exactly one caller of [`TakeOnce::take`] gets.
#[derive(Debug)]
pub(crate) struct TakeOnce<T> {
    taken: AtomicBool,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: `value` is reached only by the one `take` whose swap read `false` (and by
// `Drop` through `&mut self`); the swap's acquire orders that access after `new`.
unsafe impl<T: Send> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    pub(crate) fn new(value: T) -> Self {
        TakeOnce {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(Some(value)),
        }
    }

    /// The value for the first caller, `None` for every later one.
    pub(crate) fn take(&self) -> Option<T> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.value.with_mut(|p| {
            // SAFETY: only the caller whose swap read `false` gets here, once.
            unsafe { (*p).take() }
        })
    }
}

/// A one-time event and the callback waiting for it: the callback runs exactly once, on the
/// thread that completes the pair (the one noticing the event, or the one setting the
/// callback after it happened).
///
/// `notify` sets the flag, then takes the slot; `when` fills the slot, then reads the flag.
/// The slot's mutex orders the two: whichever takes it second sees the other's write, so
/// the callback is never left waiting for an event that already happened.
#[derive(Debug)]
pub(crate) struct OnceNotice<F> {
    happened: AtomicBool,
    waiting: Mutex<Option<F>>,
    /// Injected on purpose (loom only): `when` reads the flag before it fills the slot.
    #[cfg(loom)]
    check_first: bool,
}

impl<F: FnOnce()> OnceNotice<F> {
    pub(crate) fn new() -> Self {
        OnceNotice {
            happened: AtomicBool::new(false),
            waiting: Mutex::new(None),
            #[cfg(loom)]
            check_first: false,
        }
    }

    /// As [`OnceNotice::new`], with the check-then-fill mistake injected.
    #[cfg(loom)]
    pub(crate) fn with_check_first() -> Self {
        OnceNotice {
            check_first: true,
            ..Self::new()
        }
    }

    /// The event happened (only the first call counts): runs the callback if it is set.
    pub(crate) fn notify(&self) {
        if !self.happened.swap(true, Ordering::SeqCst) {
            self.run_waiting();
        }
    }

    /// Runs `f` once the event happens (at once if it has).
    pub(crate) fn when(&self, f: F) {
        #[cfg(loom)]
        if self.check_first {
            if self.happened.load(Ordering::SeqCst) {
                return f();
            }
            *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            return;
        }
        *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        if self.happened.load(Ordering::SeqCst) {
            self.run_waiting();
        }
    }

    fn run_waiting(&self) {
        // Taken under the lock, called after it is released: the callback may take locks.
        let f = self
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = f {
            f();
        }
    }
}
