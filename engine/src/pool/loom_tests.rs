//! loom models of the pool's cross-thread protocol: a buffer is taken on one thread and
//! given back on another (the last clone of an Arrow buffer built on it dropped by another
//! worker, a bundle recycled by the bus thread) while other threads take and give back
//! buffers of the same class. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p gearshift-engine --release --lib loom`.
//!
//! What loom explores is the pool's own atomics (the idle-byte, in-use and hit/miss
//! counters, each updated by a read-modify-write). The free lists are crossbeam's
//! `ArrayQueue`, which loom cannot see into: each push or pop runs whole between loom's
//! switch points, so the models take the queue as linearisable and check what the pool
//! builds on it. `PooledBuf::into_buffer`'s owner is not built under loom (arrow holds it
//! in std's `Arc`); its drop is one `recycle`, which these models run from any thread.
//!
//! After every thread has joined, whatever the interleaving: the idle-byte gauge equals
//! the capacity of the idle buffers, no class and not the pool exceed their caps, every
//! request counted once as a hit or a miss, the in-use gauge is exactly the capacity still
//! handed out, and no buffer was handed out twice.

use super::{BufferPool, MIN_CLASS};
use crate::sync::{thread, Arc};

/// Each model's preemption bound, whatever `LOOM_MAX_PREEMPTIONS` says (each runs within
/// seconds at its bound).
fn builder(preemptions: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemptions);
    b
}

/// Every idle buffer, taken out of `pool` (their addresses, so the caller can check that
/// none is also held elsewhere); asserts the idle-byte gauge matched them.
fn drain_idle(pool: &Arc<BufferPool>, held: &[usize]) -> Vec<Vec<u8>> {
    let idle = pool.idle_buffers();
    let idle_bytes = pool.stats().idle_bytes as usize;
    assert_eq!(
        idle_bytes,
        idle * MIN_CLASS,
        "the idle-byte gauge does not match the idle buffers"
    );
    let bufs: Vec<Vec<u8>> = (0..idle).map(|_| pool.take_vec(MIN_CLASS)).collect();
    for b in &bufs {
        assert_eq!(b.capacity(), MIN_CLASS, "an idle buffer of the wrong class");
        assert!(
            !held.contains(&b.as_ptr().addr()),
            "a buffer was handed out twice"
        );
    }
    bufs
}

/// Two buffers taken here are given back concurrently, one on another thread, while a
/// third thread takes one of the same class. The pool keeps one idle buffer at most (per
/// class and in bytes), so at most one of the two returns is kept.
#[test]
fn loom_pool_recycle_across_threads_while_taking() {
    builder(3).check(|| {
        let pool = BufferPool::new(1, MIN_CLASS);
        let a = pool.take_vec(MIN_CLASS);
        let b = pool.take_vec(MIN_CLASS);
        let giver = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.recycle(a))
        };
        let taker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.take_vec(MIN_CLASS))
        };
        pool.recycle(b);
        giver.join().unwrap();
        let c = taker.join().unwrap();
        assert_eq!(c.capacity(), MIN_CLASS);
        let s = pool.stats();
        assert_eq!(s.hits + s.misses, 3, "a request was not counted once");
        assert!(
            s.idle_bytes as usize <= MIN_CLASS,
            "idle bytes over the cap"
        );
        assert_eq!(
            s.in_use_bytes as usize, MIN_CLASS,
            "the in-use gauge is not what is still handed out"
        );
        let idle = drain_idle(&pool, &[c.as_ptr().addr()]);
        assert!(idle.len() <= 1, "a class kept more than its cap");
        pool.recycle(c);
        idle.into_iter().for_each(|b| pool.recycle(b));
        assert_eq!(pool.stats().in_use_bytes, 0, "everything was given back");
    });
}

/// Two threads each take a buffer and give it back twice over (a worker's scratch reused
/// turn after turn) with room for both idle: every return is kept, every later take is a
/// hit, and the two threads never hold the same buffer.
#[test]
fn loom_pool_reuse_by_two_threads() {
    builder(2).check(|| {
        let pool = BufferPool::new(2, 2 * MIN_CLASS);
        pool.recycle(Vec::with_capacity(MIN_CLASS));
        pool.recycle(Vec::with_capacity(MIN_CLASS));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    for _ in 0..2 {
                        let mut v = pool.take_vec(MIN_CLASS);
                        v.push(1);
                        pool.recycle(v);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let s = pool.stats();
        assert_eq!(
            (s.hits, s.misses),
            (4, 0),
            "a take missed with a buffer idle"
        );
        assert_eq!(s.in_use_bytes, 0);
        let idle = drain_idle(&pool, &[]);
        assert_eq!(idle.len(), 2, "a buffer given back was dropped");
        assert_ne!(idle[0].as_ptr(), idle[1].as_ptr(), "one buffer idle twice");
    });
}
