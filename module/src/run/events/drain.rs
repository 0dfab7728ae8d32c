//! Draining a registration's queued events on the worker pool, in trigger order, one
//! drain per registration at a time.
//!
//! Record-local flows (`Registration::fast`) run in batches of up to `MAX_BATCH` events:
//! 1. under one Redis-lock hold (at most `READ_BUDGET`), pop the events and read their
//!    keys' values;
//! 2. release the lock and run every event's Python under one GIL hold (at most
//!    `RUN_BUDGET` before the next event is left for the next batch). User code runs
//!    without the Redis lock, as in 1.2's async mode; `execute()` takes the lock per call
//!    (GIL released first, DESIGN §5). An event's value is the one read in step 1, which
//!    differs from 1.2 (reading when its execution starts) only if an earlier event of
//!    the batch wrote that key: when a flow writes any key the registration matches, the
//!    batch stops after that event and the rest are read again for the next batch;
//! 3. record the finished executions (`accounting`).
//!
//! An event whose callback returns a coroutine or `gearsFuture` ends its batch: its rest
//! continues on its own once the await is over (`continue_in_background`), and the next
//! batch starts with the event after it (REFERENCE §12.5: later events do not wait).
//!
//! Sharing the Redis lock with the main thread: the drain holds it only to read a batch
//! (its Python phase leaves the main thread free to take it) and for `execute()` calls.
//! Write bursts: when events arrive faster than `BUSY_RATE` (averaged over `RATE_TAU` of
//! time the drain did not hold the lock), or the lock was busy (the wait exceeded
//! `BUSY_WAIT`), the main thread is saturated, and processing now would only slow the
//! writer down (reads and `execute()` need the lock). The drain then retries after
//! `BACKOFF`, letting events accumulate — for at most `MAX_DEFER` per backlog (from the
//! first deferral until the queue is next empty) and only while fewer than `DEFER_LIMIT`
//! events wait. After that it runs batches regardless, and the writer shares the lock.
//!
//! Other flows run one engine execution per event (`run_next`), chained: the next one
//! starts when the previous one ends or first parks on an await (REFERENCE §12.5).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::batch::KeyBuilder;
use engine::exec::ExecutionOutput;
use engine::sync::{AtomicBool, Ordering};
use gearpy::{EventPlan, PyRuntime};
use redis_module::Context;

use super::accounting::{self, Caps};
use super::finish;
pub use crate::model::drain_state::{DrainState, BURST_MIN_EVENTS, RATE_TAU};
use crate::model::event_queue::MAX_PENDING_EVENTS;
use crate::model::event_results::Awaited;
use crate::model::executions::Entry;
use crate::model::queued_ids::Start;
use crate::model::registrations::Registration;
use crate::model::state::{self, ModuleState};
use crate::redis::access::{self, AsUser, Scope};
use crate::redis::ffi::mget::read_keys;
use crate::redis::ffi::own_lock::{self, OwnLock};
use crate::run::readers::keys::KeysSource;

/// Events per batch (one Redis-lock hold to read them, one GIL hold to run them).
pub const MAX_BATCH: usize = 512;
/// Lock time after which a batch reads no further event.
pub const READ_BUDGET: Duration = Duration::from_millis(1);
/// Run time after which a batch starts no further event.
pub const RUN_BUDGET: Duration = Duration::from_millis(5);
/// A lock wait this long means the main thread is busy.
pub const BUSY_WAIT: Duration = Duration::from_micros(50);
/// Events arriving this fast (per second, while the drain did not hold the lock) mean
/// the main thread is busy writing.
pub const BUSY_RATE: f64 = 100_000.0;
/// Retry delay while deferring to a busy main thread.
pub const BACKOFF: Duration = Duration::from_millis(1);
/// The longest a backlog is deferred.
pub const MAX_DEFER: Duration = Duration::from_millis(250);
/// No deferral once this many events wait.
pub const DEFER_LIMIT: usize = MAX_PENDING_EVENTS / 8;
/// Pool time of one drain task before it yields its thread (re-queues itself).
const SLICE: Duration = Duration::from_millis(10);

