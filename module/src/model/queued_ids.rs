//! Execution ids of a registration's queued keyspace events (REFERENCE §12.7): in 1.2
//! every event of an async registration is an execution created when it fires, listed as
//! `created` until a thread runs it. Here an event takes its execution number when it is
//! queued (one counter increment and a push under this list's lock, which the producer,
//! holding the Redis lock, only shares with listings and aborts), is listed `created` from
//! this light record (no `Entry` until it starts), and the drain binds that number when
//! the event starts.
//!
//! The batched drain takes a batch's numbers at once (`bind`, under the Redis lock, so
//! with no producer competing), and starts each event lock-free (`start`: one atomic
//! store; the lock only while an abort is pending). Aborting a queued event marks its
//! sequence number; the drain skips it. An abort racing with the start of that event is
//! settled Dekker-style: the drain publishes the start then looks for aborts; the abort
//! publishes its mark then looks for the start; at least one of them sees the other.
//! The per-event drain takes one event at a time (`start_one`), held as a batch of one.
//!
//! Clients blocked on a queued event's result (RG.GETRESULTSBLOCKING) wait here, by
//! number, at most `MAX_WAITERS` per registration: an event stays pending (`pending`)
//! until its execution is recorded (`recorded`, which hands its clients over), aborted
//! (`abort`) or discarded (`clear`), each of which returns the waiting clients, so none
//! is left blocked. Depends on `topology` ids and `redis::ffi::replies::Blocked`.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use engine::sync::{AtomicU64, Ordering};

use crate::redis::ffi::replies::Blocked;

/// Clients one registration's queued events may have waiting on them at once.
pub const MAX_WAITERS: usize = 4096;

/// One registration's queued events (`W`: a client waiting for one's result).
#[derive(Debug)]
pub struct QueuedIds<W = Blocked> {
    inner: Mutex<Inner<W>>,
    /// Events with a sequence number below this have started (or were skipped).
    started: AtomicU64,
    /// Aborted events not skipped yet (the lock-free path looks at this first).
    aborts: AtomicU64,
}

impl<W> Default for QueuedIds<W> {
    fn default() -> Self {
        QueuedIds {
            inner: Mutex::new(Inner {
                waiting: VecDeque::new(),
                batch: Vec::new(),
                aborted: HashSet::new(),
                clients: Vec::new(),
            }),
            started: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
        }
    }
}

#[derive(Debug)]
struct Inner<W> {
    /// (queue sequence number, execution number) of events not popped, in trigger order.
    waiting: VecDeque<(u64, u64)>,
    /// The same for the events the drain holds (bound, not all started, or started and
    /// not recorded yet).
    batch: Vec<(u64, u64)>,
    /// Sequence numbers of aborted events, not skipped yet.
    aborted: HashSet<u64>,
    /// Clients waiting for a pending event's result, by execution number.
    clients: Vec<(u64, W)>,
}

impl<W> Inner<W> {
    fn is_pending(&self, number: u64) -> bool {
        self.batch
            .iter()
            .chain(self.waiting.iter())
            .any(|&(_, n)| n == number)
    }

    /// Takes the clients waiting for `number`.
    fn clients_of(&mut self, number: u64) -> Vec<W> {
        if self.clients.is_empty() {
            return Vec::new();
        }
        let (of, rest) = std::mem::take(&mut self.clients)
            .into_iter()
            .partition(|(n, _)| *n == number);
        self.clients = rest;
        of.into_iter().map(|(_, w)| w).collect()
    }
}

/// Why a client could not wait for a queued event.
#[derive(Debug)]
pub enum NotWaiting<W> {
    /// The event is not pending (any more): its execution is kept, or was dropped.
    NotPending(W),
    /// `MAX_WAITERS` clients wait already.
    Full(W),
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
pub struct Pushing<'a, W>(MutexGuard<'a, Inner<W>>);

impl<W> Pushing<'_, W> {
    /// The event `seq` was queued as execution number `number`.
    pub fn queued(&mut self, seq: u64, number: u64) {
        self.0.waiting.push_back((seq, number));
    }
}

