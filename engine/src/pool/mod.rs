//! Size-classed pool of reusable byte buffers. What uses it now: the shuffle's bundles
//! (taken here, given back once the transport sent them), received bundles (the module's
//! bus copies each out of Redis's buffer with a plain allocation, the shuffle [`adopt`]s it
//! and reads key batches in place through [`PooledBuf::into_buffer`]; it comes here when
//! the last array over it drops) and the bus's fallback frame message. Reader batches,
//! datums and Python objects are not pooled (docs/data-path.md).
//!
//! [`adopt`]: BufferPool::adopt
//!
//! Classes are powers of two from [`MIN_CLASS`] (1 KiB) to [`MAX_CLASS`] (4 MiB). A request
//! for `n` bytes is served from the smallest class holding `n`; a buffer given back goes to
//! the largest class its capacity covers. Each class keeps at most `max_idle_per_class`
//! idle buffers and the pool at most `max_idle_bytes` idle bytes in all: surplus is freed,
//! never hoarded. Requests above 4 MiB and buffers below 1 KiB bypass the pool.
//!
//! [`PooledBuf`] gives its storage back on drop; [`PooledBuf::into_vec`] detaches it (give
//! it back later with [`BufferPool::recycle`]); [`PooledBuf::into_buffer`] turns it into an
//! Arrow buffer that gives it back when the last reference drops ([`arrow`], the one
//! `unsafe` of this module). [`global`] is the process-wide pool; its [`PoolStats`] feed INFO.
//! An adopted buffer counts in use from its adoption, as a taken one does.
//!
//! Any thread may give back a buffer another took (the last clone of an Arrow buffer drops
//! wherever it is): the counters are single read-modify-writes and the free lists are
//! lock-free queues; `loom_tests` models that protocol.
//!
//! Depends on `sync` and crossbeam's `ArrayQueue` (lock-free bounded free lists).

#[cfg(not(loom))]
mod arrow;
#[cfg(not(loom))]
pub use arrow::checked_offsets;
#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering};
use crossbeam::queue::ArrayQueue;
use std::ops::{Deref, DerefMut};

/// Smallest pooled capacity (log2 10 = 1 KiB).
pub const MIN_CLASS: usize = 1 << MIN_SHIFT;
/// Largest pooled capacity (log2 22 = 4 MiB).
pub const MAX_CLASS: usize = 1 << MAX_SHIFT;
const MIN_SHIFT: u32 = 10;
const MAX_SHIFT: u32 = 22;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

/// Idle buffers kept per class by [`global`].
pub const GLOBAL_IDLE_PER_CLASS: usize = 64;
/// Idle bytes kept in all by [`global`].
pub const GLOBAL_IDLE_BYTES: usize = 64 << 20;

/// The pool's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes held by idle buffers, ready to be handed out.
    pub idle_bytes: u64,
    /// Capacity handed out by `take_capacity` and not given back yet. A buffer taken and
    /// then freed elsewhere (never recycled) stays counted.
    pub in_use_bytes: u64,
    /// Requests served from an idle buffer.
    pub hits: u64,
    /// Requests that allocated (no idle buffer of their class, or above 4 MiB).
    pub misses: u64,
}

impl PoolStats {
    /// Hits as a percentage of all requests (0 before the first request).
    pub fn hit_rate_percent(&self) -> u64 {
        let all = self.hits + self.misses;
        (self.hits * 100).checked_div(all).unwrap_or(0)
    }
}

