//! Record-local steps (map, filter, foreach, flatmap) applied to one record: shared by
//! `PyStage` and the batched event path, and split into calling the callback and settling
//! its (awaited) result so a `sync` event can await in the background (`event_defer`).

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::PyStep;
use crate::asyncio_bridge::awaited;

/// What a record-local step did with one record.
pub(crate) enum Local<'py> {
    /// The record to pass on.
    Row(Bound<'py, PyAny>),
    Dropped,
    /// Several records to pass on, in emission order.
    Spread(Vec<Bound<'py, PyAny>>),
}

impl PyStep {
    /// Runs a record-local step (map, filter, foreach, flatmap; shared by `PyStage` and
    /// the batched event path) on `row` (any other step passes it on unchanged).
    pub(crate) fn apply_local<'py>(
        &self,
        py: Python<'py>,
        row: Bound<'py, PyAny>,
    ) -> PyResult<Local<'py>> {
        match self.call_local(py, &row)? {
            Some(v) => self.settle_local(row, awaited(py, v)?),
            None => Ok(Local::Row(row)),
        }
    }

    /// A record-local step's callback called on `row`, its result not yet awaited
    /// (`None` for other steps).
    pub(crate) fn call_local<'py>(
        &self,
        py: Python<'py>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            PyStep::Map(f) | PyStep::Filter(f) | PyStep::Foreach(f) | PyStep::FlatMap(f) => {
                Ok(Some(f.bind(py).call1((row,))?))
            }
            _ => Ok(None),
        }
    }

    /// What a record-local step does with `row` once its callback's result is `v`
    /// (awaited).
    pub(crate) fn settle_local<'py>(
        &self,
        row: Bound<'py, PyAny>,
        v: Bound<'py, PyAny>,
    ) -> PyResult<Local<'py>> {
        Ok(match self {
            PyStep::Map(_) => Local::Row(v),
            PyStep::Filter(_) => {
                if v.is_truthy()? {
                    Local::Row(row)
                } else {
                    Local::Dropped
                }
            }
            PyStep::FlatMap(_) if v.is_instance_of::<PyList>() => {
                // 1.2 emits a returned list's elements in reverse order.
                let mut items: Vec<Bound<'py, PyAny>> = v.try_iter()?.collect::<PyResult<_>>()?;
                items.reverse();
                Local::Spread(items)
            }
            PyStep::FlatMap(_) => Local::Row(v),
            _ => Local::Row(row),
        })
    }
}
