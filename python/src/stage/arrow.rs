//! Batch steps with `format='arrow'` (docs/batch-api.md) on Arrow data: a stage whose first
//! step is one gets the reader's key rows as a `RecordBatch` (`arrow::key_record_batch`),
//! with no record dict; what `f` returns as Arrow (a `RecordBatch`, `Array`, `Table` or
//! `ChunkedArray`) comes back over the C Data Interface as an `ArrowColumn` and goes on in
//! Arrow form: to the next arrow step as the same buffers, out of the stage as a host
//! column (`count`, `limit` need no Python object), or into `countby()`/`avg()` read
//! natively. Only another per-record or list step makes Python records of it.
//!
//! Part of `PyStage` (`super`); depends on `arrow`, `step` and `builtins`.

use engine::batch::BatchData;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::{Out, PyStage, StepState};
use crate::arrow::ArrowColumn;
use crate::column::PyColumn;
use crate::step::PyStep;

/// An arrow-format batch step: whether it filters, and the user's `f`.
fn arrow_step(step: &PyStep) -> Option<(bool, &Py<PyAny>)> {
    match step {
        PyStep::MapBatch {
            columns: Some(f), ..
        } => Some((false, f)),
        PyStep::ArrowFilterBatch { columns, .. } => Some((true, columns)),
        _ => None,
    }
}

impl PyStage {
    /// A first arrow step takes reader key rows (or an upstream stage's `ArrowColumn`)
    /// as Arrow data and runs to the first step that needs records; then nothing is left
    /// for the per-record path. Any other input or first step: `data` comes back.
    pub(super) fn columnar_first(
        &mut self,
        py: Python<'_>,
        data: BatchData,
        out: &mut Out,
    ) -> PyResult<BatchData> {
        if self.steps.first().is_none_or(|s| arrow_step(s).is_none()) {
            return Ok(data);
        }
        let col = match data {
            BatchData::Keys(k) if !k.is_empty() => ArrowColumn::Keys(k),
            BatchData::Foreign(f) => match f.into_any().downcast::<ArrowColumn>() {
                Ok(col) => *col,
                Err(any) => match any.downcast::<PyColumn>() {
                    Ok(col) => return Ok(BatchData::Foreign(col)),
                    Err(_) => return Err(PyTypeError::new_err("foreign records of another host")),
                },
            },
            other => return Ok(other),
        };
        self.run_arrow(py, 0, vec![col], out)?;
        Ok(BatchData::Datums(Vec::new()))
    }

    /// Runs the arrow steps from `from` on over `cols`, then hands what is left to the
    /// steps after them (`settle_arrow`).
    pub(super) fn run_arrow(
        &mut self,
        py: Python<'_>,
        from: usize,
        mut cols: Vec<ArrowColumn>,
        out: &mut Out,
    ) -> PyResult<()> {
        let mut i = from;
        while let Some((filter, f)) = self.steps.get(i).and_then(|s| arrow_step(s)) {
            let f = f.clone_ref(py);
            let mut next = Vec::new();
            for col in cols.into_iter().filter(|c| c.rows_len() > 0) {
                let ret = f.bind(py).call1((col.to_py(py)?,))?;
                if filter {
                    let keep = mask(&ret, col.rows_len())?;
                    next.push(col.filter(&keep));
                } else if let Some(got) = ArrowColumn::from_py(&ret)? {
                    next.extend(got);
                } else {
                    for row in returned(&ret)?.iter() {
                        self.push(py, i + 1, row, None, out)?;
                    }
                }
            }
            cols = next;
            i += 1;
        }
        cols.retain(|c| c.rows_len() > 0);
        self.settle_arrow(py, i, cols, out)
    }

