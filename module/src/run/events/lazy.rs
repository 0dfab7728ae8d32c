//! Sync event executions recorded lazily (issue #13): a sync event's finished execution
//! is appended to one module-wide batch (in execution-id order, across registrations)
//! instead of being kept at once. The batch is kept as one-by-one keeping would have left
//! the registry, the registrations' lists and their stats (`accounting::keep_batch`)
//! before anything looks at them: `model::deferred::settle` runs [`settle`] before every
//! use of the registry and of a registration's stats or kept list, and a full batch is
//! kept at once. Executions a batch both creates and trims are never built, which is the
//! saving.
//!
//! Depends on `model` (registry, registrations, deferred) and `accounting`.

use std::sync::{Arc, Mutex, MutexGuard};

use engine::exec::ExecutionOutput;

use super::accounting::{self, Caps};
use crate::model::deferred::{self, Settling};
use crate::model::registrations::Registration;
use crate::model::state::{self, ModuleState};

/// Executions a batch holds before it is kept anyway (bounds the memory of the results it
/// holds).
pub const BATCH_MAX: usize = 4096;

/// One finished sync event execution, not kept yet.
struct Pending {
    reg: Arc<Registration>,
    number: u64,
    out: ExecutionOutput,
    /// How long it ran, in microseconds.
    us: u64,
}

static BATCH: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

fn batch() -> MutexGuard<'static, Vec<Pending>> {
    BATCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records `outs` (one event's executions, numbered now, in order) of sync registration
/// `reg`, which ran in `us` microseconds.
pub fn record(state: &ModuleState, reg: &Arc<Registration>, outs: Vec<ExecutionOutput>, us: u64) {
    if outs.is_empty() {
        return;
    }
    let mut b = batch();
    if b.capacity() == 0 {
        b.reserve(BATCH_MAX);
    }
    for out in outs {
        b.push(Pending {
            reg: Arc::clone(reg),
            number: state.registry.next_number(),
            out,
            us,
        });
    }
    deferred::defer(settle);
    if b.len() >= BATCH_MAX {
        keep_all(state, &mut b);
    }
}

/// Keeps every recorded execution (`model::deferred`'s hook).
pub fn settle() {
    let Some(state) = state::get() else { return };
    keep_all(state, &mut batch());
}

/// Keeps `b`'s executions, run by run of one registration, and empties it (keeping its
/// capacity: a batch regrown from empty, and each run copied out of it, cost the main
/// thread fresh pages — a sixth of a sync event's time in page faults, perf issue #13).
fn keep_all(state: &ModuleState, b: &mut Vec<Pending>) {
    let settling = Settling::start();
    let caps = Caps::now(state);
    let runs = runs_of(b);
    let mut rest = b.drain(..);
    for len in runs {
        let run = rest.by_ref().take(len);
        let mut reg = None;
        let mut numbers = Vec::with_capacity(len);
        let mut outs = Vec::with_capacity(len);
        let mut times = Vec::with_capacity(len);
        for p in run {
            reg.get_or_insert(p.reg);
            numbers.push(p.number);
            outs.push(p.out);
            times.push(p.us);
        }
        if let Some(reg) = reg {
            keep_run(state, &reg, (numbers, outs, times), caps);
        }
    }
    drop(rest);
    settling.done();
}

/// The lengths of `b`'s runs of consecutive executions of one registration.
fn runs_of(b: &[Pending]) -> Vec<usize> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=b.len() {
        if i == b.len() || !Arc::ptr_eq(&b[i].reg, &b[start].reg) {
            runs.push(i - start);
            start = i;
        }
    }
    runs
}

/// Keeps one registration's consecutive executions (their numbers, outputs and run
/// times): stats as one by one would count them (`lastRunDurationMS` is the last one's),
/// then ids and lists (`accounting`).
fn keep_run(
    state: &ModuleState,
    reg: &Registration,
    run: (Vec<u64>, Vec<ExecutionOutput>, Vec<u64>),
    caps: Caps,
) {
    let (numbers, outs, times) = run;
    let last_us = times.last().copied().unwrap_or(0);
    let before_last: u64 = times.iter().sum::<u64>() - last_us;
    {
        let mut stats = reg.stats();
        let (earlier, last) = outs.split_at(outs.len() - 1);
        stats.record_batch(earlier, before_last);
        stats.record_batch(last, last_us);
    }
    accounting::keep_numbered(state, reg, outs, &numbers, caps);
}
