//! loom models of the stage wake-up state machine (`schedule`) and the hand-offs built on
//! it (`handoff`): run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gearshift-engine --release --lib loom`.
//!
//! A model stage consumes a queue that is only a count of pushed items: a producer
//! pushes (a release increment) then wakes the stage; a turn takes one item, then yields
//! if it saw more, goes idle if it saw none, or ends when it took the last expected one.
//! "Handing the task to the pool" is running it at once on the thread that was told to
//! (one worker's choice among many). A lost wake-up shows as an item never taken, a
//! stage that runs after its last turn, or (through loom's cell) two overlapping turns.
//!
//! The `#[should_panic]` models inject each known mistake ([`Bug`]) and must fail.

use super::handoff::{OnceNotice, TakeOnce, TurnCell};
use super::schedule::{Bug, Schedule, Turn};
use crate::sync::{thread, Arc, AtomicUsize, Ordering};

/// The state only turns touch.
#[derive(Debug, Default)]
struct Consumer {
    taken: usize,
    done: bool,
}

struct Model {
    stage: TurnCell<Consumer>,
    pushed: AtomicUsize,
    /// Items after which the stage ends (`usize::MAX`: never).
    last: usize,
}

impl Model {
    fn new(last: usize, bug: Option<Bug>) -> Arc<Model> {
        let c = Consumer::default();
        let stage = match bug {
            None => TurnCell::new(c),
            Some(bug) => TurnCell::with_schedule(c, Schedule::with_bug(bug)),
        };
        Arc::new(Model {
            stage,
            pushed: AtomicUsize::new(0),
            last,
        })
    }

    /// A neighbour's wake; runs the stage here when it must be handed to the pool.
    fn wake(&self) {
        if self.stage.wake() {
            self.run();
        }
    }

    /// A worker running the task until it is not scheduled again.
    fn run(&self) {
        while self.stage.run(|c| self.turn(c)) {}
    }

    fn turn(&self, c: &mut Consumer) -> Turn {
        assert!(!c.done, "the stage ran after its last turn");
        let seen = self.pushed.load(Ordering::Acquire);
        if c.taken == seen {
            return Turn::Idle; // the producer wakes us after its next push
        }
        c.taken += 1;
        if c.taken == self.last {
            c.done = true;
            Turn::Done
        } else if c.taken < seen {
            Turn::Yield
        } else {
            Turn::Idle
        }
    }

    fn push(&self) {
        self.pushed.fetch_add(1, Ordering::Release);
        self.wake();
    }

    /// After every thread joined: what the turns did.
    fn into_consumer(this: Arc<Model>) -> Consumer {
        let m = Arc::try_unwrap(this).unwrap_or_else(|_| panic!("a thread still holds the model"));
        m.stage.into_inner()
    }
}

/// A bound of `preemptions`, whatever `LOOM_MAX_PREEMPTIONS` says: each model sets the
/// largest bound that keeps it within seconds, and every injected bug is found within 2
/// (the two-thread model takes 0.4 s at 3 and over a minute unbounded; the three-thread
/// one 2 s at 2 and 16 s at 3).
fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

/// The stage is started (woken and run by the builder's thread) while a producer pushes
/// twice: a push during a turn, after the turn saw the queue empty, must make it run
/// again (`NOTIFIED`), and every item is taken.
fn notify_while_running(bug: Option<Bug>) {
    builder(3).check(move || {
        let m = Model::new(usize::MAX, bug);
        let producer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                m.push();
                m.push();
            })
        };
        m.wake();
        producer.join().unwrap();
        let c = Model::into_consumer(m);
        assert_eq!(c.taken, 2, "an item was left queued: a lost wake-up");
    });
}

/// Two producers push one item each and wake the stage concurrently with its start;
/// the turn that takes the second item is the last. Every item is taken, the stage
/// ends, and no wake after the end runs it again.
fn concurrent_wakes_then_done(bug: Option<Bug>) {
    builder(2).check(move || {
        let m = Model::new(2, bug);
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || m.push())
            })
            .collect();
        m.wake();
        for p in producers {
            p.join().unwrap();
        }
        assert!(
            !m.stage.wake(),
            "a wake after its last turn scheduled the stage"
        );
        let c = Model::into_consumer(m);
        assert_eq!(c.taken, 2, "an item was left queued: a lost wake-up");
        assert!(c.done, "the stage never took its last turn");
    });
}

#[test]
fn loom_schedule_notify_while_running() {
    notify_while_running(None);
}

#[test]
fn loom_schedule_concurrent_wakes_then_done() {
    concurrent_wakes_then_done(None);
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn loom_schedule_catches_store_after_turn() {
    notify_while_running(Some(Bug::StoreAfterTurn));
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn loom_schedule_catches_missing_notified_recheck() {
    notify_while_running(Some(Bug::NoRecheck));
}

#[test]
#[should_panic(expected = "after its last turn")]
fn loom_schedule_catches_done_not_final() {
    concurrent_wakes_then_done(Some(Bug::DoneNotFinal));
}

#[test]
#[should_panic(expected = "lost wake-up")]
fn loom_schedule_catches_load_only_wake() {
    notify_while_running(Some(Bug::LoadOnlyWake));
}

#[test]
fn loom_take_once_gives_the_value_to_exactly_one_taker() {
    builder(3).check(|| {
        let once = Arc::new(TakeOnce::new(7u32));
        let other = {
            let once = Arc::clone(&once);
            thread::spawn(move || once.take())
        };
        let mine = once.take();
        let theirs = other.join().unwrap();
        let mut got: Vec<_> = mine.into_iter().chain(theirs).collect();
        got.extend(once.take());
        assert_eq!(got, vec![7]);
    });
}

/// A notice and a callback set from two threads: the callback must run exactly once
/// (loom checks the other orders: notice first, callback first, and their overlaps).
fn notice_runs_once(notice: OnceNotice<Box<dyn FnOnce() + Send>>) {
    let notice = Arc::new(notice);
    let ran = Arc::new(AtomicUsize::new(0));
    let notifier = {
        let notice = Arc::clone(&notice);
        thread::spawn(move || notice.notify())
    };
    let r = Arc::clone(&ran);
    notice.when(Box::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }));
    notifier.join().unwrap();
    // A second notice changes nothing.
    notice.notify();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "lost notice: the callback never ran"
    );
}

#[test]
fn loom_once_notice_runs_the_callback_once() {
    builder(3).check(|| notice_runs_once(OnceNotice::new()));
}

#[test]
#[should_panic(expected = "lost notice")]
fn loom_once_notice_catches_check_then_fill() {
    builder(3).check(|| notice_runs_once(OnceNotice::with_check_first()));
}
