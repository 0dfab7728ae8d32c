//! Batch callbacks, a Gearshift extension (`docs/batch-api.md`): `mapBatch(f)` and
//! `filterBatch(f)` call `f` once per engine batch with a `list` of the records that
//! reached the step, under the stage's one GIL hold.
//!
//! In `PyStage::push` a batch step only gathers records (`StepState::Pending`). After the
//! whole input batch has been pushed, `flush_batches` runs the batch steps in plan order
//! and pushes each one's outputs through the steps after it, so a batch step feeding
//! another batch step still costs one call each per input batch. At end of input,
//! `finish` drains leftovers (records released by an accumulating step) through `call`.
//! A batch callback may not return what must be awaited (`call_no_async`); the records
//! reaching it may have awaited before (a parked stage runs its batch steps once the
//! batch's records went through, `park`).
//!
//! The arrow format (`format='arrow'`) runs on Arrow data in `super::arrow`; after other
//! Python steps its wrapper (`py/arrow_batch.py`) builds the batch from the records.
//!
//! Part of `PyStage` (`super`); depends on `step`.

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::{Out, PyStage, StepState};
use crate::step::PyStep;

impl PyStage {
    /// Runs every batch step over the records gathered for it, in plan order, and pushes
    /// what it passes on through the following steps.
    pub(super) fn flush_batches(&mut self, py: Python<'_>, out: &mut Out) -> PyResult<()> {
        if self.control.as_ref().is_some_and(|c| c.stopped()) {
            return Ok(()); // aborted: no more callbacks
        }
        for i in 0..self.steps.len() {
            if self.is_parked() {
                break; // the later batch steps run once the records that wait went through
            }
            let rows = match &mut self.state[i] {
                StepState::Pending(v) if !v.is_empty() => std::mem::take(v),
                _ => continue,
            };
            let Some(rows) = self.arrow_from_records(py, i, rows, out)? else {
                continue;
            };
            let step = Arc::clone(&self.steps[i]);
            let mut rows = call(py, &step, rows)?.into_iter();
            while let Some(row) = rows.next() {
                self.push(py, i + 1, row, None, out)?;
                if self.is_parked() {
                    self.park_rest(rows.by_ref().map(|r| (i + 1, r, None)));
                }
            }
        }
        Ok(())
    }
}

/// One call of batch step `step` over `rows`: the records it passes on, in order. No call
/// for no records.
pub(super) fn call<'py>(
    py: Python<'py>,
    step: &PyStep,
    rows: Vec<Py<PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match step {
        PyStep::MapBatch {
            call,
            columns: Some(_),
        } => arrow_map_batch(py, call, rows),
        PyStep::MapBatch { call, .. } => map_batch(py, call, rows),
        PyStep::FilterBatch(f) | PyStep::ArrowFilterBatch { call: f, .. } => {
            filter_batch(py, f, rows)
        }
        _ => Err(PyRuntimeError::new_err("not a batch step")),
    }
}

/// `mapBatch`: `f(records)` must return a list; its elements are the output records.
fn map_batch<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    rows: Vec<Py<PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let ret = call_no_async(py, f, (PyList::new(py, rows)?,), "mapBatch")?;
    Ok(returned_list(&ret, "mapBatch")?.iter().collect())
}

/// An arrow `mapBatch` at end of input (after an accumulating step): what its wrapper
/// returns, as records (Arrow data made into them).
fn arrow_map_batch<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    rows: Vec<Py<PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let ret = f.bind(py).call1((PyList::new(py, rows)?,))?;
    match crate::arrow::ArrowColumn::from_py(&ret)? {
        Some(cols) => Ok(cols
            .iter()
            .map(|c| c.rows(py))
            .collect::<PyResult<Vec<_>>>()?
            .concat()),
        None => Ok(super::arrow::returned(&ret)?.iter().collect()),
    }
}

