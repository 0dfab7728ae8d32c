//! `PyStage`: a run of fused Python steps as one engine operator. It takes the GIL once
//! per batch and pushes each record through every step in order (record-at-a-time inside
//! the batch, `push`, so errors stop the flow exactly where 1.2's would); batch steps
//! (`mapBatch`, `filterBatch`, `batch`) gather what reaches them and run once per batch;
//! leading `async def` steps run a batch's coroutines together (`wave`); at end of input
//! the accumulating steps release their state (`drain`). `runtime` builds stages for the
//! engine, and the finalizer. The stage holding the plan's last Python step converts its
//! results to native values in its own hold when nothing but limits (or, outside a
//! cluster, collects and repartitions) follow it (`step::Ending`). A callback whose result
//! must still be awaited parks the stage (`park`): its worker is free until the awaited
//! value is set, and a single record skips the wave to park at its await. A stage that
//! only extracts keys in a cluster hands unchanged reader records on with their key batch
//! (`through`), which crosses shards instead of marshalled records.
//!
//! Middle layer: depends on `step`, `convert`, `builtins`, `column`, `control`, `cluster`, `scope`,
//! `profile`, `errors` and `gil`; the submodules extend `PyStage` (`super`), never the
//! other way round.

use engine::batch::{Batch, BatchData, BinaryColumn};
use engine::ops::{Emit, GroupTable, Operator};
use engine::{Datum, Result};
use pyo3::prelude::*;
use pyo3::types::PySet;
use std::sync::Arc;

use crate::builtins::{datum_str, AvgAcc};
use crate::column::{KeyedRows, PyColumn};
use crate::control::ExecControl;
use crate::convert::{datum_to_py, py_to_datum, Records};
use crate::errors::error_text;
use crate::step::{Ending, PyStep};

mod arrow;
mod batch;
mod drain;
mod park;
mod push;
mod runtime;
mod through;
mod wave;

pub(crate) use runtime::{keeping, key_dicts};
pub use runtime::{ControlledRuntime, PyRuntime};

/// Per-step state of accumulating steps.
enum StepState {
    None,
    Acc(Option<Py<PyAny>>),
    Groups(GroupTable<Group>),
    Lists(GroupTable<Vec<Py<PyAny>>>),
    Avg(AvgAcc),
    Rows(Vec<Py<PyAny>>),
    Set(Option<Py<PySet>>),
    /// Records waiting for a batch step's one call per batch (see `batch`).
    Pending(Vec<Py<PyAny>>),
}

/// A `groupby` group: its key as the `str` every reducer call of the group gets (made
/// once per group, not per record) and its accumulator.
struct Group {
    key: Py<PyAny>,
    acc: Py<PyAny>,
}

impl Group {
    /// A refused allocation is its `MemoryError` (`convert::py_str`).
    fn new(py: Python<'_>, key: &str) -> PyResult<Group> {
        Ok(Group {
            key: crate::convert::py_str(py, key)?.into_any().unbind(),
            acc: py.None(),
        })
    }
}

/// Records leaving the stage, with partition keys when the last step extracts them, or
/// native records when the last step is `KeyOf`.
#[derive(Default)]
struct Out {
    rows: Vec<Py<PyAny>>,
    keys: Option<BinaryColumn>,
    native: Option<Vec<Datum>>,
    /// Arrow results of a last arrow-format step (`arrow`), one batch each.
    arrow: Vec<crate::arrow::ArrowColumn>,
    /// The key batch `rows` were made from, unchanged (`through`).
    through: Option<engine::batch::KeyColumns>,
}

/// A run of fused Python steps, with the state of its accumulating steps.
pub struct PyStage {
    steps: Vec<Arc<PyStep>>,
    state: Vec<StepState>,
    failed: bool,
    /// Set for abortable executions: records the running thread, honours stops.
    control: Option<Arc<ExecControl>>,
    /// Leading steps run as a wave (`wave`), found on the first batch.
    wave_upto: Option<usize>,
    /// The stage ends the flow's Python steps and its results leave it as native values,
    /// converted inside its GIL hold (no finalizer hold of their own): see `ending`.
    native_out: bool,
    /// The stage's waker (pooled executions only): an await parks the stage (`park`).
    waker: Option<engine::ops::Waker>,
    /// Where the stage stopped for an await, and the records waiting behind it.
    parked: Option<Box<park::Parked>>,
    /// The stage only extracts keys, in a cluster: see `through`.
    extracts_only: bool,
    /// At end of input: the next step whose state `finish` releases (`drain`).
    finishing: usize,
}

