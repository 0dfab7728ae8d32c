//! The pipelined executor: a plan becomes stages connected by bounded SPSC queues, run
//! cooperatively on a bounded worker pool (never a thread per execution).
//!
//! A stage never blocks a worker waiting for input or output space: it returns and is
//! woken by its neighbour (see `stage`). Depends on `queue`, `ops`, `plan`, `udf`,
//! `shuffle`, `batch`.

mod builder;
mod counts;
mod output;
mod pool;
mod stage;

pub use builder::{build_operators, native_op, ExecConfig, Execution};
pub use counts::StageCount;
pub use output::{ExecutionOutput, OnDone};
pub use pool::WorkerPool;

use crate::batch::Batch;
use crate::error::Result;

/// Produces the input batches of an execution (a Redis reader in production).
///
/// `next_batch` may block briefly (a reader holds the Redis lock for a bounded slice);
/// `Ok(None)` means the source is exhausted. Dropping the source releases it.
pub trait Source: Send {
    fn next_batch(&mut self) -> Result<Option<Batch>>;
}
