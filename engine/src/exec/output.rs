//! What an execution produces, and the sink that gathers it.

use crate::batch::{Batch, BatchData};
use crate::datum::Datum;
use crate::error::{EngineError, Result};

/// The final results and errors of an execution.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ExecutionOutput {
    pub results: Vec<Datum>,
    pub errors: Vec<String>,
    /// True when the execution was aborted before it finished.
    pub aborted: bool,
}

/// Called exactly once when an execution ends (done or aborted).
pub type OnDone = Box<dyn FnOnce(ExecutionOutput) + Send>;

impl ExecutionOutput {
    /// The output of an execution that failed before producing anything.
    pub fn failed(error: impl ToString) -> Self {
        ExecutionOutput {
            errors: vec![error.to_string()],
            ..Default::default()
        }
    }

    /// Adds a batch that reached the end of the plan.
    pub fn absorb(&mut self, b: Batch) -> Result<()> {
        self.errors.extend(b.errors);
        match b.data {
            BatchData::Datums(d) => self.results.extend(d),
            BatchData::Keys(k) => {
                // A plan with no host finalizer: render keys as text records.
                for i in 0..k.len() {
                    self.results
                        .push(Datum::Str(String::from_utf8_lossy(k.key(i)).into_owned()));
                }
            }
            BatchData::Foreign(f) if f.is_empty() => {}
            BatchData::Foreign(_) => {
                return Err(EngineError::Internal(
                    "host records reached the sink unconverted".into(),
                ))
            }
        }
        Ok(())
    }
}
