//! `PyColumn`: Python objects as an engine `ForeignColumn` (one allocation per batch, not
//! per record). Dropping it without the GIL is safe: pyo3 defers the decrefs.

use std::any::Any;

use engine::batch::ForeignColumn;
use pyo3::prelude::*;

#[derive(Debug, Default)]
pub struct PyColumn(pub Vec<Py<PyAny>>);

impl ForeignColumn for PyColumn {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn slice(mut self: Box<Self>, start: usize, end: usize) -> Box<dyn ForeignColumn> {
        self.0.truncate(end);
        let tail = self.0.split_off(start.min(self.0.len()));
        Box::new(PyColumn(tail))
    }

    fn partition(self: Box<Self>, dest: &[usize], n: usize) -> Vec<Box<dyn ForeignColumn>> {
        let mut out: Vec<Vec<Py<PyAny>>> = (0..n).map(|_| Vec::new()).collect();
        for (obj, &to) in self.0.into_iter().zip(dest) {
            out[to].push(obj);
        }
        out.into_iter()
            .map(|v| Box::new(PyColumn(v)) as Box<dyn ForeignColumn>)
            .collect()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}
