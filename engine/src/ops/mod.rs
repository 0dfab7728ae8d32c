//! Native operators: pure, single-threaded transforms of batches.
//!
//! An [`Operator`] sees only records (the executor routes the error lane past it) and
//! pushes output batches into an [`Emit`]. It never blocks on other stages; shuffle
//! operators may wait on their transport, always with a bound. Depends on `batch`,
//! `datum`, `error`.

mod chain;
mod count;
mod group;
mod limit;
mod wake;

pub use chain::Chain;
pub use count::{CountByOp, CountOp, SumByKeyOp, SumIntsOp};
pub use group::GroupTable;
pub use limit::LimitOp;
pub use wake::{wake_at, Waker};

use crate::batch::Batch;
use crate::error::Result;

/// Where an operator puts its output.
#[derive(Debug, Default)]
pub struct Emit {
    batches: Vec<Batch>,
    stop_upstream: bool,
}

impl Emit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an output batch (empty ones are dropped).
    pub fn push(&mut self, b: Batch) {
        if !b.is_empty() {
            self.batches.push(b);
        }
    }

    /// Asks the executor to stop reading the source: this operator needs no more input
    /// (a satisfied limit, or the first error of an execution).
    pub fn stop_upstream(&mut self) {
        self.stop_upstream = true;
    }

    pub fn wants_stop(&self) -> bool {
        self.stop_upstream
    }

    /// Takes the queued batches.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Batch> {
        self.batches.drain(..)
    }
}

/// How far `Operator::try_finish` got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Done,
    /// More work is ready: run again after other stages had a turn.
    Yield,
    /// Waiting: the operator's waker will be called (arrival or deadline).
    Parked,
}

/// A batch transform. Contract:
/// - `process` is called once per input batch, in order; `finish` once after the last.
/// - Errors returned here fail the whole execution; a failing *record* is reported by
///   pushing a batch whose error lane holds the message.
/// - Dropping an operator (on abort) must release everything it holds.
pub trait Operator: Send {
    /// The 1.x step type, for introspection.
    fn name(&self) -> &'static str;
    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()>;
    fn finish(&mut self, _out: &mut Emit) -> Result<()> {
        Ok(())
    }
    /// A step of `finish` that may wait on something outside the pool (another shard),
    /// never holding a worker while it waits: `Yield` means "call again soon", `Parked`
    /// means "call again when the waker given by `set_waker` is called". The default runs
    /// `finish` at once.
    fn try_finish(&mut self, out: &mut Emit) -> Result<Finish> {
        self.finish(out).map(|()| Finish::Done)
    }
    /// Work left over from `process` that waits on something outside the pool (a record
    /// whose callback awaits): called before each next batch and before the end of input,
    /// so nothing else enters the operator while it is pending. `Parked` means "call again
    /// when the waker is called" (the stage frees its worker meanwhile), `Done` that
    /// nothing is left. The default has nothing pending.
    fn try_resume(&mut self, _out: &mut Emit) -> Result<Finish> {
        Ok(Finish::Done)
    }
    /// The stage's waker, given once before the first batch (operators that park keep it).
    /// An inline run that may park gives one too, and a later stage a new one (see
    /// `inline::run_inline_parking`): an operator parked then re-arms with the new one.
    fn set_waker(&mut self, _waker: Waker) {}
    /// True while work from `process` or `try_finish` waits for an await (an inline run
    /// then stops and may go on as a pooled execution). The default never waits.
    fn is_parked(&self) -> bool {
        false
    }
    /// True when the operator receives batches with their error lane (shuffles forward
    /// errors to other shards); otherwise the executor routes errors past it.
    fn handles_errors(&self) -> bool {
        false
    }
}
