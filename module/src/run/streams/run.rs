//! Running a StreamReader registration's batches. Each due batch is queued as an execution
//! (`created`); the registration's drain runs them one at a time, in trigger order, on the
//! worker pool. A batch reads its entries under the Redis lock when it starts, runs the
//! plan, then acks/trims (and queues its stream's next batch if one waits) or applies the
//! failure policy; a failure under `abort`/`retry`,
//! a `PAUSE` error, a pause or an unregister aborts the batches not started yet. A scan
//! (registration, unpause, retry, promotion) queues one batch per matching stream that
//! holds unprocessed entries. The `duration` timer queues what waits `duration` ms after its
//! first entry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::batch::Batch;
use engine::exec::ExecutionOutput;
use gearpy::PyRuntime;
use redis_module::{Context, ContextFlags};

use super::io::{self, StreamEntry};
use crate::model::executions::Entry;
use crate::model::registrations::Mode;
use crate::model::state::{self, ModuleState};
use crate::model::streams::{Job, Read, Status, StreamRegistration};
use crate::redis::access::{self, AsUser};
use crate::redis::lock::with_redis;
use crate::run::inline::Inline;
use crate::run::readers::ready::ReadySource;

fn records(key: &[u8], entries: &[StreamEntry]) -> Box<ReadySource> {
    Box::new(ReadySource::new(Batch::datums(
        entries.iter().map(|e| io::record(key, e)).collect(),
    )))
}

pub(super) fn still_registered(state: &ModuleState, reg: &StreamRegistration) -> bool {
    state.streams.get(&reg.id).is_some()
}

/// Whether this server may do stream work now (a master, not loading).
pub(super) fn live(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::LOADING | ContextFlags::SLAVE)
}

/// A new execution of `reg`, listed (`created`) and counted in `numTriggered`.
fn track(state: &ModuleState, reg: &StreamRegistration) -> Arc<Entry> {
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    state.keep_registered(reg, &entry);
    reg.stats().triggered += 1;
    entry
}

/// Batches due on `key`: queued (run inline for `sync` registrations, `ctx` given). A run
/// of pending entries when the group has none is done at once (main thread), so the new
/// entries' first batch is not held behind it.
pub(super) fn due(
    ctx: Option<&Context>,
    reg: &Arc<StreamRegistration>,
    key: &[u8],
    mut reads: Vec<Read>,
) {
    if let Some(ctx) = ctx {
        reads.retain(|r| {
            !(r.pending_only && io::pending(ctx, key) == 0 && done_empty(ctx, reg, key, *r))
        });
    }
    match ctx {
        Some(ctx) if reg.mode == Mode::Sync => {
            for read in reads {
                run_sync(ctx, reg, key, read);
            }
        }
        _ => {
            for read in reads {
                enqueue(ctx, reg, key, read);
            }
        }
    }
}

/// Queues one batch and starts the drain if none runs. On the main thread (`ctx` given) a
/// registration with nothing queued or running starts the batch at once (`running`
/// before the command that made it due replies), so a pause or unregister sent next lets
/// it finish, as 1.2's current batch does.
pub(super) fn enqueue(
    ctx: Option<&Context>,
    reg: &Arc<StreamRegistration>,
    key: &[u8],
    read: Read,
) {
    let Some(state) = state::get() else { return };
    let job = Job {
        entry: track(state, reg),
        key: key.to_vec(),
        read,
    };
    if !reg.enqueue(job) {
        return;
    }
    let reg = Arc::clone(reg);
    let now = ctx.and_then(|_| reg.next_job());
    match now {
        Some(job) => {
            // Started here; read and run on the pool. Entries are read there, not in
            // the notification: Redis 7.0 would replicate that read before the XADD.
            job.entry.running();
            state.pool.spawn_fn(move || {
                if !launch(&reg, job) {
                    drain(reg);
                }
            });
        }
        None => state.pool.spawn_fn(move || drain(reg)),
    }
}

/// Runs queued batches until one is started asynchronously (its completion drains on)
/// or the queue is empty.
fn drain(reg: Arc<StreamRegistration>) {
    while let Some(job) = reg.next_job() {
        if start_job(&reg, job) {
            return;
        }
    }
}

/// A batch that will not run: aborted.
fn abort_job(state: &ModuleState, reg: &StreamRegistration, job: Job) {
    reg.stats().aborted += 1;
    job.entry.finish(ExecutionOutput {
        aborted: true,
        ..Default::default()
    });
    state.registry.remove(&job.entry.id);
}

