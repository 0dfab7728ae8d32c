//! A bounded pool of reusable byte buffers (shuffle frames, column payloads).
//!
//! Buffers are handed out as [`PooledBuf`], which returns its storage to the pool on drop,
//! so steady-state encoding allocates nothing. The free list is bounded: surplus buffers
//! are freed instead of hoarded. Depends on `sync` and crossbeam's `ArrayQueue`.

use crate::sync::{Arc, AtomicUsize, Ordering};
use crossbeam::queue::ArrayQueue;
use std::ops::{Deref, DerefMut};

/// Shared pool; clone the `Arc` to share.
#[derive(Debug)]
pub struct BufferPool {
    free: ArrayQueue<Vec<u8>>,
    buf_capacity: usize,
    allocated: AtomicUsize,
    reused: AtomicUsize,
}

impl BufferPool {
    /// A pool keeping at most `max_free` idle buffers of about `buf_capacity` bytes each.
    pub fn new(max_free: usize, buf_capacity: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            free: ArrayQueue::new(max_free.max(1)),
            buf_capacity,
            allocated: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
        })
    }

    /// An empty buffer, reused when one is free.
    pub fn take(pool: &Arc<Self>) -> PooledBuf {
        let buf = match pool.free.pop() {
            Some(b) => {
                pool.reused.fetch_add(1, Ordering::Relaxed);
                b
            }
            None => {
                pool.allocated.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(pool.buf_capacity)
            }
        };
        PooledBuf {
            buf: Some(buf),
            pool: Arc::clone(pool),
        }
    }

    /// (buffers allocated, buffers reused) so far.
    pub fn stats(&self) -> (usize, usize) {
        (
            self.allocated.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// Idle buffers held right now.
    pub fn idle(&self) -> usize {
        self.free.len()
    }

    fn give_back(&self, mut b: Vec<u8>) {
        // Oversized buffers would pin memory; let them go.
        if b.capacity() > self.buf_capacity * 4 {
            return;
        }
        b.clear();
        let _ = self.free.push(b);
    }
}

/// A buffer that goes back to its pool when dropped.
#[derive(Debug)]
pub struct PooledBuf {
    buf: Option<Vec<u8>>,
    pool: Arc<BufferPool>,
}

impl PooledBuf {
    /// Detaches the buffer from the pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.take().unwrap_or_default()
    }
}

impl Deref for PooledBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        self.buf.as_ref().expect("buffer present until drop")
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        self.buf.as_mut().expect("buffer present until drop")
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.give_back(b);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_bounded() {
        let pool = BufferPool::new(2, 16);
        let mut a = BufferPool::take(&pool);
        a.extend_from_slice(b"hello");
        drop(a);
        let b = BufferPool::take(&pool);
        assert!(b.is_empty(), "returned buffers come back cleared");
        assert_eq!(pool.stats(), (1, 1));
        let bufs: Vec<_> = (0..5).map(|_| BufferPool::take(&pool)).collect();
        drop(bufs);
        drop(b);
        assert_eq!(pool.idle(), 2);
    }
}
