//! Running a batch of keyspace events under one GIL hold, one execution per event; the
//! newest `keep` events' results are converted, the rest only keep their errors.
//!
//! Depends on `flow`, `defer` (a `sync` event that awaits ends the batch), `render`,
//! `scope`, `profile`, `convert`, `errors` and `gil`.

use std::collections::VecDeque;

use engine::batch::KeyColumns;
use engine::exec::ExecutionOutput;
use engine::Datum;
use pyo3::prelude::*;

use super::defer::Deferred;
use super::flow::{finish_records, EventPlan, Record};
use super::render::record_repr;
use crate::convert::key_row_to_dict;
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
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
        keep: usize,
    ) -> Vec<ExecutionOutput> {
        self.run_events(cols, first, next, keep, false).0
    }

    /// As [`EventPlan::run`], for `sync` events (the caller holds the Redis lock): a
    /// callback returning a coroutine or `gearsFuture`, which cannot be awaited under the
    /// lock, ends the batch there, and that event continues in the background as 1.2's
    /// async_local (its output is not among the returned ones: run `Deferred::finish` on
    /// a worker).
    pub fn run_sync(
        &self,
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
        keep: usize,
    ) -> (Vec<ExecutionOutput>, Option<Deferred>) {
        self.run_events(cols, first, next, keep, true)
    }

    fn run_events(
        &self,
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
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
            let mut i = first;
            while next(cols, i) && i < cols.len() {
                let mut rows = Vec::new();
                let mut out = ExecutionOutput::default();
                let record = key_row_to_dict(py, &cols.row(i));
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
    cols: &mut KeyColumns,
    first: usize,
    next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
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
