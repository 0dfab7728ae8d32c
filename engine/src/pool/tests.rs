//! Unit tests of the buffer pool: class choice, recycling, caps, Arrow round trip.

use super::*;

#[test]
fn requests_go_to_the_smallest_class_that_holds_them() {
    assert_eq!(class_for_request(0), Some(0));
    assert_eq!(class_for_request(1), Some(0));
    assert_eq!(class_for_request(MIN_CLASS), Some(0));
    assert_eq!(class_for_request(MIN_CLASS + 1), Some(1));
    assert_eq!(class_for_request(64 * 1024), Some(6));
    assert_eq!(class_for_request(MAX_CLASS), Some(CLASSES - 1));
    assert_eq!(class_for_request(MAX_CLASS + 1), None);
    assert_eq!(class_for_request(usize::MAX), None);
    // A given-back buffer serves the largest class its capacity covers.
    assert_eq!(class_for_capacity(MIN_CLASS - 1), None);
    assert_eq!(class_for_capacity(MIN_CLASS), Some(0));
    assert_eq!(class_for_capacity(3 * MIN_CLASS), Some(1));
    assert_eq!(class_for_capacity(2 * MAX_CLASS - 1), Some(CLASSES - 1));
    assert_eq!(class_for_capacity(2 * MAX_CLASS), None);
}

#[test]
fn buffers_are_reused_cleared_and_counted() {
    let pool = BufferPool::new(4, 1 << 20);
    let mut a = pool.take_capacity(3000);
    assert!(a.capacity() >= 4096, "served from the 4 KiB class");
    a.extend_from_slice(b"hello");
    let ptr = a.as_ptr();
    assert_eq!(pool.stats().in_use_bytes, 4096);
    drop(a);
    let s = pool.stats();
    assert_eq!(
        (s.idle_bytes, s.in_use_bytes, s.hits, s.misses),
        (4096, 0, 0, 1)
    );
    let b = pool.take_capacity(2049);
    assert!(b.is_empty(), "given-back buffers come back cleared");
    assert_eq!(b.as_ptr(), ptr, "the same memory is handed out again");
    let s = pool.stats();
    assert_eq!((s.idle_bytes, s.hits, s.misses), (0, 1, 1));
    assert_eq!(s.hit_rate_percent(), 50);
    // Another class does not take it.
    drop(b);
    let c = pool.take_capacity(100);
    assert!(c.capacity() >= MIN_CLASS && c.capacity() < 4096);
    assert_eq!(pool.stats().misses, 2);
}

#[test]
fn detached_buffers_come_back_through_recycle() {
    let pool = BufferPool::new(4, 1 << 20);
    let mut v = pool.take_capacity(10_000).into_vec();
    v.extend_from_slice(&[7; 10_000]);
    assert_eq!(pool.stats().idle_bytes, 0, "into_vec detaches");
    v.reserve(10_000); // grown by its user: goes back to the class it now covers
    let cap = v.capacity();
    pool.recycle(v);
    assert_eq!(pool.stats().idle_bytes, cap as u64);
    assert_eq!(pool.stats().in_use_bytes, 0);
    let w = pool.take_capacity(cap);
    assert_eq!(w.capacity(), cap);
    assert_eq!(pool.stats().hits, 1);
    // Too small or too large to pool: freed.
    pool.recycle(Vec::with_capacity(100));
    pool.recycle(Vec::with_capacity(2 * MAX_CLASS));
    assert_eq!(pool.idle_buffers(), 0);
    // Above the largest class: allocated, never pooled.
    let big = pool.take_capacity(MAX_CLASS + 1);
    assert!(big.capacity() > MAX_CLASS);
    drop(big);
    assert_eq!(pool.idle_buffers(), 0);
}

#[test]
fn idle_buffers_are_capped_per_class_and_in_bytes() {
    let pool = BufferPool::new(2, 1 << 20);
    let bufs: Vec<_> = (0..5).map(|_| pool.take_capacity(1024)).collect();
    drop(bufs);
    assert_eq!(pool.idle_buffers(), 2, "at most 2 idle per class");
    assert_eq!(pool.stats().idle_bytes, 2048);

    let pool = BufferPool::new(16, 10 * 1024);
    let bufs: Vec<_> = (0..3).map(|_| pool.take_capacity(4096)).collect();
    drop(bufs);
    assert_eq!(
        pool.idle_buffers(),
        2,
        "a third 4 KiB buffer would pass 10 KiB"
    );
    assert_eq!(pool.stats().idle_bytes, 8192);
    let small: Vec<_> = (0..3).map(|_| pool.take_capacity(1024)).collect();
    drop(small);
    assert_eq!(pool.stats().idle_bytes, 10 * 1024);
}

#[test]
fn arrow_buffers_give_their_memory_back_when_the_last_clone_drops() {
    let pool = BufferPool::new(4, 1 << 20);
    let mut a = pool.take_capacity(8192);
    a.extend_from_slice(&1u64.to_le_bytes());
    a.extend_from_slice(&2u64.to_le_bytes());
    let ptr = a.as_ptr();
    let buf = a.into_buffer();
    assert_eq!(buf.as_slice().len(), 16);
    assert_eq!(buf.as_ptr(), ptr, "no copy");
    let ints = arrow_buffer::ScalarBuffer::<u64>::new(buf.clone(), 0, 2);
    assert_eq!(&ints[..], &[1, 2]);
    drop(buf);
    assert_eq!(pool.idle_buffers(), 0, "a clone still holds the memory");
    drop(ints);
    assert_eq!(pool.idle_buffers(), 1);
    let again = pool.take_capacity(8192);
    assert_eq!(again.as_ptr(), ptr);
    assert!(again.is_empty());
    assert_eq!(pool.stats().in_use_bytes, 8192);
}

#[test]
fn global_is_one_pool() {
    assert!(Arc::ptr_eq(global(), global()));
}

#[test]
fn checked_offsets_take_only_what_arrow_allows() {
    let o = |v: &[i32]| checked_offsets(arrow_buffer::ScalarBuffer::from(v.to_vec()));
    assert_eq!(o(&[0, 0, 3, 7]).map(|b| b.to_vec()), Some(vec![0, 0, 3, 7]));
    assert!(o(&[0]).is_some());
    for bad in [&[][..], &[1, 2], &[-1, 0], &[0, 5, 4], &[0, -3]] {
        assert!(o(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn adopted_vectors_come_back_to_the_pool() {
    let pool = BufferPool::new(4, 1 << 20);
    let v = Vec::with_capacity(4096);
    let ptr = v.as_ptr();
    drop(pool.adopt(v).into_buffer());
    assert_eq!(pool.take_capacity(4096).as_ptr(), ptr);
}

#[test]
fn an_adopted_buffer_counts_in_use_until_it_comes_back() {
    let pool = BufferPool::new(4, 1 << 20);
    let taken = pool.take_capacity(4096);
    let adopted = pool.adopt(Vec::with_capacity(8192));
    assert_eq!(pool.stats().in_use_bytes, 4096 + 8192);
    drop(adopted);
    assert_eq!(pool.stats().in_use_bytes, 4096);
    drop(taken);
    assert_eq!(pool.stats().in_use_bytes, 0);
}