    /// `cols` reached step `i`, the first that is not an arrow step: they leave the stage
    /// as they are, go natively into a last `countby()`/`avg()`, or become records.
    fn settle_arrow(
        &mut self,
        py: Python<'_>,
        i: usize,
        cols: Vec<ArrowColumn>,
        out: &mut Out,
    ) -> PyResult<()> {
        if cols.is_empty() {
            return Ok(());
        }
        match self.steps.get(i..).unwrap_or_default() {
            [] => {
                out.arrow.extend(cols);
                return Ok(());
            }
            [last] if matches!(**last, PyStep::KeyOf(None)) => {
                if let Some(texts) = cols
                    .iter()
                    .map(ArrowColumn::key_texts)
                    .collect::<Option<Vec<_>>>()
                {
                    out.native
                        .get_or_insert_with(Vec::new)
                        .extend(texts.into_iter().flatten());
                    return Ok(());
                }
            }
            [last] if matches!(**last, PyStep::AvgLocal(None)) => {
                if let Some(values) = cols
                    .iter()
                    .map(ArrowColumn::floats)
                    .collect::<Option<Vec<_>>>()
                {
                    if let StepState::Avg(acc) = &mut self.state[i] {
                        for v in values.into_iter().flatten() {
                            acc.add_float(py, v)?;
                        }
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
        for col in cols {
            for row in col.rows(py)? {
                self.push(py, i, row, None, out)?;
            }
        }
        Ok(())
    }

    /// An arrow `mapBatch` at step `i` over records (after other Python steps): its
    /// wrapper builds the `RecordBatch` from the record dicts and returns `f`'s result.
    /// False for any other step.
    pub(super) fn arrow_from_records(
        &mut self,
        py: Python<'_>,
        i: usize,
        rows: Vec<Py<PyAny>>,
        out: &mut Out,
    ) -> PyResult<Option<Vec<Py<PyAny>>>> {
        let PyStep::MapBatch {
            call,
            columns: Some(_),
        } = &*self.steps[i]
        else {
            return Ok(Some(rows));
        };
        let ret = call.bind(py).call1((PyList::new(py, rows)?,))?;
        match ArrowColumn::from_py(&ret)? {
            Some(cols) => self.run_arrow(py, i + 1, cols, out)?,
            None => {
                for row in returned(&ret)?.iter() {
                    self.push(py, i + 1, row, None, out)?;
                }
            }
        }
        Ok(None)
    }
}

/// An arrow `mapBatch`'s return value when it is not Arrow data: a list of records.
pub(super) fn returned<'a, 'py>(ret: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyList>> {
    ret.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "mapBatch callback must return a list or a pyarrow RecordBatch, Table or Array, not {}",
            type_name(ret)
        ))
    })
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// An arrow `filterBatch`'s keep-flags for `n` records: a boolean Arrow array (nulls drop
/// the record) or a list of truthy values.
fn mask(ret: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<bool>> {
    let keep: Vec<bool> = if let Some(arrays) = ArrowColumn::from_py(ret)? {
        let mut keep = Vec::with_capacity(n);
        for col in arrays {
            let ArrowColumn::Array { array, .. } = col else {
                unreachable!("from_py makes arrays")
            };
            let Some(b) = arrow_array::cast::AsArray::as_boolean_opt(array.as_ref()) else {
                return Err(PyTypeError::new_err(format!(
                    "filterBatch callback must return a boolean array, not {}",
                    array.data_type()
                )));
            };
            keep.extend(b.iter().map(|v| v == Some(true)));
        }
        keep
    } else if let Ok(list) = ret.cast::<PyList>() {
        list.iter()
            .map(|v| v.is_truthy())
            .collect::<PyResult<_>>()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "filterBatch callback must return a list or a boolean pyarrow Array, not {}",
            type_name(ret)
        )));
    };
    if keep.len() != n {
        return Err(PyValueError::new_err(format!(
            "filterBatch callback returned {} values for {} records",
            keep.len(),
            n
        )));
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    // Tests take the GIL directly, not through `crate::gil`.
    #![allow(clippy::disallowed_methods)]

    use std::ffi::CStr;
    use std::sync::Arc;

    use engine::batch::{Batch, KeyBuilder, KeyType};
    use engine::ops::{Emit, Operator};
    use engine::Datum;

    use super::*;

    fn eval(src: &CStr) -> Option<Py<PyAny>> {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            crate::arrow::pyarrow_for_tests(py)
                .then(|| py.eval(src, None, None).expect("eval").unbind())
        })
    }

    fn arrow_map(f: Py<PyAny>) -> PyStep {
        let call = Python::attach(|py| f.clone_ref(py));
        PyStep::MapBatch {
            call,
            columns: Some(f),
        }
    }

    /// One batch of string keys `s:0..n` with values, through `steps`: what leaves.
    fn run(steps: Vec<PyStep>, n: usize) -> Vec<Batch> {
        let mut b = KeyBuilder::new(true);
        for i in 0..n {
            b.push_key(format!("s:{i}").as_bytes(), KeyType::String);
            b.push_str(i.to_string().as_bytes());
        }
        let k = b.finish().expect("finish");
        let mut stage = PyStage::new(steps.into_iter().map(Arc::new).collect(), None);
        let mut emit = Emit::new();
        stage
            .process(Batch::new(BatchData::Keys(k)), &mut emit)
            .expect("process");
        stage.finish(&mut emit).expect("finish");
        emit.drain().filter(|b| !b.is_empty()).collect()
    }

    #[test]
    fn an_arrow_result_leaves_the_stage_as_arrow() {
        let Some(f) = eval(c"lambda rb: rb") else {
            return;
        };
        let out = run(vec![arrow_map(f)], 5);
        assert_eq!(out.len(), 1);
        assert!(out[0].errors.is_empty(), "{:?}", out[0].errors);
        let BatchData::Foreign(col) = &out[0].data else {
            panic!("a host column")
        };
        assert_eq!(col.len(), 5);
        let BatchData::Foreign(col) = out.into_iter().next().expect("batch").data else {
            panic!("a host column")
        };
        assert!(
            col.into_any().downcast::<ArrowColumn>().is_ok(),
            "Arrow, not Python records"
        );
    }

    #[test]
    fn countby_of_an_arrow_result_is_counted_natively() {
        let Some(f) = eval(c"lambda rb: rb['value']") else {
            return;
        };
        let out = run(vec![arrow_map(f), PyStep::KeyOf(None)], 3);
        assert_eq!(out.len(), 1);
        let BatchData::Datums(d) = &out[0].data else {
            panic!("native records, no Python ones")
        };
        let want: Vec<Datum> = ["0", "1", "2"]
            .iter()
            .map(|s| Datum::Str((*s).into()))
            .collect();
        assert_eq!(d, &want);
    }

    #[test]
    fn filter_batch_keeps_the_reader_rows() {
        let Some(f) = eval(c"lambda rb: [k.endswith('1') for k in rb['key'].to_pylist()]") else {
            return;
        };
        let step = Python::attach(|py| PyStep::ArrowFilterBatch {
            call: f.clone_ref(py),
            columns: f,
        });
        let out = run(vec![step], 12);
        assert_eq!(out.len(), 1);
        let BatchData::Foreign(col) = out.into_iter().next().expect("batch").data else {
            panic!("a host column")
        };
        let Ok(col) = col.into_any().downcast::<ArrowColumn>() else {
            panic!("arrow column")
        };
        let ArrowColumn::Keys(k) = *col else {
            panic!("key rows")
        };
        let keys: Vec<&[u8]> = (0..k.len()).map(|i| k.key(i)).collect();
        assert_eq!(keys, vec![&b"s:1"[..], b"s:11"]);
    }
}