/// Starts one batch; true if it runs asynchronously (its completion continues the drain).
fn start_job(reg: &Arc<StreamRegistration>, job: Job) -> bool {
    let Some(state) = state::get() else {
        return false;
    };
    if !still_registered(state, reg) || reg.status() != Status::Ok {
        abort_job(state, reg, job);
        return false;
    }
    launch(reg, job)
}

/// Reads and starts one batch whatever the registration's status (a batch already
/// started finishes, as 1.2's current batch does); true if it runs asynchronously.
fn launch(reg: &Arc<StreamRegistration>, job: Job) -> bool {
    let Some(state) = state::get() else {
        return false;
    };
    let read = with_redis(|ctx| {
        live(ctx).then(|| io::read_batch(ctx, &job.key, job.read.count, job.read.pending_only))
    });
    let Some(entries) = read else {
        abort_job(state, reg, job);
        return false;
    };
    let started = Instant::now();
    if job.read.pending_only && entries.is_empty() {
        // A new stream's run of pending entries found none (the usual case): it is done
        // at once, without starting the plan, so the first batch of the new entries is
        // not held behind it.
        job.entry.running();
        finish(
            reg,
            &job,
            &entries,
            ExecutionOutput::default(),
            started,
            None,
        );
        return false;
    }
    let source = access::source(records(&job.key, &entries), &reg.run_as);
    let host = AsUser::new(PyRuntime, reg.run_as.clone());
    let entry = Arc::clone(&job.entry);
    let batch = Arc::new((job, entries));
    let (done_reg, done_batch) = (Arc::clone(reg), Arc::clone(&batch));
    let on_done = Box::new(move |out: ExecutionOutput| {
        let (job, entries) = &*done_batch;
        finish(&done_reg, job, entries, out, started, None);
        if let Some(state) = state::get() {
            state.pool.spawn_fn(move || drain(done_reg));
        }
    });
    match crate::run::start::start_execution(state, source, &reg.plan, &host, None, on_done) {
        Ok(h) => {
            entry.started(h, None);
            true
        }
        Err(e) => {
            // The completion is not called: record the failure here and drain on.
            let (job, entries) = &*batch;
            finish(reg, job, entries, ExecutionOutput::failed(e), started, None);
            false
        }
    }
}

/// Records a run that found nothing to read as a finished execution (lock held).
fn done_empty(ctx: &Context, reg: &Arc<StreamRegistration>, key: &[u8], read: Read) -> bool {
    let Some(state) = state::get() else {
        return false;
    };
    let job = Job {
        entry: track(state, reg),
        key: key.to_vec(),
        read,
    };
    job.entry.running();
    let out = ExecutionOutput::default();
    finish(reg, &job, &[], out, Instant::now(), Some(ctx));
    true
}

/// Runs one batch of a `sync` registration inline (main thread, lock held).
fn run_sync(ctx: &Context, reg: &Arc<StreamRegistration>, key: &[u8], read: Read) {
    let Some(state) = state::get() else { return };
    let job = Job {
        entry: track(state, reg),
        key: key.to_vec(),
        read,
    };
    let entries = io::read_batch(ctx, key, read.count, read.pending_only);
    let started = Instant::now();
    job.entry.running();
    let out = Inline {
        ctx: Some(ctx),
        run_as: Some(&reg.run_as),
        section: Some(&job.entry.id),
    }
    .run(&reg.plan, records(key, &entries));
    // Sync registrations only allow the `continue` policy: always ack.
    finish(reg, &job, &entries, out, started, Some(ctx));
}

