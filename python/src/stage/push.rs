//! Record-at-a-time: pushing one record through a stage's steps, from a given step on,
//! until it leaves the stage or a step keeps it (accumulations, groups, batch steps).
//!
//! A callback whose result must still be awaited may park the stage there (`park`).
//!
//! Part of `PyStage` (`super`); depends on `step`, `future`, `asyncio_bridge` and `convert`.

use std::borrow::Cow;
use std::sync::Arc;

use engine::batch::BinaryColumn;
use engine::ops::Emit;
use engine::Datum;
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PySet};

use super::{Group, Out, PyStage, StepState};
use crate::asyncio_bridge::awaited;
use crate::convert::key_text;
use crate::future::{call, Kind};
use crate::step::{Local, PyStep};

impl PyStage {
    /// Pushes an input batch's records through the stage, record at a time; the first
    /// error stops it, and an await parks the records after it (`park`).
    pub(super) fn push_batch<'py>(
        &mut self,
        py: Python<'py>,
        rows: Vec<Bound<'py, PyAny>>,
        keys: Option<&BinaryColumn>,
        out: &mut Out,
        errors: &mut Vec<String>,
        emit: &mut Emit,
    ) {
        let key_of = |i: usize| keys.filter(|k| i < k.len()).map(|k| k.get(i));
        let mut rows = rows.into_iter().enumerate();
        while let Some((i, row)) = rows.next() {
            if let Err(e) = self.push(py, 0, row, key_of(i), out) {
                self.fail(py, &e, errors, emit);
                break;
            }
            if self.is_parked() {
                // The rest of the batch waits for the await (`park`).
                let rest = rows
                    .by_ref()
                    .map(|(i, r)| (0, r, key_of(i).map(<[u8]>::to_vec)));
                self.park_rest(rest);
                break;
            }
        }
    }

    /// Pushes one record through steps `from..`. `key` is the record's partition key from
    /// the input batch; only a keyed group step at `from` uses it.
    pub(super) fn push<'py>(
        &mut self,
        py: Python<'py>,
        from: usize,
        row: Bound<'py, PyAny>,
        key: Option<&[u8]>,
        out: &mut Out,
    ) -> PyResult<()> {
        let mut row = row;
        for i in from..self.steps.len() {
            let step = Arc::clone(&self.steps[i]);
            let given_key = key.filter(|_| i == from);
            match &*step {
                local @ (PyStep::Map(_)
                | PyStep::Filter(_)
                | PyStep::Foreach(_)
                | PyStep::FlatMap(_)) => {
                    let Some(v) = local.call_local(py, &row)? else {
                        continue;
                    };
                    if self.park_on(py, i, Some(&row), None, &v)? {
                        return Ok(()); // the rest waits for the await (`park`)
                    }
                    match local.settle_local(row, awaited(py, v)?)? {
                        Local::Row(r) => row = r,
                        Local::Dropped => return Ok(()),
                        Local::Spread(items) => return self.push_all(py, i + 1, items, out),
                    }
                }
                PyStep::Accumulate(f) => return self.accumulate(py, i, f, row),
                PyStep::GroupBy {
                    extractor,
                    reducer,
                    keyed,
                } => {
                    let k = group_key(py, extractor, &row, given_key.filter(|_| *keyed))?;
                    return self.group(py, i, k, reducer, row);
                }
                PyStep::BatchGroupBy {
                    extractor, keyed, ..
                } => {
                    let k = group_key(py, extractor, &row, given_key.filter(|_| *keyed))?;
                    if let StepState::Lists(t) = &mut self.state[i] {
                        t.entry(k.as_bytes(), Vec::new).push(row.unbind());
                    }
                    return Ok(());
                }
                PyStep::ExtractKey(e) => {
                    let k = key_text(&call(py, e.bind(py), (&row,), Kind::NoAsync("extractor"))?)?;
                    out.keys
                        .get_or_insert_with(BinaryColumn::default)
                        .push(k.as_bytes());
                }
                PyStep::KeyOf(e) => {
                    let k = match e {
                        Some(e) => {
                            key_text(&call(py, e.bind(py), (&row,), Kind::NoAsync("extractor"))?)?
                        }
                        None => key_text(&row)?,
                    };
                    out.native.get_or_insert_with(Vec::new).push(Datum::Str(k));
                    return Ok(());
                }
                PyStep::AvgLocal(e) => {
                    let v = match e {
                        Some(e) => e.bind(py).call1((row,))?,
                        None => py.get_type::<PyFloat>().call1((row,))?,
                    };
                    if let StepState::Avg(a) = &mut self.state[i] {
                        a.add_value(py, &v)?;
                    }
                    return Ok(());
                }
                PyStep::AvgGlobal => {
                    if let StepState::Avg(a) = &mut self.state[i] {
                        a.add_partial(py, &row)?;
                    }
                    return Ok(());
                }
                PyStep::SortAll(_) => {
                    if let StepState::Rows(v) = &mut self.state[i] {
                        v.push(row.unbind());
                    }
                    return Ok(());
                }
                PyStep::DistinctLocal => {
                    if let StepState::Set(s) = &mut self.state[i] {
                        let set = s.get_or_insert_with(|| PySet::empty(py).expect("set").unbind());
                        set.bind(py).add(row)?;
                    }
                    return Ok(());
                }
                PyStep::DistinctGlobal => {
                    if let StepState::Set(s) = &mut self.state[i] {
                        let set = s.get_or_insert_with(|| PySet::empty(py).expect("set").unbind());
                        set.bind(py).call_method1("update", (row,))?;
                    }
                    return Ok(());
                }
                PyStep::ToStr => row = row.str()?.into_any(),
                PyStep::MapBatch { .. }
                | PyStep::FilterBatch(_)
                | PyStep::ArrowFilterBatch { .. } => {
                    if let StepState::Pending(v) = &mut self.state[i] {
                        v.push(row.unbind());
                    }
                    return Ok(());
                }
            }
        }
        out.rows.push(row.unbind());
        Ok(())
    }

    fn accumulate<'py>(
        &mut self,
        py: Python<'py>,
        i: usize,
        f: &Py<PyAny>,
        row: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let StepState::Acc(acc) = &mut self.state[i] else {
            return Ok(());
        };
        let a = acc
            .take()
            .map(|a| a.into_bound(py))
            .unwrap_or_else(|| py.None().into_bound(py));
        let v = call(py, f.bind(py), (a, row), Kind::Reducer)?;
        if self.park_on(py, i, None, None, &v)? {
            return Ok(()); // the accumulator is set when the await is over (`park`)
        }
        if let StepState::Acc(acc) = &mut self.state[i] {
            *acc = Some(awaited(py, v)?.unbind());
        }
        Ok(())
    }

    fn group<'py>(
        &mut self,
        py: Python<'py>,
        i: usize,
        key: Cow<'_, str>,
        r: &Py<PyAny>,
        row: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let StepState::Groups(t) = &mut self.state[i] else {
            return Ok(());
        };
        let slot = t.slot(key.as_bytes(), || Group::new(py, &key))?;
        let Some(g) = t.at(slot) else {
            return Ok(());
        };
        let a = std::mem::replace(&mut g.acc, py.None());
        let k = g.key.clone_ref(py);
        let v = call(py, r.bind(py), (k, a, row), Kind::Reducer)?;
        if self.park_on(py, i, None, Some(&key), &v)? {
            return Ok(()); // the group's value is set when the await is over (`park`)
        }
        if let StepState::Groups(t) = &mut self.state[i] {
            let v = awaited(py, v)?.unbind();
            match t.at(slot) {
                Some(g) => g.acc = v,
                None => t.try_entry(key.as_bytes(), || Group::new(py, &key))?.acc = v,
            }
        }
        Ok(())
    }
}

/// The group key of `row`: the one carried by the batch (borrowed when UTF-8), else the
/// extractor's.
fn group_key<'k>(
    py: Python<'_>,
    extractor: &Py<PyAny>,
    row: &Bound<'_, PyAny>,
    given: Option<&'k [u8]>,
) -> PyResult<Cow<'k, str>> {
    match given {
        Some(k) => Ok(String::from_utf8_lossy(k)),
        None => Ok(Cow::Owned(key_text(&call(
            py,
            extractor.bind(py),
            (row,),
            Kind::NoAsync("extractor"),
        )?)?)),
    }
}
