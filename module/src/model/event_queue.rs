//! One registration's pending keyspace events: the engine's bounded, lock-free
//! [`EventQueue`] (algorithm, memory layout and loom models in `engine::queue::events`).
//!
//! Producers are notification callbacks, always on a thread holding the Redis lock (the
//! main thread, or a worker whose `execute()` wrote a key), so one pushes at a time and
//! the Redis lock orders them; the consumer is the registration's drain (`drain`), one at
//! a time.
//!
//! Overflow policy: at most `MAX_PENDING_EVENTS` events and `RING_BYTES` of them wait; an
//! event arriving at a full queue is dropped — it runs no execution, consumes no
//! execution id, is not counted in `numTriggered`, and is counted in the registration's
//! `dropped` (INFO `gearshift_events_dropped`). The notification callback never blocks
//! (it runs under the Redis lock, which the drain needs).

pub use engine::queue::events::{Consumer, EventQueue, EventRef, Pushed, RING_BYTES};

/// Events waiting per registration before new ones are dropped (and counted).
pub const MAX_PENDING_EVENTS: usize = 1_000_000;
