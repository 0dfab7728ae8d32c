//! A nested run's results as Python objects: [`NestedRuntime`] runs a nested run's steps at
//! its depth (`depth::AtDepth`) and ends the flow with a finalizer that keeps the Python
//! records themselves ([`Kept`]) instead of converting them to native values, so that
//! `await run(convertToStr=False)` gives back the objects the flow produced (dicts, tuples,
//! None...), as 1.2 does. Records already native (a native last step) pass through.
//!
//! Depends on `depth`, `stage`, `column`, `control` and `gil`.

use std::sync::{Arc, Mutex};

use engine::batch::{Batch, BatchData};
use engine::ops::{Emit, Operator};
use engine::plan::UdfStep;
use engine::udf::UdfRuntime;
use engine::Result;
use pyo3::prelude::*;

use super::depth::AtDepth;
use crate::control::ExecControl;
use crate::stage::ControlledRuntime;

/// The Python records a nested run produced, in order.
#[derive(Debug, Clone, Default)]
pub struct Kept(Arc<Mutex<Vec<Py<PyAny>>>>);

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Py<PyAny>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the records kept so far (once the run ended).
    pub(crate) fn take(&self) -> Vec<Py<PyAny>> {
        std::mem::take(&mut *self.lock())
    }
}

/// Keeps Python records in [`Kept`] (they leave the flow); native ones go on.
struct KeepFinalizer(Kept);

impl Operator for KeepFinalizer {
    fn name(&self) -> &'static str {
        "finalize"
    }

    fn process(&mut self, input: Batch, emit: &mut Emit) -> Result<()> {
        match input.data {
            BatchData::Foreign(f) => {
                let col = crate::arrow::py_column(f)?;
                self.0.lock().extend(col.0);
            }
            // KeysReader rows that met no Python step: their record dicts, as in 1.2.
            keys @ BatchData::Keys(_) => {
                let rows = crate::gil::records(|py| -> Result<Vec<Py<PyAny>>> {
                    Ok(crate::stage::key_dicts(py, keys)?
                        .into_iter()
                        .map(Bound::unbind)
                        .collect())
                })?;
                self.0.lock().extend(rows);
            }
            other => emit.push(Batch::new(other)),
        }
        Ok(())
    }
}

/// The runtime of a nested run: abortable Python stages at `depth`, results kept.
pub struct NestedRuntime {
    inner: ControlledRuntime,
    depth: u32,
    kept: Kept,
}

impl NestedRuntime {
    pub(crate) fn new(control: Arc<ExecControl>, depth: u32, kept: Kept) -> Self {
        NestedRuntime {
            inner: ControlledRuntime(control),
            depth,
            kept,
        }
    }
}

impl UdfRuntime for NestedRuntime {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        // Not `inner.build_stage`: the last stage would hand native values on.
        let op = crate::stage::keeping(steps, Arc::clone(&self.inner.0))?;
        Ok(Box::new(AtDepth::new(op, self.depth)))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(KeepFinalizer(self.kept.clone()))
    }
}
