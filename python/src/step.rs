//! `PyStep`: one Python step of a plan (the payload of an engine `UdfStep`), the user
//! callback it runs, and what a record-local step (map, filter, foreach, flatmap) does
//! with one record. Shared by `PyStage` and the batched event path (`event`); calling the
//! callback and settling its (awaited) result are separate so a `sync` event can await in
//! the background.
//!
//! Middle layer: depends on `future`.

use std::any::Any;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::future::{call, Kind};

/// One Python step (the payload of an engine `UdfStep`).
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
    /// list; for the arrow format `columns` is `f`, called with a `RecordBatch` of Arrow
    /// data (`stage/arrow.rs`), and `call` wraps it for a list of records.
    MapBatch {
        call: Py<PyAny>,
        columns: Option<Py<PyAny>>,
    },
    /// `filterBatch(f)` (Gearshift extension): `f(list of records)` returns one keep-flag
    /// per record.
    FilterBatch(Py<PyAny>),
    /// `filterBatch(f, format='arrow')`: `columns` is `f`, called with a `RecordBatch` of
    /// Arrow data (`stage/arrow.rs`); `call` wraps it for a list of records (the batch
    /// built from them, the flags as a list).
    ArrowFilterBatch {
        call: Py<PyAny>,
        columns: Py<PyAny>,
    },
}

impl PyStep {
    /// A user callback of this step (its `__globals__` name the session, see `profile`).
    pub(crate) fn callable(&self) -> Option<&Py<PyAny>> {
        match self {
            PyStep::Map(f) | PyStep::FlatMap(f) | PyStep::Filter(f) | PyStep::Foreach(f) => Some(f),
            PyStep::Accumulate(f)
            | PyStep::ExtractKey(f)
            | PyStep::SortAll(f)
            | PyStep::FilterBatch(f) => Some(f),
            PyStep::GroupBy { reducer, .. } | PyStep::BatchGroupBy { reducer, .. } => Some(reducer),
            PyStep::KeyOf(f) | PyStep::AvgLocal(f) => f.as_ref(),
            PyStep::MapBatch { call, columns } => Some(columns.as_ref().unwrap_or(call)),
            PyStep::ArrowFilterBatch { columns, .. } => Some(columns),
            _ => None,
        }
    }
}

/// Where the records leaving a plan's last Python step go next, when they can become
/// native values in that step's stage (inside its GIL hold) instead of in a finalizer
/// stage of their own. Set by `plan`; a step whose records feed a counting step
/// (`count()`, `sumints`...) has none: those steps never look inside a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Only limits follow, or nothing: the records are the flow's results.
    Results,
    /// A collect or repartition follows: results too, unless the run is distributed
    /// (records then cross shards as marshalled Python objects, as in 1.2).
    Shuffled,
}

/// The payload of a plan's last Python step when it has an [`Ending`].
#[derive(Debug)]
pub struct LastStep {
    pub step: Arc<PyStep>,
    pub ending: Ending,
}

/// The Python step of a plan step's payload, with its [`Ending`] when it is the last.
pub(crate) fn of_payload(
    payload: &Arc<dyn Any + Send + Sync>,
) -> Option<(Arc<PyStep>, Option<Ending>)> {
    if let Ok(step) = Arc::clone(payload).downcast::<PyStep>() {
        return Some((step, None));
    }
    let last = Arc::clone(payload).downcast::<LastStep>().ok()?;
    Some((Arc::clone(&last.step), Some(last.ending)))
}

/// What a record-local step did with one record.
pub(crate) enum Local<'py> {
    /// The record to pass on.
    Row(Bound<'py, PyAny>),
    Dropped,
    /// Several records to pass on, in emission order.
    Spread(Vec<Bound<'py, PyAny>>),
}

impl PyStep {
    /// A record-local step's callback called on `row`, its result not yet awaited
    /// (`None` for other steps).
    pub(crate) fn call_local<'py>(
        &self,
        py: Python<'py>,
        row: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            PyStep::Map(f) | PyStep::Filter(f) | PyStep::Foreach(f) | PyStep::FlatMap(f) => {
                Ok(Some(call(py, f.bind(py), (row,), Kind::Record)?))
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
