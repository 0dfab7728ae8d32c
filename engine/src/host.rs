//! The seam the host implements: it turns runs of host steps into operators.
//!
//! The engine never names the host's types (Python objects live in a `ForeignColumn`).
//! Depends on `plan`, `ops`, `error`.

use crate::error::Result;
use crate::ops::Operator;
use crate::plan::HostStep;

/// What the engine needs from the host runtime (the Python layer in production).
pub trait HostRuntime: Send + Sync {
    /// One operator running `steps` in order, fused: the host takes its lock (the GIL)
    /// once per batch for all of them.
    fn build_stage(&self, steps: &[HostStep]) -> Result<Box<dyn Operator>>;

    /// An operator turning whatever records reach the end of a plan into `Datum`s.
    fn finalizer(&self) -> Box<dyn Operator>;
}
