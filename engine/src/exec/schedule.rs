//! A stage's wake-up state machine: who runs the stage's next turn, and when.
//!
//! `IDLE → SCHEDULED → RUNNING → IDLE`, with `NOTIFIED` ("woken while running: run
//! again") and `DONE` (final: later wakes do nothing). A neighbour's [`Schedule::wake`]
//! moves `IDLE` to `SCHEDULED` (and tells its caller to hand the task to the pool) or
//! `RUNNING` to `NOTIFIED`; the worker that got the task moves `SCHEDULED` to `RUNNING`
//! ([`Schedule::begin`]) and, after the turn, to `IDLE`, `SCHEDULED` (again) or `DONE`
//! ([`Schedule::finish`]). A turn that ends `Idle` while `NOTIFIED` runs again.
//!
//! Every transition, a wake that changes nothing included, is a read-modify-write
//! (`compare_exchange`, `fetch_update`, `swap`) with acquire-release ordering. So the
//! state's modification order is one chain of RMWs, each reading the one before it:
//! - a wake never overwrites a state it did not read, nor a turn's end a `NOTIFIED` (the
//!   lost wake-up of a plain `store(IDLE)` after the turn);
//! - a producer's push, made before its wake, happens before every later transition, so
//!   the turn that follows the wake sees the push. A wake that only *loads* `SCHEDULED`
//!   or `NOTIFIED` and returns gives no such order: it and the runner's
//!   store-then-read-queue are the store-buffering pattern, where both sides can read the
//!   old value (the producer an old state, the runner an empty queue) and the stage goes
//!   idle with an item queued. The protocol before this module had that shape (a load-only
//!   wake, plain stores for `RUNNING` and the yield's `SCHEDULED`); the per-turn mutex
//!   that followed the store happened to act as a full fence on x86.
//!
//! Built under loom too (the rest of `exec` is not): `loom_schedule` models it, and
//! under loom [`Bug`] injects known mistakes to prove the models catch lost wake-ups.
//! Depends on `sync` only.

use crate::sync::{AtomicU8, Ordering};

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

/// How a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Nothing to do until a neighbour wakes the stage (input empty or output full).
    Idle,
    /// More to do, but the worker goes to other tasks first.
    Yield,
    /// The stage's last turn.
    Done,
}

/// A mistake injected on purpose into the state machine, to show that the models in
/// `loom_schedule` catch it. Only loom builds can inject one ([`Schedule::with_bug`]);
/// elsewhere every check for one is a constant `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    /// An idle turn's end is a plain `store(IDLE)`, overwriting a `NOTIFIED`.
    StoreAfterTurn,
    /// An idle turn's end does not re-check for `NOTIFIED`: the CAS to `IDLE` fails and
    /// the stage is left `NOTIFIED`, never run again.
    NoRecheck,
    /// `DONE` is not final: a wake after the last turn schedules the stage again.
    DoneNotFinal,
    /// The protocol before this module: a wake that finds `SCHEDULED` or `NOTIFIED` only
    /// loads; `begin` and a yield are plain stores.
    LoadOnlyWake,
}

/// The scheduling state of one stage.
#[derive(Debug)]
pub(crate) struct Schedule {
    state: AtomicU8,
    #[cfg(loom)]
    bug: Option<Bug>,
}

impl Schedule {
    /// Idle: the first wake schedules it.
    pub(crate) fn new() -> Self {
        Schedule {
            state: AtomicU8::new(IDLE),
            #[cfg(loom)]
            bug: None,
        }
    }

    /// As [`Schedule::new`], with `bug` injected.
    #[cfg(loom)]
    pub(crate) fn with_bug(bug: Bug) -> Self {
        Schedule {
            state: AtomicU8::new(IDLE),
            bug: Some(bug),
        }
    }

    #[cfg(loom)]
    fn injected(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    #[cfg(not(loom))]
    #[inline(always)]
    fn injected(&self, _bug: Bug) -> bool {
        false
    }

    /// Makes sure the stage runs (again) after this call. True: the stage was idle and
    /// is now scheduled, and the caller must hand it to the pool; false: it is scheduled,
    /// running (and now notified) or done already.
    pub(crate) fn wake(&self) -> bool {
        if self.injected(Bug::LoadOnlyWake) {
            let s = self.state.load(Ordering::Acquire);
            if s == SCHEDULED || s == NOTIFIED {
                return false;
            }
        }
        let done_final = !self.injected(Bug::DoneNotFinal);
        let prev = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| match s {
                IDLE => Some(SCHEDULED),
                RUNNING => Some(NOTIFIED),
                DONE if done_final => None,
                DONE => Some(SCHEDULED),
                // Rewritten unchanged: the RMW orders the caller's push before the
                // runner's next transition (see the module doc).
                s => Some(s),
            });
        matches!(prev, Ok(IDLE) | Ok(DONE))
    }

    /// Called by the worker that got the task. True: this caller now runs the turn,
    /// alone; false: the stage was not scheduled, there is no turn to run.
    pub(crate) fn begin(&self) -> bool {
        if self.injected(Bug::LoadOnlyWake) {
            self.state.store(RUNNING, Ordering::Release);
            return true;
        }
        self.state
            .compare_exchange(SCHEDULED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends the turn that [`Schedule::begin`] started. True: the stage is scheduled
    /// again (it yielded, or was woken during an idle turn) and the caller must hand it
    /// to the pool.
    pub(crate) fn finish(&self, turn: Turn) -> bool {
        match turn {
            Turn::Done => {
                self.state.swap(DONE, Ordering::AcqRel);
                false
            }
            Turn::Yield if self.injected(Bug::LoadOnlyWake) => {
                self.state.store(SCHEDULED, Ordering::Release);
                true
            }
            Turn::Yield => {
                self.state.swap(SCHEDULED, Ordering::AcqRel);
                true
            }
            Turn::Idle if self.injected(Bug::StoreAfterTurn) => {
                self.state.store(IDLE, Ordering::Release);
                false
            }
            Turn::Idle if self.injected(Bug::NoRecheck) => {
                let _ =
                    self.state
                        .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire);
                false
            }
            Turn::Idle => {
                let prev =
                    self.state
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| match s {
                            RUNNING => Some(IDLE),
                            NOTIFIED => Some(SCHEDULED),
                            _ => None,
                        });
                debug_assert!(prev.is_ok(), "a turn ended in state {prev:?}");
                prev == Ok(NOTIFIED)
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_wake_during_an_idle_turn_runs_the_stage_again() {
        let s = Schedule::new();
        assert!(s.wake(), "idle: the first wake schedules");
        assert!(!s.wake(), "scheduled: nothing more to hand to the pool");
        assert!(s.begin());
        assert!(!s.wake(), "running: notified, not handed to the pool twice");
        assert!(s.finish(Turn::Idle), "notified: scheduled again");
        assert!(s.begin());
        assert!(!s.finish(Turn::Idle), "not notified: idle");
        assert!(s.wake(), "idle again: the next wake schedules");
    }

    #[test]
    fn done_is_final_and_begin_needs_a_schedule() {
        let s = Schedule::new();
        assert!(!s.begin(), "an idle stage has no turn to run");
        assert!(s.wake());
        assert!(s.begin());
        assert!(s.finish(Turn::Yield), "a yield is scheduled again");
        assert!(s.begin());
        assert!(!s.finish(Turn::Done));
        assert!(!s.wake(), "a wake after the last turn does nothing");
        assert!(!s.begin());
    }
}