/// `filterBatch`: `f(records)` must return a list of as many flags as records; the
/// records whose flag is truthy pass on.
fn filter_batch<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    rows: Vec<Py<PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let list = PyList::new(py, rows.iter().map(|r| r.bind(py)))?;
    let ret = call_no_async(py, f, (list,), "filterBatch")?;
    let flags = returned_list(&ret, "filterBatch")?;
    if flags.len() != rows.len() {
        return Err(PyValueError::new_err(format!(
            "filterBatch callback returned {} values for {} records",
            flags.len(),
            rows.len()
        )));
    }
    let mut kept = Vec::with_capacity(rows.len());
    for (row, flag) in rows.into_iter().zip(flags.iter()) {
        if flag.is_truthy()? {
            kept.push(row.into_bound(py));
        }
    }
    Ok(kept)
}

/// A batch callback's call: a coroutine or a `gearsFuture` it returns is refused with
/// 1.2's texts for steps that cannot wait (`coroutine are not allow on mapBatch`,
/// `Step does not support async`), so a batch step never awaits.
fn call_no_async<'py>(
    py: Python<'py>,
    f: &Py<PyAny>,
    args: impl pyo3::call::PyCallArgs<'py>,
    what: &'static str,
) -> PyResult<Bound<'py, PyAny>> {
    crate::future::call(py, f.bind(py), args, crate::future::Kind::NoAsync(what))
}

fn returned_list<'a, 'py>(
    ret: &'a Bound<'py, PyAny>,
    what: &str,
) -> PyResult<&'a Bound<'py, PyList>> {
    ret.cast::<PyList>().map_err(|_| {
        let type_name = ret
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!(
            "{what} callback must return a list, not {type_name}"
        ))
    })
}

#[cfg(test)]
mod tests {
    // Tests take the GIL directly, not through `crate::gil`.
    #![allow(clippy::disallowed_methods)]

    use std::ffi::CStr;

    use engine::batch::{Batch, BatchData};
    use engine::ops::{Emit, Operator};
    use engine::Datum;

    use super::*;
    use crate::column::PyColumn;
    use crate::convert::py_to_datum;

    fn init() {
        crate::embed::init_for_tests();
    }

    fn eval(src: &CStr) -> Py<PyAny> {
        init();
        Python::attach(|py| py.eval(src, None, None).expect("eval").unbind())
    }

    /// A function that logs each call's list length into `calls` and applies `body`.
    fn logged(calls: &Py<PyAny>, body: &CStr) -> Py<PyAny> {
        let wrap = eval(c"lambda calls, f: lambda rs: calls.append(len(rs)) or f(rs)");
        let f = eval(body);
        Python::attach(|py| wrap.bind(py).call1((calls, f)).expect("wrap").unbind())
    }

    fn map_batch(f: Py<PyAny>) -> PyStep {
        PyStep::MapBatch {
            call: f,
            columns: None,
        }
    }

    /// Runs `steps` over batches of ints; the records and errors that leave the stage.
    fn run(steps: Vec<PyStep>, batches: &[&[i64]]) -> (Vec<Datum>, Vec<String>) {
        init();
        let mut stage = PyStage::new(steps.into_iter().map(Arc::new).collect(), None);
        let mut emit = Emit::new();
        for b in batches {
            let input = Batch::datums(b.iter().map(|i| Datum::Int(*i)).collect());
            stage.process(input, &mut emit).expect("process");
        }
        stage.finish(&mut emit).expect("finish");
        let (mut rows, mut errors) = (Vec::new(), Vec::new());
        Python::attach(|py| {
            for b in emit.drain() {
                errors.extend(b.errors);
                match b.data {
                    BatchData::Foreign(f) => {
                        let col = f.into_any().downcast::<PyColumn>().expect("py column");
                        rows.extend(col.0.iter().map(|o| py_to_datum(o.bind(py))));
                    }
                    BatchData::Datums(d) => rows.extend(d),
                    BatchData::Keys(_) => unreachable!("no key rows leave a Python stage"),
                }
            }
        });
        (rows, errors)
    }

    fn lens(calls: &Py<PyAny>) -> Vec<usize> {
        Python::attach(|py| calls.bind(py).extract().expect("lens"))
    }

    fn ints(v: &[i64]) -> Vec<Datum> {
        v.iter().map(|i| Datum::Int(*i)).collect()
    }

