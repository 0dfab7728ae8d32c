//! Waking a parked operator: the `Waker` a stage hands its operator, and one timer thread
//! that calls wakers at a deadline (a shuffle waiting for peers must wake up at its idle
//! bound even if nothing arrives).
//!
//! Spurious wakes are harmless: a woken stage re-runs and re-checks, and a finished stage
//! ignores wakes. Depends on `sync` only.

use std::sync::OnceLock;
use std::time::Instant;

use crate::sync::{thread, Arc, Condvar, Mutex};

/// Schedules its stage to run again (a no-op once the stage is done).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

struct Timers {
    due: Mutex<Vec<(Instant, Waker)>>,
    changed: Condvar,
}

fn timers() -> &'static Timers {
    static T: OnceLock<&'static Timers> = OnceLock::new();
    T.get_or_init(|| {
        let t: &'static Timers = Box::leak(Box::new(Timers {
            due: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        let spawned = thread::Builder::new()
            .name("gearshift-timer".into())
            .spawn(move || run(t));
        // Without the thread, parked operators still wake on arrivals; deadlines are late.
        drop(spawned);
        t
    })
}

/// Calls `w` at `at` (or soon after).
pub fn wake_at(at: Instant, w: Waker) {
    let t = timers();
    t.due
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((at, w));
    t.changed.notify_one();
}

fn run(t: &'static Timers) {
    let mut due = t.due.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        let (fire, keep): (Vec<_>, Vec<_>) = due.drain(..).partition(|(at, _)| *at <= now);
        *due = keep;
        if !fire.is_empty() {
            drop(due);
            for (_, w) in fire {
                w();
            }
            due = t.due.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        due = match due.iter().map(|(at, _)| *at).min() {
            Some(next) => {
                t.changed
                    .wait_timeout(due, next.saturating_duration_since(now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => t.changed.wait(due).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn wakers_fire_at_their_deadline_in_any_order() {
        let hits = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        for ms in [30u64, 5, 15] {
            let h = Arc::clone(&hits);
            wake_at(
                now + Duration::from_millis(ms),
                Arc::new(move || {
                    h.fetch_add(1, Ordering::SeqCst);
                }),
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while hits.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert!(now.elapsed() >= Duration::from_millis(30));
    }
}
