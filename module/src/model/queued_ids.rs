//! Execution ids of a registration's queued keyspace events (REFERENCE §12.7): in 1.2
//! every event of an async registration is an execution created when it fires, listed as
//! `created` until a thread runs it. Here an event takes its execution number when it is
//! queued (one counter increment and a push under this list's lock), is listed `created`
//! from this light record (no `Entry` until it starts), and the drain binds that number
//! when the event starts. Aborting a queued event marks its sequence number: the drain
//! skips it. Depends on `topology` ids only.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// One registration's queued events: (queue sequence number, execution number), in
/// trigger order, and the aborted ones' sequence numbers.
#[derive(Debug, Default)]
pub struct QueuedIds {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    waiting: VecDeque<(u64, u64)>,
    aborted: HashSet<u64>,
}

/// What a starting event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Its execution number, taken when it was queued.
    Number(u64),
    /// Aborted while queued: it must not run.
    Aborted,
    /// No number was taken for it (its list was cleared): it takes the next one.
    Unnumbered,
}

/// Holds the list while an event is pushed (so the number goes with the push).
pub struct Pushing<'a>(MutexGuard<'a, Inner>);

impl Pushing<'_> {
    /// The event `seq` was queued as execution number `number`.
    pub fn queued(&mut self, seq: u64, number: u64) {
        self.0.waiting.push_back((seq, number));
    }
}

impl QueuedIds {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the list for one push (notification callback).
    pub fn pushing(&self) -> Pushing<'_> {
        Pushing(self.lock())
    }

    /// The event `seq` starts (events start in sequence order): its execution number.
    /// An aborted one keeps its mark (the drain skips it and calls `skipped`).
    pub fn start(&self, seq: u64) -> Start {
        let mut s = self.lock();
        while s.waiting.front().is_some_and(|&(q, _)| q < seq) {
            s.waiting.pop_front();
        }
        if s.aborted.contains(&seq) {
            return Start::Aborted;
        }
        match s.waiting.front() {
            Some(&(q, n)) if q == seq => {
                s.waiting.pop_front();
                Start::Number(n)
            }
            _ => Start::Unnumbered,
        }
    }

    /// True if the event `seq` was aborted (it is skipped, not run).
    pub fn is_aborted(&self, seq: u64) -> bool {
        let s = self.lock();
        !s.aborted.is_empty() && s.aborted.contains(&seq)
    }

    /// Forgets the aborted mark of `seq` (the drain skipped it).
    pub fn skipped(&self, seq: u64) {
        self.lock().aborted.remove(&seq);
    }

    /// Execution numbers of the queued events, oldest first.
    pub fn numbers(&self) -> Vec<u64> {
        self.lock().waiting.iter().map(|&(_, n)| n).collect()
    }

    /// Whether execution number `number` is queued here.
    pub fn has(&self, number: u64) -> bool {
        self.lock().waiting.iter().any(|&(_, n)| n == number)
    }

    /// Aborts the queued event numbered `number`; true if it was queued here.
    pub fn abort(&self, number: u64) -> bool {
        let mut s = self.lock();
        let Some(i) = s.waiting.iter().position(|&(_, n)| n == number) else {
            return false;
        };
        if let Some((seq, _)) = s.waiting.remove(i) {
            s.aborted.insert(seq);
        }
        true
    }

    /// Forgets every queued event (their events were discarded).
    pub fn clear(&self) {
        let mut s = self.lock();
        s.waiting.clear();
        s.aborted.clear();
    }
}

/// The execution number of an id of this shard (`<shard id>-<n>`).
pub fn number_of(id: &str) -> Option<u64> {
    let n = id.rsplit_once('-')?.1.parse::<u64>().ok()?;
    (crate::model::topology::numbered_id(n) == id).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_bind_in_order_and_aborted_ones_are_skipped() {
        let q = QueuedIds::default();
        for (seq, n) in [(0, 10), (1, 11), (2, 12)] {
            q.pushing().queued(seq, n);
        }
        assert_eq!(q.numbers(), vec![10, 11, 12]);
        assert!(q.abort(11));
        assert!(!q.abort(11));
        assert_eq!(q.numbers(), vec![10, 12]);
        assert_eq!(q.start(0), Start::Number(10));
        assert!(q.is_aborted(1));
        assert_eq!(q.start(1), Start::Aborted);
        q.skipped(1);
        assert!(!q.is_aborted(1));
        assert_eq!(q.start(2), Start::Number(12));
        assert!(q.numbers().is_empty());
    }

    #[test]
    fn a_discarded_event_is_passed_over() {
        let q = QueuedIds::default();
        q.pushing().queued(0, 1);
        q.pushing().queued(1, 2);
        assert_eq!(q.start(1), Start::Number(2));
        q.clear();
        assert_eq!(q.start(2), Start::Unnumbered);
    }
}