impl<W> QueuedIds<W> {
    fn lock(&self) -> MutexGuard<'_, Inner<W>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the list for one push (notification callback).
    pub fn pushing(&self) -> Pushing<'_, W> {
        Pushing(self.lock())
    }

    /// The batched drain now holds the events `seqs` (ascending; carried ones first):
    /// their execution numbers. They stay listed `created` until `start`.
    pub fn bind(&self, seqs: &[u64]) -> Vec<Start> {
        let mut s = self.lock();
        let old = std::mem::take(&mut s.batch);
        let mut old = old.into_iter().peekable();
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            while old.peek().is_some_and(|&(q, _)| q < seq) {
                old.next();
            }
            let found = match old.peek() {
                Some(&(q, n)) if q == seq => old.next().map(|_| (q, n)),
                _ => {
                    while s.waiting.front().is_some_and(|&(q, _)| q < seq) {
                        s.waiting.pop_front();
                    }
                    match s.waiting.front() {
                        Some(&(q, _)) if q == seq => s.waiting.pop_front(),
                        _ => None,
                    }
                }
            };
            out.push(match found {
                Some(e) => {
                    s.batch.push(e);
                    Start::Number(e.1)
                }
                None if s.aborted.contains(&seq) => Start::Aborted,
                None => Start::Unnumbered,
            });
        }
        out
    }

    /// A bound event `seq` starts (lock-free unless an abort is pending); false if it
    /// was aborted (it must not run; the drain skips it).
    pub fn start(&self, seq: u64) -> bool {
        self.started.store(seq + 1, Ordering::SeqCst);
        if self.aborts.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let s = self.lock();
        if s.aborted.contains(&seq) {
            self.started.store(seq, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The per-event drain's start of the event `seq` (popped, events in order): a batch
    /// of one, pending until `recorded`.
    pub fn start_one(&self, seq: u64) -> Start {
        let mut s = self.lock();
        while s.waiting.front().is_some_and(|&(q, _)| q < seq) {
            s.waiting.pop_front();
        }
        if s.aborted.contains(&seq) {
            return Start::Aborted;
        }
        self.started.store(seq + 1, Ordering::SeqCst);
        match s.waiting.front() {
            Some(&(q, n)) if q == seq => {
                s.waiting.pop_front();
                s.batch.push((q, n));
                Start::Number(n)
            }
            _ => Start::Unnumbered,
        }
    }

    /// True if the event `seq` was aborted; it is then forgotten (the caller skips it).
    pub fn skip_aborted(&self, seq: u64) -> bool {
        if self.aborts.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let mut s = self.lock();
        let aborted = s.aborted.remove(&seq);
        if aborted {
            self.aborts.fetch_sub(1, Ordering::SeqCst);
        }
        aborted
    }

    /// How many events are queued, not started.
    pub fn count(&self) -> usize {
        let s = self.lock();
        let started = self.started.load(Ordering::SeqCst);
        s.batch.iter().filter(|&&(q, _)| q >= started).count() + s.waiting.len()
    }

    /// Execution numbers of the events not started, oldest first (the newest `limit`).
    pub fn numbers(&self, limit: usize) -> Vec<u64> {
        let s = self.lock();
        let started = self.started.load(Ordering::SeqCst);
        let bound = s.batch.iter().filter(|&&(q, _)| q >= started);
        let all = bound.count() + s.waiting.len();
        let bound = s.batch.iter().filter(|&&(q, _)| q >= started);
        let skip = all.saturating_sub(limit);
        bound
            .chain(s.waiting.iter())
            .skip(skip)
            .map(|&(_, n)| n)
            .collect()
    }

    /// Whether execution number `number` is queued or in the drain's batch (started or
    /// not, until the batch is recorded: its entry may not exist yet).
    pub fn pending(&self, number: u64) -> bool {
        self.lock().is_pending(number)
    }

    /// Parks `client` until the pending event `number` is recorded, aborted or discarded.
    pub fn wait(&self, number: u64, client: W) -> Result<(), NotWaiting<W>> {
        let mut s = self.lock();
        if !s.is_pending(number) {
            return Err(NotWaiting::NotPending(client));
        }
        if s.clients.len() >= MAX_WAITERS {
            return Err(NotWaiting::Full(client));
        }
        s.clients.push((number, client));
        Ok(())
    }

    /// Whether any client waits for one of these events now.
    pub fn has_clients(&self) -> bool {
        !self.lock().clients.is_empty()
    }

    /// The indices of `numbers` some client waits for now.
    pub fn awaited(&self, numbers: &[u64]) -> Vec<usize> {
        let s = self.lock();
        if s.clients.is_empty() {
            return Vec::new();
        }
        (0..numbers.len())
            .filter(|&i| s.clients.iter().any(|&(n, _)| n == numbers[i]))
            .collect()
    }

    /// The drain's batch is recorded: its started events' entries exist (or were
    /// dropped); the events carried to the next batch stay. Returns the clients that
    /// waited for the started ones, with the number each waits for.
    pub fn recorded(&self) -> Vec<(u64, W)> {
        let started = self.started.load(Ordering::SeqCst);
        let mut s = self.lock();
        let mut done = Vec::new();
        s.batch.retain(|&(q, n)| {
            if q < started {
                done.push(n);
            }
            q >= started
        });
        if s.clients.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for n in done {
            out.extend(s.clients_of(n).into_iter().map(|w| (n, w)));
        }
        out
    }

    /// Whether execution number `number` is queued here, not started.
    pub fn has(&self, number: u64) -> bool {
        self.numbers(usize::MAX).contains(&number)
    }

    /// Aborts the queued event numbered `number`: the clients waiting for it if it was
    /// queued here and had not started (it never will), else None.
    pub fn abort(&self, number: u64) -> Option<Vec<W>> {
        let mut s = self.lock();
        if let Some(i) = s.waiting.iter().position(|&(_, n)| n == number) {
            if let Some((seq, _)) = s.waiting.remove(i) {
                s.aborted.insert(seq);
                self.aborts.fetch_add(1, Ordering::SeqCst);
            }
            return Some(s.clients_of(number));
        }
        let i = s.batch.iter().position(|&(_, n)| n == number)?;
        let seq = s.batch[i].0;
        s.aborted.insert(seq);
        self.aborts.fetch_add(1, Ordering::SeqCst);
        if self.started.load(Ordering::SeqCst) > seq {
            // It started first: it runs (an abort of a running event stops it).
            s.aborted.remove(&seq);
            self.aborts.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        s.batch.remove(i);
        Some(s.clients_of(number))
    }

    /// Forgets every queued event (their events were discarded); returns the clients
    /// that waited for them.
    pub fn clear(&self) -> Vec<W> {
        let mut s = self.lock();
        s.waiting.clear();
        s.batch.clear();
        s.aborted.clear();
        self.aborts.store(0, Ordering::SeqCst);
        std::mem::take(&mut s.clients)
            .into_iter()
            .map(|(_, w)| w)
            .collect()
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

    type Q = QueuedIds<u32>;

    fn nums(ns: &[u64]) -> Vec<Start> {
        ns.iter().map(|&n| Start::Number(n)).collect()
    }

    #[test]
    fn an_event_aborted_before_it_is_bound_is_reported() {
        let q = queued(2);
        assert!(q.abort(10).is_some());
        assert_eq!(q.bind(&[0, 1]), vec![Start::Aborted, Start::Number(11)]);
    }

    fn queued(n: u64) -> Q {
        let q = Q::default();
        for seq in 0..n {
            q.pushing().queued(seq, 10 + seq);
        }
        q
    }

    #[test]
    fn per_event_numbers_bind_in_order_and_aborted_ones_are_skipped() {
        let q = queued(3);
        assert_eq!(q.numbers(usize::MAX), vec![10, 11, 12]);
        assert!(q.abort(11).is_some());
        assert!(q.abort(11).is_none());
        assert_eq!(q.numbers(usize::MAX), vec![10, 12]);
        assert_eq!(q.start_one(0), Start::Number(10));
        assert_eq!(q.start_one(1), Start::Aborted);
        assert!(q.skip_aborted(1));
        assert!(!q.skip_aborted(1));
        assert_eq!(q.start_one(2), Start::Number(12));
        assert!(q.numbers(usize::MAX).is_empty());
    }

    #[test]
    fn a_batch_stays_listed_until_each_event_starts() {
        let q = queued(4);
        assert_eq!(q.bind(&[0, 1, 2]), nums(&[10, 11, 12]));
        assert_eq!(q.numbers(usize::MAX), vec![10, 11, 12, 13]);
        assert!(q.start(0));
        assert_eq!(q.numbers(usize::MAX), vec![11, 12, 13]);
        assert!(q.abort(10).is_none(), "started");
        assert!(q.abort(12).is_some());
        assert!(q.start(1));
        assert!(!q.start(2), "aborted while bound");
        assert!(q.skip_aborted(2));
        // Event 3 carried to the next batch with event 4.
        q.pushing().queued(4, 14);
        assert_eq!(q.bind(&[3, 4]), nums(&[13, 14]));
        assert_eq!(q.numbers(usize::MAX), vec![13, 14]);
    }

    #[test]
    fn carried_events_keep_their_numbers() {
        let q = queued(3);
        assert_eq!(q.bind(&[0, 1]), nums(&[10, 11]));
        assert!(q.start(0));
        assert_eq!(q.bind(&[1, 2]), nums(&[11, 12]));
        assert_eq!(q.numbers(usize::MAX), vec![11, 12]);
        assert_eq!(q.numbers(1), vec![12]);
        assert!(q.pending(11) && !q.pending(10));
        assert!(q.start(1));
        q.recorded();
        assert!(!q.pending(11) && q.pending(12), "12 is carried");
    }

    #[test]
    fn a_discarded_event_is_unnumbered() {
        let q = queued(2);
        assert_eq!(q.start_one(1), Start::Number(11));
        assert!(q.pending(11), "until recorded");
        assert!(q.recorded().is_empty());
        assert!(!q.pending(11));
        q.clear();
        assert_eq!(q.start_one(2), Start::Unnumbered);
        assert_eq!(q.bind(&[3]), vec![Start::Unnumbered]);
    }

    #[test]
    fn waiting_clients_are_handed_over_once_their_event_is_recorded() {
        let q = queued(3);
        q.wait(10, 1).unwrap();
        q.wait(11, 2).unwrap();
        q.wait(12, 3).unwrap();
        assert!(matches!(q.wait(9, 4), Err(NotWaiting::NotPending(4))));
        assert_eq!(q.bind(&[0, 1]), nums(&[10, 11]));
        assert!(q.start(0));
        assert_eq!(q.recorded(), vec![(10, 1)], "11 is carried");
        assert_eq!(q.awaited(&[10, 11, 12]), vec![1, 2]);
        assert_eq!(q.abort(12), Some(vec![3]));
        assert_eq!(q.clear(), vec![2]);
    }

    #[test]
    fn a_per_event_start_is_pending_until_recorded() {
        let q = queued(2);
        q.wait(10, 7).unwrap();
        assert_eq!(q.start_one(0), Start::Number(10));
        assert_eq!(q.count(), 1);
        assert_eq!(q.numbers(usize::MAX), vec![11]);
        q.wait(10, 8).unwrap();
        assert_eq!(q.recorded(), vec![(10, 7), (10, 8)]);
        assert!(matches!(q.wait(10, 9), Err(NotWaiting::NotPending(9))));
    }

    #[test]
    fn the_waiting_clients_are_bounded() {
        let q = queued(1);
        for i in 0..MAX_WAITERS as u32 {
            q.wait(10, i).unwrap();
        }
        assert!(matches!(q.wait(10, 0), Err(NotWaiting::Full(0))));
    }
}
