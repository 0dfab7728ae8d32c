//! The pipelined executor: a plan becomes stages connected by bounded SPSC queues, run
//! cooperatively on a bounded worker pool (never a thread per execution).
//!
//! A stage never blocks a worker waiting for input or output space: it returns and is
//! woken by its neighbour (see `stage`). Depends on `queue`, `ops`, `plan`, `udf`,
//! `shuffle`, `batch`.
//!
//! Under loom only the wake-up state machine (`schedule`) and the hand-offs built on it
//! (`handoff`) are built, and modelled (`loom_schedule`).

#[cfg(not(loom))]
mod builder;
#[cfg(not(loom))]
mod counts;
mod handoff;
#[cfg(all(test, loom))]
mod loom_schedule;
#[cfg(not(loom))]
mod output;
#[cfg(not(loom))]
mod pool;
mod schedule;
#[cfg(not(loom))]
mod stage;

#[cfg(not(loom))]
pub use builder::{build_operators, native_op, Continued, ExecConfig, Execution};
#[cfg(not(loom))]
pub use counts::StageCount;
#[cfg(not(loom))]
pub use output::{ExecutionOutput, OnDone};
#[cfg(not(loom))]
pub use pool::WorkerPool;

#[cfg(not(loom))]
use crate::batch::Batch;
#[cfg(not(loom))]
use crate::error::Result;

/// Produces the input batches of an execution (a Redis reader in production).
///
/// `next_batch` may block briefly (a reader holds the Redis lock for a bounded slice);
/// `Ok(None)` means the source is exhausted. Dropping the source releases it.
#[cfg(not(loom))]
pub trait Source: Send {
    fn next_batch(&mut self) -> Result<Option<Batch>>;
}
