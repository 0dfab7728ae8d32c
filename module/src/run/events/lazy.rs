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

/// Keeps `b`'s executions, run by run of one registration, and empties it.
fn keep_all(state: &ModuleState, b: &mut Vec<Pending>) {
    let settling = Settling::start();
    let caps = Caps::now(state);
    let mut rest = std::mem::take(b).into_iter().peekable();
    while let Some(first) = rest.next() {
        let reg = Arc::clone(&first.reg);
        let mut run = vec![first];
        while let Some(next) = rest.next_if(|p| Arc::ptr_eq(&p.reg, &reg)) {
            run.push(next);
        }
        keep_run(state, &reg, run, caps);
    }
    settling.done();
}

/// Keeps one registration's consecutive executions: stats as one by one would count them
/// (`lastRunDurationMS` is the last one's), then ids and lists (`accounting`).
fn keep_run(state: &ModuleState, reg: &Registration, run: Vec<Pending>, caps: Caps) {
    let last_us = run.last().map_or(0, |p| p.us);
    let before_last: u64 = run.iter().map(|p| p.us).sum::<u64>() - last_us;
    let numbers: Vec<u64> = run.iter().map(|p| p.number).collect();
    let outs: Vec<ExecutionOutput> = run.into_iter().map(|p| p.out).collect();
    {
        let mut stats = reg.stats();
        let (earlier, last) = outs.split_at(outs.len() - 1);
        stats.record_batch(earlier, before_last);
        stats.record_batch(last, last_us);
    }
    accounting::keep_numbered(state, reg, outs, &numbers, caps);
}
