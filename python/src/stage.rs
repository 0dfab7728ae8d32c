//! `PyStage`: a run of fused Python steps as one engine operator. It takes the GIL once
//! per batch and pushes each record through every step in order (record-at-a-time inside
//! the batch, so errors stop the flow exactly where 1.2's would); batch steps (`mapBatch`,
//! `filterBatch`, in `batch`) gather what reaches them and run once per batch; leading
//! `async def` steps run a batch's coroutines together (`wave`). Also the
//! finalizer that turns Python results into native values, and `PyRuntime`, the host.

use engine::batch::{Batch, BatchData, BinaryColumn};
use engine::host::HostRuntime;
use engine::ops::{Emit, GroupTable, Operator};
use engine::plan::HostStep;
use engine::{Datum, EngineError, Result};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PySet};
use std::sync::Arc;

use crate::asyncio_bridge::{awaited, not_async};
use crate::builtins::{datum_str, AvgAcc};
use crate::column::PyColumn;
use crate::control::ExecControl;
use crate::convert::{datum_to_py, key_row_to_dict, key_text, py_to_datum};
use crate::errors::error_text;

mod batch;
mod local;
mod wave;

pub(crate) use local::Local;

/// One Python step (the payload of an engine `HostStep`).
#[derive(Debug)]
pub enum PyStep {
    Map(Py<PyAny>),
    FlatMap(Py<PyAny>),
    Filter(Py<PyAny>),
    Foreach(Py<PyAny>),
    Accumulate(Py<PyAny>),
    /// Accumulate by key. `keyed`: the step follows the repartition of a `groupby`, so
    /// the key the extractor produced before the shuffle comes with the batch (the
    /// extractor runs again only if the shuffle dropped it).
    GroupBy {
        extractor: Py<PyAny>,
        reducer: Py<PyAny>,
        keyed: bool,
    },
    /// `batchgroupby`'s reduce: the reducer gets every record of a key at once.
    BatchGroupBy {
        extractor: Py<PyAny>,
        reducer: Py<PyAny>,
        keyed: bool,
    },
    /// Key extraction for a following repartition.
    ExtractKey(Py<PyAny>),
    /// Key extraction feeding a native operator (`countby`): the key text leaves the
    /// stage as a native `Str` record (`None`: the record itself is the key). Always the
    /// last step of its stage.
    KeyOf(Option<Py<PyAny>>),
    /// `avg`, local half: sum and count of the extracted values (`float(x)` by default).
    AvgLocal(Option<Py<PyAny>>),
    /// `avg`, global half: combines the shards' `(sum, count)` and divides.
    AvgGlobal,
    /// `sort(reverse)`: gathers every record, one `sorted()`, emits last-first (1.2).
    SortAll(Py<PyAny>),
    /// `distinct`, local half: a set of the records.
    DistinctLocal,
    /// `distinct`, global half: the union of the shards' sets, emitted last-first.
    DistinctGlobal,
    /// `convertToStr`: `str(record)`.
    ToStr,
    /// `mapBatch(f)` (Gearshift extension): `call(list of records)` returns the output
    /// list; `columns`, for the arrow format, takes the reader's columns instead.
    MapBatch {
        call: Py<PyAny>,
        columns: Option<Py<PyAny>>,
    },
    /// `filterBatch(f)` (Gearshift extension): `f(list of records)` returns one keep-flag
    /// per record.
    FilterBatch(Py<PyAny>),
}

/// Per-step state of accumulating steps.
enum StepState {
    None,
    Acc(Option<Py<PyAny>>),
    Groups(GroupTable<Py<PyAny>>),
    Lists(GroupTable<Vec<Py<PyAny>>>),
    Avg(AvgAcc),
    Rows(Vec<Py<PyAny>>),
    Set(Option<Py<PySet>>),
    /// Records waiting for a batch step's one call per batch (see `batch`).
    Pending(Vec<Py<PyAny>>),
}

/// Records leaving the stage, with partition keys when the last step extracts them, or
/// native records when the last step is `KeyOf`.
#[derive(Default)]
struct Out {
    rows: Vec<Py<PyAny>>,
    keys: Option<BinaryColumn>,
    native: Option<Vec<Datum>>,
}