thread_local! {
    /// The registration this thread is running a batch of (its address), and whether a
    /// key it matches was written since.
    static DRAINING: Cell<(usize, bool)> = const { Cell::new((0, false)) };
}

/// Notes a write to a key `reg` matches (notification callback).
pub fn note_write(reg: &Arc<Registration>) {
    DRAINING.with(|d| {
        let (r, _) = d.get();
        if r == Arc::as_ptr(reg) as usize {
            d.set((r, true));
        }
    });
}

fn has_work(reg: &Registration) -> bool {
    !reg.queue.is_empty() || !reg.drain_state().carry.is_empty()
}

/// Schedules the drain of a registration that was idle (its queue is claimed; the
/// event just pushed is the first of a backlog).
pub fn start(reg: Arc<Registration>) {
    let since = (reg.queue.pushed().saturating_sub(1), Instant::now());
    resume(reg, since);
}

/// Schedules the drain; `since`: (events pushed, when) as of its last lock release.
fn resume(reg: Arc<Registration>, since: (u64, Instant)) {
    if let Some(state) = state::get() {
        state.pool.spawn_fn(move || run(reg, since));
    }
}

fn run(reg: Arc<Registration>, since: (u64, Instant)) {
    let Some(state) = state::get() else { return };
    match reg.fast.clone() {
        Some(plan) => drain_batches(state, reg, &plan, since),
        None => run_next(reg),
    }
}

/// Runs batches until the queue is empty (then releases it) or the slice is used up
/// (then re-queues itself, still owning the queue).
fn drain_batches(
    state: &'static ModuleState,
    reg: Arc<Registration>,
    plan: &EventPlan,
    since: (u64, Instant),
) {
    let slice_end = Instant::now() + SLICE;
    // Events pushed as of when the drain last released the lock, and when that was.
    let mut mark = since;
    loop {
        if !has_work(&reg) {
            *reg.drain_state() = DrainState::default();
            if reg.queue.finish_drain() {
                continue;
            }
            return;
        }
        // A burst is recognised without touching the lock (a waiting drain costs the
        // main thread a futex wake-up and a context switch).
        let rate = reg
            .drain_state()
            .observe(reg.queue.pushed() - mark.0, mark.1.elapsed());
        if rate >= BUSY_RATE && may_defer(&reg) {
            mark = (reg.queue.pushed(), Instant::now());
            std::thread::sleep(BACKOFF);
        } else {
            let asked = Instant::now();
            let guard = own_lock::lock();
            if asked.elapsed() >= BUSY_WAIT && may_defer(&reg) {
                drop(guard);
                mark = (reg.queue.pushed(), Instant::now());
                std::thread::sleep(BACKOFF);
            } else {
                run_batch(state, &reg, plan, guard);
                mark = (reg.queue.pushed(), Instant::now());
            }
        }
        if Instant::now() >= slice_end {
            resume(reg, mark);
            return;
        }
    }
}

/// True while the backlog may still wait for a busy main thread.
fn may_defer(reg: &Registration) -> bool {
    if reg.queue.len() >= DEFER_LIMIT {
        return false;
    }
    let now = Instant::now();
    let since = *reg.drain_state().deferring_since.get_or_insert(now);
    now.duration_since(since) < MAX_DEFER
}

