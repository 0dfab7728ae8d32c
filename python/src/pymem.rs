//! Python's memory through the host's allocator, with bounds (a named `unsafe` module).
//!
//! Owns the CPython allocator hooks: the RAW domain (large objects, which pymalloc hands
//! to it, and interpreter internals) and pymalloc's arenas go to the allocator the host
//! supplies (Redis's, so `used_memory`, `maxmemory` and INFO see Python). Small objects
//! stay in pymalloc, inside those arenas, so the per-object cost is unchanged.
//!
//! Two bounds make an allocation fail (Python then raises `MemoryError`, which the
//! execution reports as an error, see [`take_refusal`]):
//! - the budget of the execution running on this thread ([`MemBudget`], entered by the
//!   Python stage), when this allocation would take its charge past its limit;
//! - the server's headroom before `maxmemory` (`engine::memory`, refreshed by the host),
//!   for large allocations only (the headroom is a periodic estimate).
//!
//! Bottom layer, a leaf: depends on `engine::sync` and `engine::memory` only. Install
//! with [`route`] before the interpreter starts.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::OnceLock;

use engine::sync::{AtomicBool, AtomicI64, Ordering};
use pyo3::ffi;

/// The host's allocator. `alloc` may return null on failure; the others follow C's rules.
#[derive(Debug, Clone, Copy)]
pub struct HostAllocator {
    pub alloc: unsafe extern "C" fn(usize) -> *mut c_void,
    pub calloc: unsafe extern "C" fn(usize, usize) -> *mut c_void,
    pub realloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    pub free: unsafe extern "C" fn(*mut c_void),
    /// The usable size of a live block (what a free gives back to the budget).
    pub usable_size: unsafe extern "C" fn(*mut c_void) -> usize,
}

static HOST: OnceLock<HostAllocator> = OnceLock::new();

/// Allocations from this size on are checked against the `maxmemory` headroom.
const LARGE: usize = 1 << 20;

/// Why this thread's last allocation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The execution's budget would have passed its limit (bytes).
    ExecutionLimit(i64),
    /// This allocation (bytes) would take the server past `maxmemory`.
    MaxMemory(usize),
}

/// Bytes Python took from the host allocator: in all, at most at once, now (RG.PYSTATS).
/// Small objects count by the pymalloc arenas that hold them.
static TOTAL: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static CURRENT: AtomicI64 = AtomicI64::new(0);

/// (total, peak, current) bytes Python has taken from the host allocator.
pub fn stats() -> (i64, i64, i64) {
    (
        TOTAL.load(Ordering::Relaxed),
        PEAK.load(Ordering::Relaxed),
        CURRENT.load(Ordering::Relaxed),
    )
}

fn count_alloc(size: usize) {
    let size = size as i64;
    TOTAL.fetch_add(size, Ordering::Relaxed);
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn count_free(size: usize) {
    CURRENT.fetch_sub(size as i64, Ordering::Relaxed);
}

thread_local! {
    /// The budget of the execution whose Python runs on this thread (null: none).
    static BUDGET: Cell<*const MemBudget> = const { Cell::new(std::ptr::null()) };
    /// The last refusal on this thread, until [`take_refusal`] reads it.
    static REFUSED: Cell<Option<Refusal>> = const { Cell::new(None) };
}

/// One execution's Python memory: bytes allocated while it ran on some thread, less the
/// bytes freed while it ran (an estimate: memory freed by another execution's code, or
/// outside any execution, is not credited back to this one).
#[derive(Debug, Default)]
pub struct MemBudget {
    charged: AtomicI64,
    /// 0: unlimited.
    limit: AtomicI64,
    exceeded: AtomicBool,
}

impl MemBudget {
    pub fn new(limit: i64) -> Self {
        MemBudget {
            limit: AtomicI64::new(limit.max(0)),
            ..Self::default()
        }
    }

    /// Bytes currently charged.
    pub fn charged(&self) -> i64 {
        self.charged.load(Ordering::Relaxed)
    }

    /// True once an allocation was refused for this budget.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// Makes this budget the calling thread's until the guard drops.
    pub fn enter(&self) -> BudgetScope {
        let prev = BUDGET.with(|b| b.replace(self as *const MemBudget));
        BudgetScope { prev }
    }

    fn try_charge(&self, size: usize) -> Result<(), Refusal> {
        let size = size as i64;
        let limit = self.limit.load(Ordering::Relaxed);
        let now = self.charged.fetch_add(size, Ordering::Relaxed) + size;
        if limit > 0 && now > limit {
            self.charged.fetch_sub(size, Ordering::Relaxed);
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(Refusal::ExecutionLimit(limit));
        }
        Ok(())
    }

    fn credit(&self, size: usize) {
        self.charged.fetch_sub(size as i64, Ordering::Relaxed);
    }
}

/// Restores the previous budget of the thread when dropped.
#[derive(Debug)]
pub struct BudgetScope {
    prev: *const MemBudget,
}

impl Drop for BudgetScope {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.prev));
    }
}

/// The last refusal on this thread (cleared by the read): an execution turns a
/// `MemoryError` into a clear error with it.
pub fn take_refusal() -> Option<Refusal> {
    REFUSED.with(|r| r.take())
}

