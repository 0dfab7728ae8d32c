//! End of input: what each accumulating step of a stage releases (accumulators, groups,
//! averages, sorted and distinct records, batch steps' leftovers), pushed through the
//! steps after it. A record whose step awaits there parks the stage (`park`); the drain
//! goes on from the next step when the engine calls `try_finish` again.
//!
//! Part of `PyStage` (`super`); depends on `step` and `future`.

use engine::ops::{Emit, Finish};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{batch, Out, PyStage, StepState};
use crate::future::{call, Kind};
use crate::step::PyStep;

impl PyStage {
    /// `Operator::try_finish` under the stage's hold: releases each step's state in
    /// order, from where it stopped; `Parked` when a released record awaits.
    pub(super) fn finish_held(&mut self, py: Python<'_>, emit: &mut Emit) -> Finish {
        let mut errors = Vec::new();
        let mut out = Out::default();
        let mut progress = Finish::Done;
        while self.finishing < self.steps.len() {
            let i = self.finishing;
            self.finishing += 1;
            let rows = match self.drain_state(py, i) {
                Ok(r) => r,
                Err(e) => {
                    self.fail(py, &e, &mut errors, emit);
                    self.finishing = self.steps.len();
                    break;
                }
            };
            let mut rows = rows.into_iter();
            while let Some(row) = rows.next() {
                if let Err(e) = self.push(py, i + 1, row, None, &mut out) {
                    self.fail(py, &e, &mut errors, emit);
                    self.finishing = self.steps.len();
                    break;
                }
                if self.is_parked() {
                    self.park_rest(rows.by_ref().map(|r| (i + 1, r, None)));
                    break;
                }
            }
            if self.is_parked() {
                progress = Finish::Parked;
                break;
            }
        }
        self.emit(py, out, errors, emit);
        progress
    }

    /// Outputs of accumulating step `i` at the end of input.
    pub(super) fn drain_state<'py>(
        &mut self,
        py: Python<'py>,
        i: usize,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let state = std::mem::replace(&mut self.state[i], StepState::None);
        Ok(match state {
            StepState::None => Vec::new(),
            StepState::Acc(a) => a.into_iter().map(|a| a.into_bound(py)).collect(),
            StepState::Groups(mut t) => t
                .drain()
                .into_iter()
                .map(|(k, g)| key_value(py, &k, g.acc.into_bound(py)))
                .collect::<PyResult<_>>()?,
            StepState::Lists(mut t) => {
                let PyStep::BatchGroupBy { reducer, .. } = &*self.steps[i] else {
                    return Ok(Vec::new());
                };
                let mut rows = Vec::new();
                for (k, items) in t.drain() {
                    let key = String::from_utf8_lossy(&k).into_owned();
                    let list = PyList::new(py, items.into_iter().map(|o| o.into_bound(py)))?;
                    let v = call(
                        py,
                        reducer.bind(py),
                        (key.as_str(), list),
                        Kind::NoAsync("reduce"),
                    )?;
                    rows.push(key_value(py, &k, v)?);
                }
                rows
            }
            StepState::Avg(a) => {
                let out = if matches!(*self.steps[i], PyStep::AvgGlobal) {
                    a.average(py)?
                } else {
                    a.partial(py)?
                };
                out.into_iter().collect()
            }
            StepState::Rows(rows) => {
                let PyStep::SortAll(reverse) = &*self.steps[i] else {
                    return Ok(Vec::new());
                };
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let list = PyList::new(py, rows.into_iter().map(|o| o.into_bound(py)))?;
                let kwargs = PyDict::new(py);
                kwargs.set_item("reverse", reverse.bind(py))?;
                let sorted = py
                    .import("builtins")?
                    .getattr("sorted")?
                    .call((list,), Some(&kwargs))?;
                let mut items: Vec<Bound<'py, PyAny>> =
                    sorted.try_iter()?.collect::<PyResult<_>>()?;
                items.reverse();
                items
            }
            StepState::Pending(rows) => batch::call(py, &self.steps[i], rows)?,
            StepState::Set(None) => Vec::new(),
            StepState::Set(Some(set)) => {
                if matches!(*self.steps[i], PyStep::DistinctLocal) {
                    vec![set.into_bound(py).into_any()]
                } else {
                    let list = PyList::new(py, set.bind(py).iter())?;
                    let mut items: Vec<Bound<'py, PyAny>> = list.iter().collect();
                    items.reverse();
                    items
                }
            }
        })
    }
}

fn key_value<'py>(py: Python<'py>, k: &[u8], v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("key", String::from_utf8_lossy(k).as_ref())?;
    d.set_item("value", v)?;
    Ok(d.into_any())
}