/// One batch: read under the Redis lock `guard` holds (released here), then run.
fn run_batch(
    state: &'static ModuleState,
    reg: &Arc<Registration>,
    plan: &EventPlan,
    guard: OwnLock,
) {
    let caps = Caps::now(state);
    let started = Instant::now();
    let mut cols = KeyBuilder::new(reg.read_value);
    let seqs = read_batch(reg, &guard, &mut cols, started);
    // Their execution numbers, taken when they were queued.
    let ids = reg.queued_ids.bind(&seqs);
    drop(guard);

    DRAINING.with(|d| d.set((Arc::as_ptr(reg) as usize, false)));
    let running = Instant::now();
    // Each event is numbered as it starts, and is the registration's in-flight one (listed,
    // abortable) while it runs.
    let mut numbers = Vec::with_capacity(seqs.len());
    // An event discarded meanwhile (RG.UNREGISTER) does not start.
    // An event aborted while queued stops the batch; it is skipped when carried.
    let mut next = |cols: &mut KeyBuilder, i: usize| {
        let go = i < cols.len()
            && !reg.queue.discarded(seqs[i])
            && (i == 0 || (!DRAINING.with(|d| d.get().1) && running.elapsed() < RUN_BUDGET));
        let number = match go.then(|| ids[i]) {
            Some(Start::Number(n)) => reg.queued_ids.start(seqs[i]).then_some(n),
            Some(Start::Unnumbered) => {
                reg.queued_ids.start(seqs[i]);
                Some(state.registry.next_number())
            }
            Some(Start::Aborted) | None => None,
        };
        match number {
            Some(n) => {
                numbers.push(n);
                reg.in_flight.start(n);
            }
            None => reg.in_flight.stop(),
        }
        number.is_some()
    };
    let (outs, deferred) = {
        let _as = Scope::enter(reg.run_as.clone());
        // A client waiting for a queued event gets its results even if its execution
        // is dropped at once (one that starts waiting during the run may not).
        let keep = match reg.queued_ids.has_clients() {
            true => usize::MAX,
            false => caps.keep(),
        };
        plan.run_deferring(&mut cols, 0, &mut next, keep)
    };
    reg.in_flight.stop();
    DRAINING.with(|d| d.set((0, false)));

    // Events not run (the batch stopped early) go first next time, read again; an event
    // that awaits ran (its rest continues on its own).
    let ran = outs.len() + usize::from(deferred.is_some());
    let mut drain = reg.drain_state();
    for (i, &seq) in seqs.iter().enumerate().skip(ran) {
        if skip_aborted(reg, seq) {
            continue;
        }
        let row = cols.row(i);
        let event = row.event.unwrap_or_default().to_vec();
        drain.carry.push_back((seq, row.key.to_vec(), event));
    }
    drop(drain);
    let awaiting = deferred.map(|rest| (rest, numbers.get(outs.len()).copied()));
    let numbers = &numbers[..numbers.len().min(outs.len())];
    let awaited = Awaited::of(reg, numbers, &outs);
    accounting::record_numbered(state, reg, outs, numbers, started.elapsed(), caps);
    if let Some((rest, number)) = awaiting {
        // Later events do not wait for it (each event is its own execution, §12.5).
        let id = number.map(crate::model::topology::numbered_id);
        super::continue_in_background(state, reg, rest, running, id);
    }
    awaited.answer(&state.registry, reg);
}

/// Pops the batch's events (carried ones first) and reads their values into `cols`, a
/// chunk of events at a time (`mget::read_keys`); returns their sequence numbers.
fn read_batch(
    reg: &Registration,
    ctx: &Context,
    cols: &mut KeyBuilder,
    started: Instant,
) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut chunk = Chunk::default();
    let carry = std::mem::take(&mut reg.drain_state().carry);
    for (seq, key, event) in carry {
        if !reg.queue.discarded(seq) && !skip_aborted(reg, seq) {
            chunk.add(seq, &key, &event);
        }
    }
    chunk.read(ctx, cols, &mut seqs);
    let mut queue = reg.queue.consumer();
    while seqs.len() < MAX_BATCH && started.elapsed() < READ_BUDGET {
        let room = READ_CHUNK.min(MAX_BATCH - seqs.len());
        while chunk.len() < room {
            let Some(ev) = queue.pop() else { break };
            if !skip_aborted(reg, ev.seq) {
                chunk.add(ev.seq, ev.key, ev.event);
            }
        }
        if chunk.len() == 0 {
            break;
        }
        chunk.read(ctx, cols, &mut seqs);
    }
    seqs
}

/// Events read in one go (between checks of `READ_BUDGET`).
const READ_CHUNK: usize = 32;

