//! The engine's `UdfRuntime` for Python steps: [`PyRuntime`] and [`ControlledRuntime`]
//! build a `PyStage` from a run of fused plan steps, and the finalizer that turns a flow's
//! Python results into native values.
//!
//! Depends on `stage` (`super`), `step`, `control`, `column`, `convert` and `gil`.

use std::sync::Arc;

use engine::batch::{Batch, BatchData};
use engine::ops::{Emit, Operator};
use engine::plan::UdfStep;
use engine::udf::UdfRuntime;
use engine::{EngineError, Result};

use super::PyStage;
use crate::control::ExecControl;
use crate::convert::py_to_datum;
use crate::step::PyStep;

/// Turns Python results into native values (under one GIL hold per batch).
struct PyFinalizer;

impl Operator for PyFinalizer {
    fn name(&self) -> &'static str {
        "finalize"
    }

    fn process(&mut self, input: Batch, emit: &mut Emit) -> Result<()> {
        match input.data {
            BatchData::Foreign(f) => {
                let col = crate::arrow::py_column(f)?;
                let datums = crate::gil::records(|py| {
                    col.0.iter().map(|o| py_to_datum(o.bind(py))).collect()
                });
                emit.push(Batch::datums(datums));
            }
            other => emit.push(Batch::new(other)),
        }
        Ok(())
    }
}

/// The engine's host: builds `PyStage`s from plan steps.
#[derive(Debug, Default)]
pub struct PyRuntime;

fn py_steps(steps: &[UdfStep]) -> Result<Vec<Arc<PyStep>>> {
    steps
        .iter()
        .map(|s| {
            Arc::clone(&s.payload)
                .downcast::<PyStep>()
                .map_err(|_| EngineError::Plan("not a Python step".into()))
        })
        .collect()
}

impl UdfRuntime for PyRuntime {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        Ok(Box::new(PyStage::new(py_steps(steps)?, None)))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(PyFinalizer)
    }
}

/// A host whose Python stages can be interrupted through an [`ExecControl`] (abortable
/// executions).
#[derive(Debug)]
pub struct ControlledRuntime(pub Arc<ExecControl>);

impl UdfRuntime for ControlledRuntime {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        let control = Some(Arc::clone(&self.0));
        Ok(Box::new(PyStage::new(py_steps(steps)?, control)))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(PyFinalizer)
    }
}