pub struct PyStage {
    steps: Vec<Arc<PyStep>>,
    state: Vec<StepState>,
    failed: bool,
    /// Set for abortable executions: records the running thread, honours stops.
    control: Option<Arc<ExecControl>>,
    /// Leading steps run as a wave (`wave`), found on the first batch.
    wave_upto: Option<usize>,
}

impl PyStage {
    fn new(steps: Vec<Arc<PyStep>>) -> Self {
        let state = steps
            .iter()
            .map(|s| match **s {
                PyStep::Accumulate(_) => StepState::Acc(None),
                PyStep::GroupBy { .. } => StepState::Groups(GroupTable::new()),
                PyStep::BatchGroupBy { .. } => StepState::Lists(GroupTable::new()),
                PyStep::AvgLocal(_) | PyStep::AvgGlobal => StepState::Avg(AvgAcc::default()),
                PyStep::SortAll(_) => StepState::Rows(Vec::new()),
                PyStep::DistinctLocal | PyStep::DistinctGlobal => StepState::Set(None),
                PyStep::MapBatch { .. } | PyStep::FilterBatch(_) => StepState::Pending(Vec::new()),
                _ => StepState::None,
            })
            .collect();
        PyStage {
            steps,
            state,
            failed: false,
            control: None,
            wave_upto: None,
        }
    }

