//! Gearshift's engine: pure Rust, no Redis and no Python in its dependency tree.
//!
//! Layers, bottom up:
//! - [`sync`]: the std/loom shim every atomic, cell, lock and thread comes from.
//! - [`queue`]: the bounded lock-free SPSC ring between pipeline stages, and the
//!   keyspace-event queue of registrations (both loom-tested).
//! - [`pool`]: a recycling pool of byte buffers for batch columns and shuffle frames.
//! - [`batch`], [`datum`]: the columnar record batches that flow through a plan.
//! - [`plan`], [`ops`], [`udf`]: step specs, native operators, and the runtime that calls
//!   user-defined functions (Python in production) for callback steps.
//! - [`exec`]: the pipelined executor (stages on a bounded worker pool).
//! - [`shuffle`]: partitioner (Redis hash slots), frame codec and the transport seam.
//! - [`inline`]: the record-at-a-time executor on the calling thread, for synchronous runs
//!   (sync registrations, triggers, hooks, sync streams).
//! - [`wire`]: the module's byte codecs for input from outside (bus messages, sessions
//!   blob, time-event values), here so they are fuzzed without Redis.
//!
//! Data flow: a `Source` fills batches → stages connected by SPSC queues transform them →
//! the sink gathers results and errors into an [`exec::ExecutionOutput`].
#![deny(unsafe_code)]

#[cfg(not(loom))]
pub mod batch;
#[cfg(not(loom))]
pub mod datum;
pub mod error;
pub mod exec;
#[cfg(not(loom))]
pub mod glob;
#[cfg(not(loom))]
pub mod inline;
#[cfg(not(loom))]
pub mod memory;
#[cfg(not(loom))]
pub mod metrics;
#[cfg(not(loom))]
pub mod ops;
#[cfg(not(loom))]
pub mod plan;
pub mod pool;
pub mod queue;
#[cfg(not(loom))]
pub mod scoped;
#[cfg(not(loom))]
pub mod shuffle;
pub mod sync;
#[cfg(not(loom))]
pub mod testing;
#[cfg(not(loom))]
pub mod udf;
#[cfg(not(loom))]
pub mod wire;

// Under loom only the lock-free primitives (queue, pool, exec's wake-up state machine) are
// built and modelled.
#[cfg(not(loom))]
pub use batch::{Batch, BatchData};
#[cfg(not(loom))]
pub use datum::Datum;
pub use error::{EngineError, Result};