/// Popped events waiting to be read: their keys and events in one buffer.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// (sequence number, key start, event start, event end) in `bytes`.
    rows: Vec<(u64, usize, usize, usize)>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn add(&mut self, seq: u64, key: &[u8], event: &[u8]) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(event);
        self.rows.push((seq, at, at + key.len(), self.bytes.len()));
    }

    /// Reads the chunk's keys into `cols` (each row followed by its event), appends their
    /// sequence numbers to `seqs` and empties the chunk.
    fn read(&mut self, ctx: &Context, cols: &mut KeyBuilder, seqs: &mut Vec<u64>) {
        let b = &self.bytes;
        let keys: Vec<&[u8]> = self.rows.iter().map(|r| &b[r.1..r.2]).collect();
        read_keys(ctx, &keys, cols, |i, cols| {
            let (seq, _, e0, e1) = self.rows[i];
            cols.push_event(&b[e0..e1]);
            seqs.push(seq);
        });
        self.bytes.clear();
        self.rows.clear();
    }
}

/// True (and forgotten) if the event `seq` was aborted while queued: it never runs.
fn skip_aborted(reg: &Registration, seq: u64) -> bool {
    reg.queued_ids.skip_aborted(seq)
}

/// Other flows: starts the next queued event as an engine execution; its completion
/// starts the one after.
pub fn run_next(reg: Arc<Registration>) {
    let Some(state) = state::get() else { return };
    loop {
        let next = {
            let mut queue = reg.queue.consumer();
            queue
                .pop()
                .map(|e| (e.seq, e.key.to_vec(), e.event.to_vec()))
        };
        let Some((seq, key, event)) = next else {
            if reg.queue.finish_drain() {
                continue;
            }
            return;
        };
        let number = match reg.queued_ids.start_one(seq) {
            Start::Number(n) => n,
            Start::Unnumbered => state.registry.next_number(),
            Start::Aborted => {
                reg.queued_ids.skip_aborted(seq);
                continue;
            }
        };
        let started = Instant::now();
        let id = crate::model::topology::numbered_id(number);
        let entry = Entry::new_registered(id, &reg.shape);
        state.keep_registered(&*reg, &entry);
        for (_, client) in reg.queued_ids.recorded() {
            entry.reply_when_done(client);
        }
        let source = access::source(
            Box::new(KeysSource::for_event(key, event, reg.read_value)),
            &reg.run_as,
        );
        // A repartition moves the event's records to other shards: the run is started on
        // every shard (their readers yield nothing) and collected here.
        let launched = crate::run::distribute::launch(&entry.id, &reg, None).map(Arc::new);
        let (done_reg, done_entry) = (Arc::clone(&reg), Arc::clone(&entry));
        let local = launched.clone();
        // The next event starts when this one ends or first awaits, whichever comes first
        // (an awaiting execution frees its worker: later events do not wait for it).
        let moved_on = Arc::new(AtomicBool::new(false));
        let done_moved = Arc::clone(&moved_on);
        let on_done = Box::new(move |out: ExecutionOutput| {
            let next = Arc::clone(&done_reg);
            let complete = move |out: ExecutionOutput| finish(&done_reg, &done_entry, out, started);
            match local {
                Some(l) => l.local_done(out, Box::new(complete)),
                None => complete(out),
            }
            if !done_moved.swap(true, Ordering::AcqRel) {
                run_next(next);
            }
        });
        let host = AsUser::new(PyRuntime, reg.run_as.clone());
        let shuffle = launched.as_ref().map(|l| &l.shuffle);
        match crate::run::start::start_execution(state, source, &reg.plan, &host, shuffle, on_done)
        {
            Ok(h) => {
                let next = Arc::clone(&reg);
                h.when_parked(Box::new(move || {
                    if !moved_on.swap(true, Ordering::AcqRel) {
                        state.pool.spawn_fn(move || run_next(next));
                    }
                }));
                entry.started(h, None);
                return;
            }
            Err(e) => {
                if let Some(l) = &launched {
                    l.abandon();
                }
                let out = ExecutionOutput::failed(e);
                finish(&reg, &entry, out, started);
            }
        }
    }
}
