//! Running a StreamReader registration's batches: read under the Redis lock, run the plan,
//! then ack/trim or apply the failure policy. One batch per stream at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::batch::Batch;
use engine::exec::ExecutionOutput;
use gearpy::PyRuntime;
use redis_module::Context;

use super::io::{self, StreamEntry};
use crate::model::executions::Entry;
use crate::model::state::{self, ModuleState};
use crate::model::streams::{Status, StreamRegistration};
use crate::redis::access::{self, AsUser};
use crate::redis::lock::with_redis;
use crate::run::inline::Inline;
use crate::run::readers::ready::ReadySource;

fn records(key: &[u8], entries: &[StreamEntry]) -> Box<ReadySource> {
    Box::new(ReadySource::new(Batch::datums(
        entries.iter().map(|e| io::record(key, e)).collect(),
    )))
}

fn still_registered(state: &ModuleState, reg: &StreamRegistration) -> bool {
    state.streams.get(&reg.id).is_some()
}

/// Keeps the execution listed, capped per registration and globally.
fn track(state: &ModuleState, reg: &StreamRegistration) -> Arc<Entry> {
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    state.keep_registered(reg, &entry);
    reg.stats().triggered += 1;
    entry
}

/// Starts `key`'s run loop on the worker pool.
pub(super) fn spawn(reg: Arc<StreamRegistration>, key: Vec<u8>) {
    if let Some(state) = state::get() {
        state.pool.spawn_fn(move || run_batch(reg, key));
    }
}

/// Reads one batch and starts its execution; the completion continues the loop.
fn run_batch(reg: Arc<StreamRegistration>, key: Vec<u8>) {
    let Some(state) = state::get() else { return };
    if !still_registered(state, &reg) || reg.status() != Status::Ok {
        reg.after_batch(&key, 0, false);
        return;
    }
    let entries = with_redis(|ctx| io::read_batch(ctx, &key, reg.opts.batch));
    if entries.is_empty() {
        reg.after_batch(&key, 0, false);
        return;
    }
    let entry = track(state, &reg);
    let started = Instant::now();
    let source = records(&key, &entries);
    let (done_reg, done_key, done_entry) = (Arc::clone(&reg), key.clone(), Arc::clone(&entry));
    let on_done = Box::new(move |out: ExecutionOutput| {
        let again = finish(
            &done_reg,
            &done_key,
            &entries,
            &done_entry,
            out,
            started,
            None,
        );
        if again {
            spawn(done_reg, done_key);
        }
    });
    let source = access::source(source, &reg.run_as);
    let host = AsUser::new(PyRuntime, reg.run_as.clone());
    match crate::run::start::start_execution(state, source, &reg.plan, &host, None, on_done) {
        Ok(h) => entry.started(h, None),
        Err(e) => {
            let out = ExecutionOutput::failed(e);
            entry.finish(out);
            reg.after_batch(&key, 0, false);
        }
    }
}

/// Runs a `sync` registration's batches inline (main thread, lock held).
pub(super) fn run_sync(ctx: &Context, reg: &Arc<StreamRegistration>, key: &[u8]) {
    let Some(state) = state::get() else { return };
    loop {
        let entries = io::read_batch(ctx, key, reg.opts.batch);
        if entries.is_empty() {
            reg.after_batch(key, 0, false);
            return;
        }
        let entry = track(state, reg);
        let started = Instant::now();
        let source = records(key, &entries);
        let out = Inline {
            ctx: Some(ctx),
            run_as: Some(&reg.run_as),
            section: None,
        }
        .run(&reg.plan, source);
        // Sync registrations only allow the `continue` policy: always ack.
        if !finish(reg, key, &entries, &entry, out, started, Some(ctx)) {
            return;
        }
    }
}

/// Records the run and applies the outcome; true if another batch should run now.
fn finish(
    reg: &Arc<StreamRegistration>,
    key: &[u8],
    entries: &[StreamEntry],
    entry: &Entry,
    out: ExecutionOutput,
    started: Instant,
    ctx: Option<&Context>,
) -> bool {
    reg.stats()
        .record(&out, started.elapsed().as_millis() as u64);
    let first_error = out.errors.first().cloned();
    let failed = first_error.is_some() || out.aborted;
    entry.finish(out);
    if first_error
        .as_deref()
        .is_some_and(|e| e.starts_with("PAUSE"))
    {
        reg.set_status(Status::Paused);
        return reg.after_batch(key, 0, false);
    }
    match (failed, reg.opts.on_failed_policy.as_str()) {
        (false, _) | (true, "continue") => {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            match ctx {
                Some(c) => io::ack(c, key, &ids, reg.opts.trim),
                None => with_redis(|c| io::ack(c, key, &ids, reg.opts.trim)),
            }
            reg.after_batch(key, entries.len() as u64, false)
        }
        (true, "abort") => {
            reg.set_status(Status::Aborted);
            reg.after_batch(key, 0, false)
        }
        _ => {
            reg.set_status(Status::WaitingForRetry);
            reg.after_batch(key, 0, false);
            arm_retry(Arc::clone(reg), key.to_vec());
            false
        }
    }
}

#[derive(Debug)]
struct Wake {
    reg: Arc<StreamRegistration>,
    key: Vec<u8>,
    retry: bool,
}

fn on_wake(ctx: &Context, w: Wake) {
    crate::redis::ffi::trampoline::callback("a stream batch timer", (), || {
        let Some(state) = state::get() else { return };
        if !still_registered(state, &w.reg) {
            return;
        }
        if w.retry {
            w.reg.set_status(Status::Ok);
        }
        if w.reg.claim(&w.key) {
            if w.reg.mode == crate::model::registrations::Mode::Sync {
                run_sync(ctx, &w.reg, &w.key);
            } else {
                spawn(Arc::clone(&w.reg), w.key.clone());
            }
        }
    });
}

/// `duration`: runs a partial batch `duration` ms after its first entry (main thread).
pub(super) fn arm_duration(ctx: &Context, reg: &Arc<StreamRegistration>, key: Vec<u8>) {
    let period = Duration::from_millis(reg.opts.duration_ms);
    crate::redis::timers::create(
        ctx,
        period,
        on_wake,
        Wake {
            reg: Arc::clone(reg),
            key,
            retry: false,
        },
    );
}

/// `retry`: re-reads the unacked batch after `onFailedRetryInterval` seconds.
fn arm_retry(reg: Arc<StreamRegistration>, key: Vec<u8>) {
    let period = Duration::from_secs(reg.opts.retry_interval_s.max(1));
    let wake = Wake {
        reg,
        key,
        retry: true,
    };
    with_redis(|ctx| crate::redis::timers::create(ctx, period, on_wake, wake));
}

/// A new (or restored, or unpaused) registration: process what matching streams hold.
pub(super) fn scan_existing(reg: Arc<StreamRegistration>) {
    let keys = with_redis(|ctx| {
        let mut keys = io::matching_streams(ctx, &reg.prefix);
        keys.retain(|k| reg.may_use(k));
        for k in &keys {
            io::ensure_group(ctx, k);
            reg.note_existing(k, io::len(ctx, k));
        }
        keys
    });
    for k in keys {
        if reg.claim(&k) {
            run_batch(Arc::clone(&reg), k);
        }
    }
}
