//! The runtime that calls user-defined functions: the seam through which the engine runs
//! a plan's callback steps (`StepSpec::Udf`) without knowing the language they are in.
//! The Python crate implements it (`PyRuntime`); tests use `testing::TestUdf`.
//!
//! The engine never names the runtime's types (Python objects live in a `ForeignColumn`).
//! Depends on `plan`, `ops`, `error`.

use crate::error::Result;
use crate::ops::Operator;
use crate::plan::UdfStep;

/// What the engine needs from the user-function runtime (Python in production).
pub trait UdfRuntime: Send + Sync {
    /// One operator running `steps` in order, fused: the runtime takes its lock (the GIL)
    /// once per batch for all of them.
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>>;

    /// An operator turning whatever records reach the end of a plan into `Datum`s.
    fn finalizer(&self) -> Box<dyn Operator>;
}