    /// Pushes one record through steps `from..`. `key` is the record's partition key from
    /// the input batch; only a keyed group step at `from` uses it.
    fn push<'py>(
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
                | PyStep::FlatMap(_)) => match local.apply_local(py, row)? {
                    Local::Row(r) => row = r,
                    Local::Dropped => return Ok(()),
                    Local::Spread(items) => {
                        for item in items {
                            self.push(py, i + 1, item, None, out)?;
                        }
                        return Ok(());
                    }
                },
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
                    let k = key_text(&not_async(py, e.bind(py).call1((&row,))?, "extractor")?)?;
                    out.keys
                        .get_or_insert_with(BinaryColumn::default)
                        .push(k.as_bytes());
                }
                PyStep::KeyOf(e) => {
                    let k = match e {
                        Some(e) => {
                            key_text(&not_async(py, e.bind(py).call1((&row,))?, "extractor")?)?
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
                PyStep::MapBatch { .. } | PyStep::FilterBatch(_) => {
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
        if let StepState::Acc(acc) = &mut self.state[i] {
            let a = acc
                .take()
                .map(|a| a.into_bound(py))
                .unwrap_or_else(|| py.None().into_bound(py));
            *acc = Some(awaited(py, f.bind(py).call1((a, row))?)?.unbind());
        }
        Ok(())
    }

    fn group<'py>(
        &mut self,
        py: Python<'py>,
        i: usize,
        key: String,
        r: &Py<PyAny>,
        row: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        if let StepState::Groups(t) = &mut self.state[i] {
            let slot = t.entry(key.as_bytes(), || py.None());
            let a = std::mem::replace(slot, py.None());
            *slot = awaited(py, r.bind(py).call1((key.as_str(), a, row))?)?.unbind();
        }
        Ok(())
    }

    /// Converts an input batch into Python records.
    fn rows<'py>(py: Python<'py>, data: BatchData) -> PyResult<Vec<Bound<'py, PyAny>>> {
        match data {
            BatchData::Keys(k) => (0..k.len())
                .map(|i| key_row_to_dict(py, &k.row(i)))
                .collect(),
            BatchData::Datums(d) => d.iter().map(|v| datum_to_py(py, v)).collect(),
            BatchData::Foreign(f) => match f.into_any().downcast::<PyColumn>() {
                Ok(col) => Ok(col.0.into_iter().map(|o| o.into_bound(py)).collect()),
                Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(
                    "foreign records of another host",
                )),
            },
        }
    }

    fn emit(out: Out, errors: Vec<String>, emit: &mut Emit) {
        let mut b = match out.native {
            Some(d) => {
                debug_assert!(out.rows.is_empty(), "KeyOf ends its stage");
                Batch::datums(d)
            }
            None => Batch::new(BatchData::Foreign(Box::new(PyColumn(out.rows)))),
        };
        b.partition_keys = out.keys;
        b.errors = errors;
        emit.push(b);
    }

    /// Records one failure: 1.2 stops the execution's input at the first error.
    fn fail(&mut self, py: Python<'_>, err: &PyErr, errors: &mut Vec<String>, emit: &mut Emit) {
        errors.push(error_text(py, err));
        self.failed = true;
        emit.stop_upstream();
    }

    /// Outputs of accumulating step `i` at the end of input.
    fn drain_state<'py>(&mut self, py: Python<'py>, i: usize) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let state = std::mem::replace(&mut self.state[i], StepState::None);
        Ok(match state {
            StepState::None => Vec::new(),
            StepState::Acc(a) => a.into_iter().map(|a| a.into_bound(py)).collect(),
            StepState::Groups(mut t) => t
                .drain()
                .into_iter()
                .map(|(k, a)| key_value(py, &k, a.into_bound(py)))
                .collect::<PyResult<_>>()?,
            StepState::Lists(mut t) => {
                let PyStep::BatchGroupBy { reducer, .. } = &*self.steps[i] else {
                    return Ok(Vec::new());
                };
                let mut rows = Vec::new();
                for (k, items) in t.drain() {
                    let key = String::from_utf8_lossy(&k).into_owned();
                    let list = PyList::new(py, items.into_iter().map(|o| o.into_bound(py)))?;
                    let v = not_async(py, reducer.bind(py).call1((key.as_str(), list))?, "reduce")?;
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

    /// `convertToStr` over native records: Rust renders what it can render exactly; the
    /// rest (rare: bytes, non-ASCII inside containers) goes through Python's `str()`.
    fn native_tostr(values: Vec<Datum>, emit: &mut Emit) {
        let mut out: Vec<Option<String>> = values.iter().map(datum_str).collect();
        let mut errors = Vec::new();
        if out.iter().any(Option::is_none) {
            crate::metrics::attach_batch(|py| {
                for (d, slot) in values.iter().zip(out.iter_mut()) {
                    if slot.is_none() {
                        match datum_to_py(py, d).and_then(|o| Ok(o.str()?.to_string())) {
                            Ok(s) => *slot = Some(s),
                            Err(e) => errors.push(error_text(py, &e)),
                        }
                    }
                }
            });
        }
        let mut b = Batch::datums(out.into_iter().flatten().map(Datum::Str).collect());
        b.errors = errors;
        emit.push(b);
    }

    fn is_tostr_only(&self) -> bool {
        self.steps.len() == 1 && matches!(*self.steps[0], PyStep::ToStr)
    }
}

/// The group key of `row`: the one carried by the batch, else the extractor's.
fn group_key(
    py: Python<'_>,
    extractor: &Py<PyAny>,
    row: &Bound<'_, PyAny>,
    given: Option<&[u8]>,
) -> PyResult<String> {
    match given {
        Some(k) => Ok(String::from_utf8_lossy(k).into_owned()),
        None => key_text(&not_async(
            py,
            extractor.bind(py).call1((row,))?,
            "extractor",
        )?),
    }
}

fn key_value<'py>(py: Python<'py>, k: &[u8], v: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("key", String::from_utf8_lossy(k).as_ref())?;
    d.set_item("value", v)?;
    Ok(d.into_any())
}

impl Operator for PyStage {
    fn name(&self) -> &'static str {
        "python"
    }

    fn process(&mut self, mut input: Batch, emit: &mut Emit) -> Result<()> {
        if self.failed {
            return Ok(()); // input after the first error is dropped, as in 1.2
        }
        if self.is_tostr_only() {
            if let BatchData::Datums(values) = input.data {
                Self::native_tostr(values, emit);
                return Ok(());
            }
        }
        let keys = input.partition_keys.take();
        if self.control.as_ref().is_some_and(|c| c.stopped()) {
            return Ok(());
        }
        crate::metrics::attach_batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let _running = self.control.as_ref().map(|c| c.enter());
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            let mut out = Out::default();
            let mut errors = Vec::new();
            let data = match self.columnar_first(py, input.data, &mut out) {
                Ok(data) => data,
                Err(e) => {
                    self.fail(py, &e, &mut errors, emit);
                    BatchData::Datums(Vec::new())
                }
            };
            match Self::rows(py, data) {
                Ok(rows) => {
                    // Leading `async def` steps: the batch's coroutines run together.
                    let upto = match keys {
                        None => *self
                            .wave_upto
                            .get_or_insert_with(|| wave::async_prefix(py, &self.steps)),
                        Some(_) => 0,
                    };
                    let (rows, wave_err) = match upto {
                        0 => (rows, None),
                        _ => wave::run_wave(py, &self.steps, upto, rows),
                    };
                    for (i, row) in rows.into_iter().enumerate() {
                        let key = keys.as_ref().filter(|k| i < k.len()).map(|k| k.get(i));
                        if let Err(e) = self.push(py, upto, row, key, &mut out) {
                            self.fail(py, &e, &mut errors, emit);
                            break;
                        }
                    }
                    if let Some(e) = wave_err.filter(|_| !self.failed) {
                        self.fail(py, &e, &mut errors, emit);
                    }
                }
                Err(e) => self.fail(py, &e, &mut errors, emit),
            }
            // Batch steps run once over what reached them (even after an error there:
            // those records were read before it, as in 1.2); one error at most.
            if let Err(e) = self.flush_batches(py, &mut out) {
                if !self.failed {
                    self.fail(py, &e, &mut errors, emit);
                }
            }
            Self::emit(out, errors, emit);
        });
        Ok(())
    }

    fn finish(&mut self, emit: &mut Emit) -> Result<()> {
        if self.control.as_ref().is_some_and(|c| c.stopped()) {
            return Ok(());
        }
        crate::metrics::attach_batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let _running = self.control.as_ref().map(|c| c.enter());
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            let mut errors = Vec::new();
            let mut out = Out::default();
            'steps: for i in 0..self.steps.len() {
                let rows = match self.drain_state(py, i) {
                    Ok(r) => r,
                    Err(e) => {
                        self.fail(py, &e, &mut errors, emit);
                        break;
                    }
                };
                for row in rows {
                    if let Err(e) = self.push(py, i + 1, row, None, &mut out) {
                        self.fail(py, &e, &mut errors, emit);
                        break 'steps;
                    }
                }
            }
            Self::emit(out, errors, emit);
        });
        Ok(())
    }
}