/// Routes Python's RAW domain and pymalloc's arenas to the host allocator. Call before the
/// interpreter initialises (memory Python already holds must be freed by the allocator
/// that gave it); later calls are ignored.
pub fn route(host: HostAllocator) {
    if HOST.set(host).is_err() {
        return;
    }
    let mut raw = ffi::PyMemAllocatorEx {
        ctx: std::ptr::null_mut(),
        malloc: Some(raw_malloc),
        calloc: Some(raw_calloc),
        realloc: Some(raw_realloc),
        free: Some(raw_free),
    };
    let mut arenas = ffi::PyObjectArenaAllocator {
        ctx: std::ptr::null_mut(),
        alloc: Some(arena_alloc),
        free: Some(arena_free),
    };
    // SAFETY: called once, before Py_InitializeFromConfig, from the loading thread; CPython
    // copies both structs. The hooks are thread-safe (the RAW domain is called without the
    // GIL) because the host allocator is.
    unsafe {
        ffi::PyMem_SetAllocator(ffi::PyMemAllocatorDomain::PYMEM_DOMAIN_RAW, &mut raw);
        ffi::PyObject_SetArenaAllocator(&mut arenas);
    }
}

fn host() -> &'static HostAllocator {
    // The hooks are installed only after HOST is set.
    HOST.get()
        .expect("python allocator hooks installed without a host")
}

/// Checks the bounds for a new block of `size` bytes and charges the thread's budget.
fn admit(size: usize) -> bool {
    let verdict = if size >= LARGE && size as i64 > engine::memory::headroom() {
        Err(Refusal::MaxMemory(size))
    } else {
        BUDGET.with(|b| {
            let b = b.get();
            // SAFETY: a non-null budget pointer is set by `MemBudget::enter` and cleared
            // by its scope guard before the budget can be dropped.
            match unsafe { b.as_ref() } {
                Some(b) => b.try_charge(size),
                None => Ok(()),
            }
        })
    };
    match verdict {
        Ok(()) => true,
        Err(r) => {
            REFUSED.with(|c| c.set(Some(r)));
            false
        }
    }
}

fn release(size: usize) {
    BUDGET.with(|b| {
        // SAFETY: as in `admit`.
        if let Some(b) = unsafe { b.get().as_ref() } {
            b.credit(size);
        }
    });
}

extern "C" fn raw_malloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    // C's malloc(0) may return null; Python wants a unique pointer.
    let size = size.max(1);
    if !admit(size) {
        return std::ptr::null_mut();
    }
    // SAFETY: the host allocator is a malloc-like function.
    let p = unsafe { (host().alloc)(size) };
    settle(p, size)
}

/// Counts a new block, or gives its charge back when the host allocator failed.
fn settle(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        release(size);
    } else {
        count_alloc(size);
    }
    p
}

extern "C" fn raw_calloc(_ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    let Some(size) = nelem.checked_mul(elsize) else {
        return std::ptr::null_mut();
    };
    let size = size.max(1);
    if !admit(size) {
        return std::ptr::null_mut();
    }
    // SAFETY: the host allocator is a calloc-like function.
    let p = unsafe { (host().calloc)(size, 1) };
    settle(p, size)
}

extern "C" fn raw_realloc(_ctx: *mut c_void, ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return raw_malloc(std::ptr::null_mut(), size);
    }
    let size = size.max(1);
    // SAFETY: `ptr` is a live block of this allocator (CPython's contract).
    let old = unsafe { (host().usable_size)(ptr) };
    if size > old && !admit(size - old) {
        return std::ptr::null_mut();
    }
    // SAFETY: as above; on failure the old block stays valid.
    let p = unsafe { (host().realloc)(ptr, size) };
    if p.is_null() {
        if size > old {
            release(size - old);
        }
    } else if size < old {
        release(old - size);
        count_free(old - size);
    } else {
        count_alloc(size - old);
    }
    p
}

extern "C" fn raw_free(_ctx: *mut c_void, ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` is a live block of this allocator, freed once (CPython's contract).
    unsafe {
        let size = (host().usable_size)(ptr);
        release(size);
        count_free(size);
        (host().free)(ptr);
    }
}

extern "C" fn arena_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    if !admit(size) {
        return std::ptr::null_mut();
    }
    // SAFETY: the host allocator is a malloc-like function.
    let p = unsafe { (host().alloc)(size) };
    settle(p, size)
}

extern "C" fn arena_free(_ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    if ptr.is_null() {
        return;
    }
    release(size);
    count_free(size);
    // SAFETY: `ptr` is an arena this allocator returned, freed once.
    unsafe { (host().free)(ptr) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_past_its_limit_and_credits_frees() {
        let b = MemBudget::new(1000);
        let _scope = b.enter();
        assert!(admit(600));
        assert!(!admit(600), "600 + 600 passes the limit");
        assert_eq!(take_refusal(), Some(Refusal::ExecutionLimit(1000)));
        assert!(b.exceeded());
        release(600);
        assert!(admit(900));
        assert_eq!(b.charged(), 900);
    }

    #[test]
    fn large_allocations_respect_the_headroom() {
        engine::memory::set_headroom(Some(2 * LARGE as i64));
        assert!(admit(LARGE));
        assert!(!admit(3 * LARGE));
        assert_eq!(take_refusal(), Some(Refusal::MaxMemory(3 * LARGE)));
        engine::memory::set_headroom(None);
        assert!(admit(3 * LARGE));
    }

    #[test]
    fn no_budget_outside_an_execution() {
        let b = MemBudget::new(10);
        drop(b.enter());
        assert!(admit(100));
        assert_eq!(b.charged(), 0);
    }
}
