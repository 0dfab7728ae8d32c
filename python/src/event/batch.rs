//! Running a batch of keyspace events under one GIL hold, one execution per event; the
//! newest `keep` events' results are converted, the rest only keep their errors.
//!
//! Depends on `flow`, `defer` (an event that awaits where it may not wait ends the batch), `render`,
//! `scope`, `profile`, `convert`, `errors` and `gil`.

use std::collections::VecDeque;

use engine::batch::KeyBuilder;
use engine::exec::ExecutionOutput;
use engine::Datum;
use pyo3::prelude::*;

use super::defer::Deferred;
use super::flow::{finish_records, EventPlan, Record};
use super::render::record_repr;
use crate::convert::{datum_to_py, key_row_to_dict, Records};
use crate::errors::error_text;
use crate::scope::DeferScope;

impl EventPlan {
    /// Runs one event per row of `cols`, from row `first` on, in order, under one GIL
    /// hold (`execute()` releases it while it waits for Redis). Before row `i` runs,
    /// `next(cols, i)` may append it (it must not wait for the Redis lock: the GIL is
    /// held) and returns false to end the batch there. Returns one output per event run.
    /// Only the last `keep` events' results are converted (the others' executions are
    /// dropped before anyone can read them); every event's errors are kept.
    pub fn run(
        &self,
        cols: &mut KeyBuilder,
        first: usize,
        next: &mut dyn FnMut(&mut KeyBuilder, usize) -> bool,
        keep: usize,
    ) -> Vec<ExecutionOutput> {
        self.run_events(cols, first, next, keep, false).0
    }

    /// As [`EventPlan::run`], where no event may wait for an await: `sync` events (the
    /// caller holds the Redis lock) outside MULTI/Lua, and async drains (later events must
    /// not stall behind it). A callback returning a coroutine or `gearsFuture` ends the
    /// batch there, and that event continues once it is settled (its output is not among
    /// the returned ones: see [`Deferred::when_ready`]).
    pub fn run_deferring(
        &self,
        cols: &mut KeyBuilder,
        first: usize,
        next: &mut dyn FnMut(&mut KeyBuilder, usize) -> bool,
        keep: usize,
    ) -> (Vec<ExecutionOutput>, Option<Deferred>) {
        self.run_events(cols, first, next, keep, true)
    }

    /// Runs the flow on one record (a `sync` trigger's arguments, under the Redis lock),
    /// outside MULTI/Lua: its output, or the rest of it to finish once its await is over.
    pub fn run_record(&self, record: &Datum) -> Result<ExecutionOutput, Box<Deferred>> {
        crate::gil::batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            let _deferring = DeferScope::enter(true);
            let mut rows = Vec::new();
            let mut out = ExecutionOutput::default();
            let mut pending = None;
            let pushed = datum_to_py(py, record)
                .and_then(|r| self.push(py, 0, r, &mut rows, Some(&mut pending)));
            if let Err(e) = pushed {
                out.errors.push(error_text(py, &e));
            }
            match pending {
                Some(p) => Err(Box::new(Deferred::new(self.clone(), p, rows, out))),
                None => {
                    finish_records(py, rows, &mut out);
                    Ok(out)
                }
            }
        })
    }

    fn run_events(
        &self,
        cols: &mut KeyBuilder,
        first: usize,
        next: &mut dyn FnMut(&mut KeyBuilder, usize) -> bool,
        keep: usize,
        may_defer: bool,
    ) -> (Vec<ExecutionOutput>, Option<Deferred>) {
        if self.str_only() {
            return (run_str_only(cols, first, next, keep), None);
        }
        crate::gil::batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            let _deferring = DeferScope::enter(may_defer);
            let mut outs: Vec<ExecutionOutput> = Vec::new();
            let mut deferred = None;
            // (event index, records) of the newest `keep` events.
            let mut recent: VecDeque<(usize, Vec<Record>)> = VecDeque::new();
            let mut records = Records::new(py);
            let mut i = first;
            while next(cols, i) && i < cols.len() {
                let mut rows = Vec::new();
                let mut out = ExecutionOutput::default();
                let record = records.dict(&cols.row(i));
                i += 1;
                let mut pending = None;
                let slot = may_defer.then_some(&mut pending);
                if let Err(e) = record.and_then(|r| self.push(py, 0, r, &mut rows, slot)) {
                    out.errors.push(error_text(py, &e));
                }
                if let Some(p) = pending {
                    deferred = Some(Deferred::new(self.clone(), p, rows, out));
                    break;
                }
                if keep > 0 {
                    if recent.len() == keep {
                        recent.pop_front();
                    }
                    recent.push_back((outs.len(), rows));
                }
                outs.push(out);
            }
            for (i, rows) in recent {
                finish_records(py, rows, &mut outs[i]);
            }
            (outs, deferred)
        })
    }
}

/// `GB().register()`: each event's result is `str()` of its record, rendered from the
/// row (only for the newest `keep` events; the others are never read).
fn run_str_only(
    cols: &mut KeyBuilder,
    first: usize,
    next: &mut dyn FnMut(&mut KeyBuilder, usize) -> bool,
    keep: usize,
) -> Vec<ExecutionOutput> {
    let mut outs = Vec::new();
    while next(cols, first + outs.len()) && first + outs.len() < cols.len() {
        outs.push(ExecutionOutput::default());
    }
    let from = outs.len().saturating_sub(keep);
    for (i, out) in outs.iter_mut().enumerate().skip(from) {
        let row = cols.row(first + i);
        let text = record_repr(&row).ok_or(()).or_else(|()| {
            crate::gil::batch(|py| {
                key_row_to_dict(py, &row)
                    .and_then(|r| Ok(r.str()?.to_string()))
                    .map_err(|e| error_text(py, &e))
            })
        });
        match text {
            Ok(t) => out.results.push(Datum::Str(t)),
            Err(e) => out.errors.push(e),
        }
    }
    outs
}
