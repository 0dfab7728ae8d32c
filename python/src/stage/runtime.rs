//! The engine's `UdfRuntime` for Python steps: [`PyRuntime`] and [`ControlledRuntime`]
//! build a `PyStage` from a run of fused plan steps, and the finalizer that turns a flow's
//! Python results into native values.
//!
//! Depends on `stage` (`super`), `step`, `control`, `column`, `convert`, `errors` and `gil`.

use std::sync::Arc;

use engine::batch::{Batch, BatchData};
use engine::ops::{Emit, Operator};
use engine::plan::UdfStep;
use engine::udf::UdfRuntime;
use engine::{EngineError, Result};

use pyo3::prelude::*;

use super::PyStage;
use crate::control::ExecControl;
use crate::convert::py_to_datum;
use crate::step::{of_payload, Ending, PyStep};

/// Turns Python results into native values (under one GIL hold per batch). Records the
/// last Python stage already made native (see `Ending`) pass through without the GIL.
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
            keys @ BatchData::Keys(_) => {
                let datums = crate::gil::records(|py| -> Result<Vec<_>> {
                    Ok(key_dicts(py, keys)?.iter().map(py_to_datum).collect())
                })?;
                emit.push(Batch::datums(datums));
            }
            other => emit.push(Batch::new(other)),
        }
        Ok(())
    }
}

/// KeysReader rows that met no Python step (`GB().run(convertToStr=False)`, or only
/// `limit`/`collect`) as their record dicts: 1.2's records are dicts there too (a dict
/// replies `PY RECORD`), not key names.
pub(crate) fn key_dicts<'py>(py: Python<'py>, keys: BatchData) -> Result<Vec<Bound<'py, PyAny>>> {
    PyStage::rows(py, keys).map_err(|e| EngineError::Execution(crate::errors::error_text(py, &e)))
}

/// The engine's host: builds `PyStage`s from plan steps.
#[derive(Debug, Default)]
pub struct PyRuntime;

/// The Python steps of a plan group, and the [`Ending`] of its last one when it is the
/// plan's last Python step.
fn py_steps(steps: &[UdfStep]) -> Result<(Vec<Arc<PyStep>>, Option<Ending>)> {
    let mut ending = None;
    let steps = steps
        .iter()
        .map(|s| {
            let (step, end) = of_payload(&s.payload)
                .ok_or_else(|| EngineError::Plan("not a Python step".into()))?;
            ending = ending.or(end);
            Ok(step)
        })
        .collect::<Result<_>>()?;
    Ok((steps, ending))
}

/// A stage whose results leave it native when it ends the flow's Python steps.
fn converting(steps: &[UdfStep], control: Option<Arc<ExecControl>>) -> Result<PyStage> {
    let (steps, ending) = py_steps(steps)?;
    Ok(PyStage::new(steps, control).ending(ending))
}

/// A stage whose results stay Python objects (a nested run keeps them, `nested::keep`).
pub(crate) fn keeping(steps: &[UdfStep], control: Arc<ExecControl>) -> Result<Box<dyn Operator>> {
    let (steps, _) = py_steps(steps)?;
    Ok(Box::new(PyStage::new(steps, Some(control))))
}

impl UdfRuntime for PyRuntime {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        Ok(Box::new(converting(steps, None)?))
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
        Ok(Box::new(converting(steps, Some(Arc::clone(&self.0)))?))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(PyFinalizer)
    }
}

#[cfg(test)]
mod tests {
    // Tests take the GIL directly, not through `crate::gil`.
    #![allow(clippy::disallowed_methods)]

    use engine::ops::Emit;
    use engine::Datum;
    use pyo3::prelude::*;

    use super::*;

    /// What a one-step `map(lambda x: x * 2)` stage emits for `[1, 2]` with `ending`.
    fn emitted(ending: Option<Ending>) -> BatchData {
        crate::embed::init_for_tests();
        let f = Python::attach(|py| py.eval(c"lambda x: x * 2", None, None).expect("f").unbind());
        let stage = PyStage::new(vec![Arc::new(PyStep::Map(f))], None);
        let mut stage = stage.ending(ending);
        let mut emit = Emit::new();
        let input = Batch::datums(vec![Datum::Int(1), Datum::Int(2)]);
        stage.process(input, &mut emit).expect("process");
        let batch = emit.drain().next().expect("a batch");
        batch.data
    }

    #[test]
    fn the_last_python_stage_emits_native_values() {
        match emitted(Some(Ending::Results)) {
            BatchData::Datums(d) => assert_eq!(d, [Datum::Int(2), Datum::Int(4)]),
            _ => panic!("expected native values"),
        }
        // Outside a cluster a following collect moves nothing: native too.
        assert!(matches!(
            emitted(Some(Ending::Shuffled)),
            BatchData::Datums(_)
        ));
    }

    #[test]
    fn other_stages_emit_python_records() {
        assert!(matches!(emitted(None), BatchData::Foreign(_)));
    }
}