/// A size-classed buffer pool; share it behind an `Arc` (or use [`global`]).
#[derive(Debug)]
pub struct BufferPool {
    classes: Vec<ArrayQueue<Vec<u8>>>,
    max_idle_bytes: usize,
    idle_bytes: AtomicUsize,
    in_use_bytes: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The class index serving a request for `n` bytes (`None`: above [`MAX_CLASS`]).
fn class_for_request(n: usize) -> Option<usize> {
    let size = n.max(MIN_CLASS).checked_next_power_of_two()?;
    let shift = size.trailing_zeros();
    (shift <= MAX_SHIFT).then(|| (shift - MIN_SHIFT) as usize)
}

/// The class a buffer of `capacity` bytes can serve (`None`: too small or too large).
fn class_for_capacity(capacity: usize) -> Option<usize> {
    if !(MIN_CLASS..MAX_CLASS * 2).contains(&capacity) {
        return None;
    }
    Some((capacity.ilog2() - MIN_SHIFT) as usize)
}

/// The capacity of class `c`.
fn class_size(c: usize) -> usize {
    MIN_CLASS << c
}

impl BufferPool {
    /// A pool keeping at most `max_idle_per_class` idle buffers per size class and at most
    /// `max_idle_bytes` idle bytes in all.
    pub fn new(max_idle_per_class: usize, max_idle_bytes: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            classes: (0..CLASSES)
                .map(|_| ArrayQueue::new(max_idle_per_class.max(1)))
                .collect(),
            max_idle_bytes,
            idle_bytes: AtomicUsize::new(0),
            in_use_bytes: AtomicUsize::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// An empty buffer with room for at least `n` bytes, reused when its class has one idle.
    // Not under loom: its `Arc` cannot be a method receiver (nothing loom-tested uses it).
    #[cfg(not(loom))]
    pub fn take_capacity(self: &Arc<Self>, n: usize) -> PooledBuf {
        PooledBuf {
            buf: self.take_vec(n),
            pool: Arc::clone(self),
        }
    }

    /// `buf` as a buffer of this pool, given back here on drop (a received message's
    /// buffer, made into an Arrow buffer with [`PooledBuf::into_buffer`]).
    #[cfg(not(loom))]
    pub fn adopt(self: &Arc<Self>, buf: Vec<u8>) -> PooledBuf {
        // Counted in use as a taken buffer is, when `recycle` will count it back.
        if class_for_capacity(buf.capacity()).is_some() {
            self.in_use_bytes
                .fetch_add(buf.capacity(), Ordering::Relaxed);
        }
        PooledBuf {
            buf,
            pool: Arc::clone(self),
        }
    }

    /// As [`take_capacity`](Self::take_capacity), detached: give it back with
    /// [`recycle`](Self::recycle).
    pub fn take_vec(&self, n: usize) -> Vec<u8> {
        let Some(c) = class_for_request(n) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Vec::with_capacity(n);
        };
        let buf = match self.classes[c].pop() {
            Some(b) => {
                self.idle_bytes.fetch_sub(b.capacity(), Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                b
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(class_size(c))
            }
        };
        self.in_use_bytes
            .fetch_add(buf.capacity(), Ordering::Relaxed);
        buf
    }

    /// A pooled copy of `bytes` (a receive buffer where a copy is made anyway).
    pub fn copy_of(&self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.take_vec(bytes.len());
        v.extend_from_slice(bytes);
        v
    }

    /// Gives `buf` back: kept idle (cleared) when its class and the byte cap have room,
    /// freed otherwise. Buffers below 1 KiB or of 8 MiB and more are always freed.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        let Some(c) = class_for_capacity(cap) else {
            return;
        };
        self.settle_in_use(cap);
        let idle = self.idle_bytes.fetch_add(cap, Ordering::Relaxed);
        if idle + cap > self.max_idle_bytes {
            self.idle_bytes.fetch_sub(cap, Ordering::Relaxed);
            return;
        }
        buf.clear();
        if self.classes[c].push(buf).is_err() {
            self.idle_bytes.fetch_sub(cap, Ordering::Relaxed);
        }
    }

    /// Lowers the in-use gauge by `cap`, never below zero.
    fn settle_in_use(&self, cap: usize) {
        let _ = self
            .in_use_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(cap))
            });
    }

    /// The counters now.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            idle_bytes: self.idle_bytes.load(Ordering::Relaxed) as u64,
            in_use_bytes: self.in_use_bytes.load(Ordering::Relaxed) as u64,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Idle buffers held right now (all classes).
    pub fn idle_buffers(&self) -> usize {
        self.classes.iter().map(ArrayQueue::len).sum()
    }
}

/// The process-wide pool (64 idle buffers per class, 64 MiB idle at most).
pub fn global() -> &'static Arc<BufferPool> {
    static POOL: std::sync::OnceLock<Arc<BufferPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| BufferPool::new(GLOBAL_IDLE_PER_CLASS, GLOBAL_IDLE_BYTES))
}

/// A buffer that goes back to its pool when dropped.
#[derive(Debug)]
pub struct PooledBuf {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl PooledBuf {
    /// Detaches the buffer from the pool (give it back with [`BufferPool::recycle`]).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The pool this buffer goes back to.
    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }
}

impl Deref for PooledBuf {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        let b = std::mem::take(&mut self.buf);
        if b.capacity() > 0 {
            self.pool.recycle(b);
        }
    }
}
