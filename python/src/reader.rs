//! `PythonReader`: a generator function as an engine `Source`, pulled a batch at a time
//! under one GIL hold.
//!
//! Middle layer: depends on `column`, `scope`, `errors` and `gil`.

use engine::batch::{Batch, BatchData};
use engine::exec::Source;
use engine::Result;
use pyo3::prelude::*;

use crate::column::PyColumn;
use crate::errors::error_text;

/// Records per GIL hold.
const BATCH: usize = 1024;

pub struct GeneratorSource {
    func: Option<Py<PyAny>>,
    iter: Option<Py<PyAny>>,
    done: bool,
}

impl GeneratorSource {
    pub fn new(func: Py<PyAny>) -> Self {
        GeneratorSource {
            func: Some(func),
            iter: None,
            done: false,
        }
    }

    /// Up to one batch of records, plus the error that ended the generator, if any (the
    /// records it yielded before failing are kept).
    fn pull(&mut self, py: Python<'_>) -> (Vec<Py<PyAny>>, Option<PyErr>) {
        let mut rows = Vec::new();
        if let Some(f) = self.func.take() {
            let produced = match f.bind(py).call0() {
                Ok(p) => p,
                Err(e) => return (rows, Some(e)),
            };
            match produced.try_iter() {
                Ok(it) => self.iter = Some(it.into_any().unbind()),
                Err(_) => {
                    // Not iterable: the return value itself is the only record.
                    self.done = true;
                    rows.push(produced.unbind());
                    return (rows, None);
                }
            }
        }
        let Some(it) = &self.iter else {
            return (rows, None);
        };
        let it = it.bind(py);
        while rows.len() < BATCH {
            match it.call_method0("__next__") {
                Ok(v) => rows.push(v.unbind()),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyStopIteration>(py) => {
                    self.done = true;
                    break;
                }
                Err(e) => return (rows, Some(e)),
            }
        }
        (rows, None)
    }
}

impl Source for GeneratorSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        if self.done {
            return Ok(None);
        }
        Ok(Some(crate::gil::records(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let (rows, err) = self.pull(py);
            let mut b = Batch::new(BatchData::Foreign(Box::new(PyColumn(rows))));
            if let Some(e) = err {
                self.done = true;
                b.errors.push(error_text(py, &e));
            }
            b
        })))
    }
}
