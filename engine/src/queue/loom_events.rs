//! loom models of the keyspace-event queue: run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gearshift-engine --release --lib loom`.
//!
//! Tiny rings make records fill the ring, wrap around and cross chunk boundaries within a
//! few pushes.

use super::events::{EventQueue, Pushed};
use crate::sync::{thread, Arc, AtomicBool, Mutex, Ordering};

/// A ring of 2 chunks of 4 words.
fn tiny(max_events: usize) -> EventQueue {
    EventQueue::with_geometry(max_events, 4, 2)
}

/// Unbounded preemptions, whatever `LOOM_MAX_PREEMPTIONS` says (CI sets 2 for the other
/// models): these models are small (about 1 s), and a bound of 2 misses the interleavings
/// that matter here (a pop between two pushes, then a wrap).
fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = None;
    b
}

/// Events of assorted sizes: 2, 3 and 2 words (with the header).
const EVENTS: [(&[u8], &[u8]); 3] = [(b"k1", b"set"), (b"key:long", b"hset!!"), (b"k3", b"del")];

#[test]
fn loom_events_arrive_in_order_and_intact_or_are_counted_dropped() {
    builder().check(|| {
        // 4 words in 2 chunks: the 3-word event fits only once the first is popped, then
        // wraps around the ring across both chunks; the third may find the ring full.
        let q = Arc::new(EventQueue::with_geometry(8, 2, 2));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let producer = {
            let (q, accepted) = (Arc::clone(&q), Arc::clone(&accepted));
            thread::spawn(move || {
                for (i, (k, e)) in EVENTS.iter().enumerate() {
                    if q.push(k, e) != Pushed::Dropped {
                        accepted.lock().unwrap().push(i);
                    }
                }
            })
        };
        let mut got = Vec::new();
        for _ in 0..EVENTS.len() + 2 {
            let mut c = q.consumer();
            while let Some(ev) = c.pop() {
                got.push((ev.key.to_vec(), ev.event.to_vec(), ev.seq));
            }
            drop(c);
            thread::yield_now();
        }
        producer.join().unwrap();
        let mut c = q.consumer();
        while let Some(ev) = c.pop() {
            got.push((ev.key.to_vec(), ev.event.to_vec(), ev.seq));
        }
        let accepted = accepted.lock().unwrap().clone();
        let want: Vec<_> = accepted
            .iter()
            .enumerate()
            .map(|(seq, &i)| (EVENTS[i].0.to_vec(), EVENTS[i].1.to_vec(), seq as u64))
            .collect();
        assert_eq!(got, want);
        assert_eq!(q.take_dropped() as usize, EVENTS.len() - accepted.len());
        assert!(q.is_empty());
    });
}

/// A drain as the module runs one: pop everything, then stop unless an event arrived
/// meanwhile and no other drain claimed it.
fn drain(q: &EventQueue, got: &Mutex<Vec<u64>>) {
    loop {
        let mut c = q.consumer();
        while let Some(ev) = c.pop() {
            got.lock().unwrap().push(ev.seq);
        }
        drop(c);
        if !q.finish_drain() {
            return;
        }
    }
}

#[test]
fn loom_drain_handoff_loses_no_event() {
    builder().check(|| {
        let q = Arc::new(tiny(8));
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut drains = Vec::new();
        for (k, e) in &EVENTS[..2] {
            // A push that finds the queue idle starts a drain (the notification callback).
            if q.push(k, e) == (Pushed::Accepted { schedule: true }) {
                let (q, got) = (Arc::clone(&q), Arc::clone(&got));
                drains.push(thread::spawn(move || drain(&q, &got)));
            }
        }
        for d in drains {
            d.join().unwrap();
        }
        assert_eq!(
            *got.lock().unwrap(),
            vec![0, 1],
            "every event ran once, in order"
        );
        assert!(q.is_empty());
    });
}

#[test]
fn loom_discarded_events_never_start_after_the_discard() {
    builder().check(|| {
        let q = Arc::new(tiny(8));
        let discarded = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, discarded) = (Arc::clone(&q), Arc::clone(&discarded));
            thread::spawn(move || {
                q.push(b"a", b"set");
                q.push(b"b", b"set");
                q.discard_pending();
                discarded.store(true, Ordering::Release);
                q.push(b"c", b"set");
            })
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            let after = discarded.load(Ordering::Acquire);
            let mut c = q.consumer();
            if let Some(ev) = c.pop() {
                assert!(
                    !after || ev.seq >= 2,
                    "event {} ran after its discard",
                    ev.seq
                );
                got.push(ev.seq);
            }
            drop(c);
            thread::yield_now();
        }
        producer.join().unwrap();
        let mut c = q.consumer();
        while let Some(ev) = c.pop() {
            got.push(ev.seq);
        }
        assert_eq!(
            got.last(),
            Some(&2),
            "the event pushed after the discard runs"
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    });
}
