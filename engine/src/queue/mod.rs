//! Bounded lock-free single-producer/single-consumer ring between pipeline stages.
//!
//! Algorithm: Lamport's ring buffer (the classic wait-free SPSC queue) with monotonically
//! increasing `head`/`tail` counters on separate cache lines. The producer owns `tail`, the
//! consumer owns `head`; each publishes its counter with `Release` and reads the other's
//! with `Acquire`, so a slot's write happens-before its read. Capacity is fixed, so a slow
//! consumer slows the producer (back-pressure) instead of growing memory.
//!
//! Every ring adds to one process-wide gauge, [`queued`]: the items (batches between
//! stages) pushed and not yet popped or dropped, for INFO. Not kept under loom (a static
//! cannot hold loom's atomics).
//!
//! This is one of the engine's named `unsafe` modules. Depends on `sync` only.
//! [`events`]: the keyspace-event queue of registrations (variable-length records, no
//! `unsafe`), loom-modelled too.
#![allow(unsafe_code)]

pub mod events;
#[cfg(all(test, loom))]
mod loom_events;
#[cfg(all(test, loom))]
mod loom_tests;

use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;
use std::mem::MaybeUninit;

/// Items queued in every ring of the process.
#[cfg(not(loom))]
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Items pushed to any SPSC ring of the process and not yet popped or dropped (batches
/// queued between stages); 0 under loom.
pub fn queued() -> usize {
    #[cfg(not(loom))]
    return QUEUED.load(Ordering::Relaxed);
    #[cfg(loom)]
    return 0;
}

fn queued_add(n: usize) {
    #[cfg(not(loom))]
    QUEUED.fetch_add(n, Ordering::Relaxed);
    let _ = n;
}

fn queued_sub(n: usize) {
    #[cfg(not(loom))]
    QUEUED.fetch_sub(n, Ordering::Relaxed);
    let _ = n;
}

struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    /// Set when the producer is dropped: no more items will come.
    closed: AtomicBool,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the ring hands each `T` from exactly one thread (the producer) to exactly one
// other (the consumer); slot access is serialized by the head/tail protocol, so sharing
// the ring is sound whenever `T` itself may move between threads.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above; the ring owns its items.
unsafe impl<T: Send> Send for Ring<T> {}

/// The sending half. Not `Clone`: there is exactly one producer.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
}

/// The receiving half. Not `Clone`: there is exactly one consumer.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.slots.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.slots.len())
            .finish()
    }
}

/// Creates a queue holding at most `capacity` items (at least 1).
pub fn spsc<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.max(1);
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        closed: AtomicBool::new(false),
        slots,
    });
    (
        Producer {
            ring: Arc::clone(&ring),
        },
        Consumer { ring },
    )
}

impl<T> Producer<T> {
    /// Pushes `v`, or hands it back when the queue is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let ring = &*self.ring;
        let tail = ring.tail.load(Ordering::Relaxed); // only we write tail
        let head = ring.head.load(Ordering::Acquire);
        if tail - head == ring.slots.len() {
            return Err(v);
        }
        let slot = &ring.slots[tail % ring.slots.len()];
        // SAFETY: `tail - head < capacity`, so the consumer has released this slot (its
        // `head` store was Release and we read it with Acquire) and will not read it until
        // we publish `tail + 1` below. We are the only producer.
        slot.with_mut(|p| unsafe { (*p).write(v) });
        // Counted before the item is published, so the consumer's decrement comes after.
        queued_add(1);
        ring.tail.store(tail + 1, Ordering::Release);
        Ok(())
    }

    /// True when a push would fail.
    pub fn is_full(&self) -> bool {
        let ring = &*self.ring;
        ring.tail.load(Ordering::Relaxed) - ring.head.load(Ordering::Acquire) == ring.slots.len()
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.ring.closed.store(true, Ordering::Release);
    }
}

/// What a pop found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop<T> {
    Item(T),
    /// Nothing now; the producer may push more.
    Empty,
    /// Nothing now and never again: the producer is gone.
    Closed,
}

impl<T> Consumer<T> {
    /// Pops the oldest item.
    pub fn pop(&mut self) -> Pop<T> {
        let ring = &*self.ring;
        // Read `closed` before `tail`: if the producer closed after its last push, that push
        // is visible once we see `closed` (Acquire), so "empty and closed" is final.
        let closed = ring.closed.load(Ordering::Acquire);
        let head = ring.head.load(Ordering::Relaxed); // only we write head
        let tail = ring.tail.load(Ordering::Acquire);
        if head == tail {
            return if closed { Pop::Closed } else { Pop::Empty };
        }
        let slot = &ring.slots[head % ring.slots.len()];
        // SAFETY: `head < tail`, so the producer initialised this slot and published it
        // with a Release store of `tail` that we read with Acquire. The producer will not
        // touch it again until we publish `head + 1`. We are the only consumer.
        let v = slot.with_mut(|p| unsafe { (*p).assume_init_read() });
        ring.head.store(head + 1, Ordering::Release);
        queued_sub(1);
        Pop::Item(v)
    }

    /// Items currently queued.
    pub fn len(&self) -> usize {
        let ring = &*self.ring;
        ring.tail.load(Ordering::Acquire) - ring.head.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        queued_sub(tail - head);
        for i in head..tail {
            let slot = &self.slots[i % self.slots.len()];
            // SAFETY: we have `&mut self`, so neither half exists any more; slots in
            // `head..tail` were initialised and never read.
            slot.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full() {
        let (mut p, mut c) = spsc(2);
        assert_eq!(p.push(1), Ok(()));
        assert_eq!(p.push(2), Ok(()));
        assert_eq!(p.push(3), Err(3));
        assert_eq!(c.pop(), Pop::Item(1));
        assert_eq!(p.push(3), Ok(()));
        assert_eq!(c.pop(), Pop::Item(2));
        assert_eq!(c.pop(), Pop::Item(3));
        assert_eq!(c.pop(), Pop::Empty);
        drop(p);
        assert_eq!(c.pop(), Pop::Closed);
    }

    #[test]
    fn the_gauge_counts_items_until_popped_or_dropped() {
        // Other tests' rings run in parallel: look only at this test's own items, in
        // amounts no concurrent ring of the other tests reaches at once.
        const N: usize = 1000;
        let (mut p, mut c) = spsc(2 * N);
        for i in 0..2 * N {
            p.push(i).unwrap();
        }
        assert!(queued() >= 2 * N);
        for _ in 0..N {
            assert!(matches!(c.pop(), Pop::Item(_)));
        }
        let (mut p2, c2) = spsc(N);
        for i in 0..N {
            p2.push(i).unwrap();
        }
        drop((p, c, p2, c2));
        assert!(
            queued() < N,
            "popped and dropped items are no longer counted"
        );
    }

    #[test]
    fn drops_unread_items() {
        let item = Arc::new(());
        let (mut p, c) = spsc(4);
        p.push(Arc::clone(&item)).unwrap();
        p.push(Arc::clone(&item)).unwrap();
        drop(p);
        drop(c);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn threads_move_a_million_items_in_order() {
        let (mut p, mut c) = spsc::<u64>(64);
        let n = 1_000_000u64;
        let t = crate::sync::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                if p.push(i).is_ok() {
                    i += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut expect = 0;
        loop {
            match c.pop() {
                Pop::Item(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                Pop::Empty => std::hint::spin_loop(),
                Pop::Closed => break,
            }
        }
        t.join().unwrap();
        assert_eq!(expect, n);
    }
}
