//! The one import path for atomics, cells, `Arc`, locks (`Mutex`, `Condvar`) and threads
//! (`thread::spawn`, `thread::Builder`) in the engine (and for atomics in the module and
//! Python crates), so loom can model them. `scripts/test.sh` (`check_atomics_via_shim`)
//! rejects std's versions anywhere else.
//!
//! Under `cfg(loom)` these are loom's types; otherwise std's. Depends on nothing else.

#[cfg(loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

/// std's `Arc` on both builds: for what is handed to crates that take std's own (arrow's
/// `ArrayRef`, `SchemaRef`, `FieldRef`); never for state threads share in the engine.
pub use std::sync::Arc as StdArc;

/// `UnsafeCell` with loom's closure-based access API on both builds.
#[derive(Debug)]
pub struct UnsafeCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub fn new(v: T) -> Self {
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(v));
        #[cfg(not(loom))]
        return Self(std::cell::UnsafeCell::new(v));
    }

    /// The contents, moving out of the cell (owning it proves exclusivity).
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// Runs `f` with a mutable raw pointer to the contents; the caller proves exclusivity.
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with_mut(f);
        #[cfg(not(loom))]
        return f(self.0.get());
    }
}