impl PyStage {
    /// A stage running `steps`; with `control`, an abortable execution's.
    fn new(steps: Vec<Arc<PyStep>>, control: Option<Arc<ExecControl>>) -> Self {
        let state = steps
            .iter()
            .map(|s| match **s {
                PyStep::Accumulate(_) => StepState::Acc(None),
                PyStep::GroupBy { .. } => StepState::Groups(GroupTable::new()),
                PyStep::BatchGroupBy { .. } => StepState::Lists(GroupTable::new()),
                PyStep::AvgLocal(_) | PyStep::AvgGlobal => StepState::Avg(AvgAcc::default()),
                PyStep::SortAll(_) => StepState::Rows(Vec::new()),
                PyStep::DistinctLocal | PyStep::DistinctGlobal => StepState::Set(None),
                PyStep::MapBatch { .. }
                | PyStep::FilterBatch(_)
                | PyStep::ArrowFilterBatch { .. } => StepState::Pending(Vec::new()),
                _ => StepState::None,
            })
            .collect();
        let extracts_only = Self::extracts_only(&steps);
        PyStage {
            extracts_only,
            steps,
            state,
            failed: false,
            control,
            wave_upto: None,
            native_out: false,
            waker: None,
            parked: None,
            finishing: 0,
        }
    }

    /// Converts the stage's results to native values when it holds the plan's last Python
    /// step (`ending` set) and they do not cross shards as Python records — or when they
    /// are `str()`s (`convertToStr`, a run's default): a native string crosses as exactly
    /// the text a marshalled one would, and the initiator needs no Python for it.
    fn ending(mut self, ending: Option<Ending>) -> Self {
        let strings = matches!(self.steps.last().map(|s| &**s), Some(PyStep::ToStr));
        self.native_out = match ending {
            Some(Ending::Results) => true,
            Some(Ending::Shuffled) => strings || !crate::cluster::is_cluster(),
            None => false,
        };
        self
    }

