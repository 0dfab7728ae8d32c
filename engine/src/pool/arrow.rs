//! Pooled memory as Arrow buffers: [`PooledBuf::into_buffer`] hands a pooled `Vec<u8>` to
//! `arrow_buffer::Buffer` without copying; the buffer's owner gives the memory back to its
//! pool when the last clone of the buffer (or of an array built on it) drops.
//!
//! [`checked_offsets`] makes Arrow offsets out of received (pooled) memory after checking
//! them once, in a pass that vectorises, rather than again in Arrow's constructor.
//!
//! This is one of the engine's named `unsafe` modules (two calls:
//! `Buffer::from_custom_allocation`, `OffsetBuffer::new_unchecked`). Depends on the pool
//! (its parent) and `arrow-buffer`.
#![allow(unsafe_code)]

use super::{BufferPool, PooledBuf};
use crate::sync::Arc;
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use std::panic::AssertUnwindSafe;
use std::ptr::NonNull;

/// Arrow reads typed buffers (offsets, integers) at up to this alignment.
const ARROW_ALIGN: usize = 8;

/// Owns a pooled vector while an Arrow buffer points into it; recycles it on drop.
struct Recycle {
    buf: Vec<u8>,
    // The pool's counters and lock-free queues stay consistent if a panic unwinds past a
    // reference to them (each update is a single atomic step).
    pool: AssertUnwindSafe<Arc<BufferPool>>,
}

impl Drop for Recycle {
    fn drop(&mut self) {
        self.pool.recycle(std::mem::take(&mut self.buf));
    }
}

impl PooledBuf {
    /// The bytes written so far as an immutable Arrow buffer; no copy. The memory goes back
    /// to the pool when the buffer is dropped. (A vector the allocator placed at less than
    /// 8-byte alignment, which the system allocators never do for these sizes, is handed
    /// to Arrow as a plain vector instead and freed rather than recycled.)
    pub fn into_buffer(self) -> Buffer {
        let pool = Arc::clone(self.pool());
        let buf = self.into_vec();
        if buf.capacity() == 0 || !buf.as_ptr().addr().is_multiple_of(ARROW_ALIGN) {
            return Buffer::from_vec(buf);
        }
        let len = buf.len();
        let ptr = NonNull::new(buf.as_ptr().cast_mut()).expect("a vector's pointer is non-null");
        let owner = Arc::new(Recycle {
            buf,
            pool: AssertUnwindSafe(pool),
        });
        // SAFETY: `ptr` points at the first of `len` initialised bytes of `owner.buf`. The
        // vector's heap block does not move when the vector is moved into `owner`, and it is
        // neither written nor freed until `owner` drops, which Arrow's `Bytes` delays until
        // the last reference to this buffer is gone (it holds `owner` for exactly that long).
        unsafe { Buffer::from_custom_allocation(ptr, len, owner) }
    }
}

/// `o` as Arrow offsets when it is not empty, starts at 0 and never decreases (one
/// branch-free pass); `None` otherwise.
pub fn checked_offsets(o: ScalarBuffer<i32>) -> Option<OffsetBuffer<i32>> {
    let ok = o.first() == Some(&0) && o.iter().zip(&o[1..]).fold(true, |ok, (a, b)| ok & (a <= b));
    // SAFETY: `new_unchecked` requires a non-empty buffer of values >= 0 that never
    // decrease: `o[0]` exists and is 0, and each value is >= the one before it.
    ok.then(|| unsafe { OffsetBuffer::new_unchecked(o) })
}