/// Records a finished batch and applies its outcome.
fn finish(
    reg: &Arc<StreamRegistration>,
    job: &Job,
    entries: &[StreamEntry],
    out: ExecutionOutput,
    started: Instant,
    ctx: Option<&Context>,
) {
    let Some(state) = state::get() else { return };
    reg.stats()
        .record(&out, started.elapsed().as_millis() as u64);
    reg.record_lag(job.read.arrival);
    let first_error = out.errors.first().cloned();
    let failed = first_error.is_some() || out.aborted;
    job.entry.finish(out);
    if !still_registered(state, reg) {
        state.registry.remove(&job.entry.id); // unregistered meanwhile: not kept
    }
    if first_error
        .as_deref()
        .is_some_and(|e| e.starts_with("PAUSE"))
    {
        // Its entries stay pending: read again after unpause.
        reg.transition(Status::Ok, Status::Paused);
        state.abort_stream_pending(reg);
        return;
    }
    match (failed, reg.opts.on_failed_policy.as_str()) {
        (false, _) | (true, "continue") => {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let acked = |c: &Context| {
                match ctx {
                    Some(_) => io::ack_in_command(c, &job.key, &ids, reg.opts.trim),
                    None => io::ack(c, &job.key, &ids, reg.opts.trim),
                }
                next_batch(c, reg, &job.key, ctx.is_some());
            };
            match ctx {
                Some(c) => acked(c),
                None => with_redis(acked),
            }
        }
        (true, "abort") => {
            reg.transition(Status::Ok, Status::Aborted);
            state.abort_stream_pending(reg);
        }
        _ => {
            // A pause meanwhile wins: the registration stays paused and is not retried.
            if reg.transition(Status::Ok, Status::WaitingForRetry) {
                arm_retry(Arc::clone(reg));
            }
            state.abort_stream_pending(reg);
        }
    }
}

/// Queues (or, for a `sync` registration on the main thread, runs) the next batch of `key`
/// once one finished, or arms the `duration` timer for what is left (lock held).
fn next_batch(ctx: &Context, reg: &Arc<StreamRegistration>, key: &[u8], main_thread: bool) {
    if !live(ctx) {
        return;
    }
    let next = reg.after_batch(key);
    if next.arm_timer {
        arm_duration(ctx, reg, key.to_vec());
    }
    if !next.reads.is_empty() {
        due(main_thread.then_some(ctx), reg, key, next.reads);
    }
}

#[derive(Debug)]
struct Wake {
    reg: Arc<StreamRegistration>,
    key: Vec<u8>,
}

fn on_duration(ctx: &Context, w: Wake) {
    crate::redis::ffi::trampoline::callback("a stream batch timer", (), || {
        let Some(state) = state::get() else { return };
        if !still_registered(state, &w.reg) || !live(ctx) {
            return;
        }
        if let Some(read) = w.reg.flush(&w.key) {
            due(Some(ctx), &w.reg, &w.key, vec![read]);
        }
    });
}

/// `duration`: queues what arrived since the last batch `duration` ms after its first
/// entry, whether or not a batch runs then (main thread).
pub(super) fn arm_duration(ctx: &Context, reg: &Arc<StreamRegistration>, key: Vec<u8>) {
    let period = Duration::from_millis(reg.opts.duration_ms);
    let wake = Wake {
        reg: Arc::clone(reg),
        key,
    };
    crate::redis::timers::create(ctx, period, on_duration, wake);
}

fn on_retry(ctx: &Context, reg: Arc<StreamRegistration>) {
    crate::redis::ffi::trampoline::callback("a stream retry timer", (), || {
        let Some(state) = state::get() else { return };
        // On a replica the registration waits: becoming a master rescans it.
        if !still_registered(state, &reg) || !live(ctx) {
            return;
        }
        if reg.transition(Status::WaitingForRetry, Status::Ok) {
            scan(ctx, &reg, Scan::All);
        }
    });
}

/// `retry`: re-reads the streams `onFailedRetryInterval` seconds after a failure.
pub(super) fn arm_retry(reg: Arc<StreamRegistration>) {
    let period = Duration::from_secs(reg.opts.retry_interval_s.max(1));
    with_redis(|ctx| crate::redis::timers::create(ctx, period, on_retry, reg));
}

/// Which streams a scan looks at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// A new registration's first scan: streams whose first XADD already counted what they
    /// hold are left to it (the scan may run after those XADDs).
    Unseen,
    /// Unpause, retry, promotion: every matching stream.
    All,
}

/// Queues one batch reading everything for every matching stream that holds entries not
/// processed yet (lock held). Nothing on a replica or while loading.
pub(super) fn scan(ctx: &Context, reg: &Arc<StreamRegistration>, which: Scan) {
    if !live(ctx) || reg.status() != Status::Ok {
        return;
    }
    let mut keys = io::matching_streams(ctx, &reg.prefix);
    keys.retain(|k| reg.may_use(k));
    for k in keys {
        if reg.mark_seen(&k, which == Scan::All) && which == Scan::Unseen {
            continue;
        }
        if io::has_work(ctx, &k) {
            io::ensure_group(ctx, &k);
            reg.scanned(&k);
            let read = Read {
                count: None,
                pending_only: false,
                arrival: Instant::now(),
            };
            enqueue(None, reg, &k, read);
        }
    }
}