    /// Converts an input batch into Python records.
    fn rows<'py>(py: Python<'py>, data: BatchData) -> PyResult<Vec<Bound<'py, PyAny>>> {
        match data {
            BatchData::Keys(k) => crate::gc_pause::building(py, || {
                let mut records = Records::new(py);
                (0..k.len()).map(|i| records.dict_at(&k, i)).collect()
            }),
            BatchData::Datums(d) => d.iter().map(|v| datum_to_py(py, v)).collect(),
            BatchData::Foreign(f) => crate::arrow::py_rows(py, f),
        }
    }

    fn emit(&self, py: Python<'_>, out: Out, errors: Vec<String>, emit: &mut Emit) {
        let mut b = match out.native {
            Some(d) => {
                debug_assert!(out.rows.is_empty(), "KeyOf ends its stage");
                Batch::datums(d)
            }
            None if self.native_out => {
                Batch::datums(out.rows.iter().map(|o| py_to_datum(o.bind(py))).collect())
            }
            None => match out.through {
                Some(keys) => Batch::new(BatchData::Foreign(Box::new(KeyedRows {
                    rows: PyColumn(out.rows),
                    keys,
                }))),
                None => Batch::new(BatchData::Foreign(Box::new(PyColumn(out.rows)))),
            },
        };
        b.partition_keys = out.keys;
        b.errors = errors;
        emit.push(b);
        for col in out.arrow {
            emit.push(Batch::new(BatchData::Foreign(Box::new(col))));
        }
    }

    /// Records one failure: 1.2 stops the execution's input at the first error.
    fn fail(&mut self, py: Python<'_>, err: &PyErr, errors: &mut Vec<String>, emit: &mut Emit) {
        errors.push(error_text(py, err));
        self.failed = true;
        emit.stop_upstream();
    }

    /// `convertToStr` over native records: Rust renders what it can render exactly; the
    /// rest (rare: bytes, non-ASCII inside containers) goes through Python's `str()`.
    fn native_tostr(values: Vec<Datum>, emit: &mut Emit) {
        let mut out: Vec<Option<String>> = values.iter().map(datum_str).collect();
        let mut errors = Vec::new();
        if out.iter().any(Option::is_none) {
            crate::gil::batch(|py| {
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

impl PyStage {
    /// One GIL hold for a batch of this stage's work, with the execution scope, the
    /// control's running mark and the session's profiler around `f`; nothing once the
    /// execution was stopped.
    fn hold(&mut self, f: impl FnOnce(&mut Self, Python<'_>)) {
        if self.control.as_ref().is_some_and(|c| c.stopped()) {
            return;
        }
        // A stage that may park under the Redis lock is an inline run that goes on in the
        // background when it awaits: `isAsyncAllow()` is True there (1.2).
        let deferring = self.waker.is_some() && crate::asyncio_bridge::holds_redis_lock();
        crate::gil::batch(|py| {
            let _defer = crate::scope::DeferScope::enter(deferring);
            let _scope = crate::scope::ExecutionScope::enter();
            let _running = self.control.as_ref().map(|c| c.enter());
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            f(self, py)
        });
    }
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
        self.hold(|this, py| {
            let mut out = Out::default();
            let mut errors = Vec::new();
            let data = match this.columnar_first(py, input.data, &mut out) {
                Ok(data) => data,
                Err(e) => {
                    this.fail(py, &e, &mut errors, emit);
                    BatchData::Datums(Vec::new())
                }
            };
            let candidate = this.extracts_only.then(|| through::candidate(&data));
            let mut watch = None;
            match Self::rows(py, data) {
                Ok(rows) => {
                    watch = candidate
                        .flatten()
                        .and_then(|k| through::Watch::new(k, &rows));
                    // Leading `async def` steps: the batch's coroutines run together.
                    // A single record rather parks at its await (`park`).
                    let upto = match keys {
                        None => *this
                            .wave_upto
                            .get_or_insert_with(|| wave::async_prefix(py, &this.steps)),
                        Some(_) => 0,
                    };
                    let upto = match rows.len() == 1 && this.may_park() {
                        true => 0,
                        false => upto,
                    };
                    if upto > 0 {
                        let w = Box::new(wave::Wave::new(&this.steps, upto, rows));
                        if let Err(e) = this.run_wave(py, w, &mut out) {
                            this.fail(py, &e, &mut errors, emit);
                        }
                    } else {
                        this.push_batch(py, rows, keys.as_ref(), &mut out, &mut errors, emit);
                    }
                }
                Err(e) => this.fail(py, &e, &mut errors, emit),
            }
            // Batch steps run once over what reached them (even after an error there:
            // those records were read before it, as in 1.2); one error at most. While
            // the stage is parked, once the batch's last records went through (`park`).
            if !this.is_parked() {
                if let Err(e) = this.flush_batches(py, &mut out) {
                    if !this.failed {
                        this.fail(py, &e, &mut errors, emit);
                    }
                }
            }
            if let Some(w) = watch.filter(|_| errors.is_empty() && !this.is_parked()) {
                out.through = w.unchanged(py, &out.rows);
            }
            this.emit(py, out, errors, emit);
        });
        Ok(())
    }

    fn try_resume(&mut self, emit: &mut Emit) -> Result<engine::ops::Finish> {
        Ok(self.resume(emit))
    }

    fn set_waker(&mut self, waker: engine::ops::Waker) {
        self.waker = Some(waker);
        if let Some(p) = &mut self.parked {
            p.rearm();
        }
    }

    fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    fn try_finish(&mut self, emit: &mut Emit) -> Result<engine::ops::Finish> {
        use engine::ops::Finish;
        loop {
            let mut progress = Finish::Done;
            self.hold(|this, py| progress = this.finish_held(py, emit));
            // Parked: the completion must call the waker (`resume` arms it), unless it
            // is set by now and the drain can go on.
            if progress != Finish::Parked || self.resume(emit) == Finish::Parked {
                return Ok(progress);
            }
        }
    }

    fn finish(&mut self, emit: &mut Emit) -> Result<()> {
        // Without a waker awaits at the end of input wait on the thread (no parking).
        let waker = self.waker.take();
        let finished = self.try_finish(emit);
        self.waker = waker;
        finished.map(|_| ())
    }
}