    #[test]
    fn map_batch_is_called_once_per_batch_and_equals_map() {
        let batches: &[&[i64]] = &[&[1, 2, 3], &[4], &[], &[5, 6]];
        let calls = eval(c"[]");
        let batched = map_batch(logged(&calls, c"lambda rs: [x * 10 for x in rs]"));
        let per_record = PyStep::Map(eval(c"lambda x: x * 10"));
        assert_eq!(run(vec![batched], batches), run(vec![per_record], batches));
        assert_eq!(lens(&calls), vec![3, 1, 2], "no call for an empty batch");
    }

    #[test]
    fn filter_batch_equals_filter() {
        let batches: &[&[i64]] = &[&[1, 2, 3, 4], &[5, 6]];
        let batched = PyStep::FilterBatch(eval(c"lambda rs: [x % 2 for x in rs]"));
        let per_record = PyStep::Filter(eval(c"lambda x: x % 2"));
        let (rows, errors) = run(vec![batched], batches);
        assert_eq!((rows.clone(), errors), run(vec![per_record], batches));
        assert_eq!(rows, ints(&[1, 3, 5]));
    }

    #[test]
    fn fused_chain_calls_each_batch_step_once_per_input_batch() {
        let (a, b) = (eval(c"[]"), eval(c"[]"));
        let steps = vec![
            map_batch(logged(&a, c"lambda rs: rs + rs")),
            PyStep::Filter(eval(c"lambda x: x > 1")),
            PyStep::FilterBatch(logged(&b, c"lambda rs: [True] * len(rs)")),
            PyStep::Map(eval(c"lambda x: x + 100")),
        ];
        let (rows, errors) = run(steps, &[&[1, 2], &[3]]);
        assert!(errors.is_empty());
        assert_eq!(rows, ints(&[102, 102, 103, 103]));
        assert_eq!((lens(&a), lens(&b)), (vec![2, 1], vec![2, 2]));
    }

    #[test]
    fn batch_step_after_an_accumulation_runs_at_the_end() {
        let steps = vec![
            PyStep::Accumulate(eval(c"lambda a, x: (a or 0) + x")),
            map_batch(eval(c"lambda rs: [r * 2 for r in rs]")),
        ];
        assert_eq!(run(steps, &[&[1, 2], &[3]]), (ints(&[12]), vec![]));
    }

    #[test]
    fn an_exception_fails_the_batch_once_and_drops_later_input() {
        let calls = eval(c"[]");
        let f = logged(&calls, c"lambda rs: [1 / (x - 3) for x in rs]");
        let (rows, errors) = run(vec![map_batch(f)], &[&[1, 2], &[3, 4], &[5]]);
        assert_eq!(rows.len(), 2, "the first batch's results stay");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("ZeroDivisionError"), "{}", errors[0]);
        assert_eq!(lens(&calls), vec![2, 2], "no call after the failure");
    }

    #[test]
    fn bad_return_values_are_errors() {
        let cases: [(PyStep, &str); 3] = [
            (
                map_batch(eval(c"lambda rs: tuple(rs)")),
                "Error type: <class 'TypeError'>, Value: mapBatch callback must return a list, not tuple",
            ),
            (
                PyStep::FilterBatch(eval(c"lambda rs: [True]")),
                "Error type: <class 'ValueError'>, Value: filterBatch callback returned 1 values for 2 records",
            ),
            (
                PyStep::FilterBatch(eval(c"lambda rs: None")),
                "Error type: <class 'TypeError'>, Value: filterBatch callback must return a list, not NoneType",
            ),
        ];
        for (step, text) in cases {
            assert_eq!(run(vec![step], &[&[1, 2]]), (vec![], vec![text.to_owned()]));
        }
    }

    #[test]
    fn a_per_record_error_before_a_batch_step_keeps_earlier_records() {
        let steps = vec![
            PyStep::Map(eval(c"lambda x: 1 / (x - 3) and x")),
            map_batch(eval(c"lambda rs: [r * 10 for r in rs]")),
        ];
        let (rows, errors) = run(steps, &[&[1, 2, 3, 4]]);
        assert_eq!(rows, ints(&[10, 20]));
        assert_eq!(errors.len(), 1);
    }
}