/// Turns Python results into native values (under one GIL hold per batch).
struct PyFinalizer;

impl Operator for PyFinalizer {
    fn name(&self) -> &'static str {
        "finalize"
    }

    fn process(&mut self, input: Batch, emit: &mut Emit) -> Result<()> {
        match input.data {
            BatchData::Foreign(f) => {
                let col = f
                    .into_any()
                    .downcast::<PyColumn>()
                    .map_err(|_| EngineError::Internal("foreign records of another host".into()))?;
                let datums =
                    Python::attach(|py| col.0.iter().map(|o| py_to_datum(o.bind(py))).collect());
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

fn py_steps(steps: &[HostStep]) -> Result<Vec<Arc<PyStep>>> {
    steps
        .iter()
        .map(|s| {
            Arc::clone(&s.payload)
                .downcast::<PyStep>()
                .map_err(|_| EngineError::Plan("not a Python step".into()))
        })
        .collect()
}

impl HostRuntime for PyRuntime {
    fn build_stage(&self, steps: &[HostStep]) -> Result<Box<dyn Operator>> {
        Ok(Box::new(PyStage::new(py_steps(steps)?)))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(PyFinalizer)
    }
}

/// A host whose Python stages can be interrupted through an [`ExecControl`] (abortable
/// executions).
#[derive(Debug)]
pub struct ControlledRuntime(pub Arc<ExecControl>);

impl HostRuntime for ControlledRuntime {
    fn build_stage(&self, steps: &[HostStep]) -> Result<Box<dyn Operator>> {
        let mut stage = PyStage::new(py_steps(steps)?);
        stage.control = Some(Arc::clone(&self.0));
        Ok(Box::new(stage))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(PyFinalizer)
    }
}
