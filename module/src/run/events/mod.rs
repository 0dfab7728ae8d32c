//! Keyspace events → registration executions (REFERENCE §2.1, DESIGN §6).
//!
//! The notification callback runs on a thread holding the Redis lock (the main thread, or
//! a worker whose `execute()` wrote a key). For `sync` registrations it runs the flow right
//! there (Redis lock first, then the GIL); for the others it only pushes `(key, event)`
//! onto the registration's bounded lock-free queue (`queue`) and, if the registration was
//! idle, schedules its drain (`drain`) on the worker pool.
//!
//! Every event is still one execution, as in 1.2: one execution id, one `numTriggered`,
//! its own success or failure (and `lastError`), its own results in the kept execution,
//! events of one registration run in trigger order. What changes is how they run: for
//! record-local flows (`gearpy::EventPlan`) the drain reads up to hundreds of events'
//! values under one Redis-lock hold, runs them under one GIL hold and builds the finished
//! executions directly (`accounting`); other flows run one engine execution per event.
//! A record-local sync flow's executions are kept lazily, in batches (`lazy`), with the
//! same ids, lists and stats as if kept one by one.

pub mod accounting;
pub mod drain;
pub mod lazy;

use engine::sync::{AtomicBool, Ordering};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use engine::batch::KeyBuilder;
use engine::exec::ExecutionOutput;
use gearpy::EventPlan;
use redis_module::{Context, ContextFlags, NotifyEvent};

use crate::model::event_queue::Pushed;
use crate::model::executions::{Entry, ABORTED_WHILE_RUNNING};
use crate::model::registrations::{Mode, Registration};
use crate::model::state::{self, ModuleState};
use crate::redis::access::Scope;
use crate::redis::ffi::scan::{key_type_of, read_key};
use crate::redis::lock::with_lock_held;
use crate::run::inline::{go_on, Inline};
use crate::run::readers::ready::ReadySource;

/// The keyspace notification handler (Redis lock held).
pub fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    crate::redis::ffi::trampoline::callback("a keyspace event", (), || dispatch(ctx, event, key));
}

fn dispatch(ctx: &Context, event: &str, key: &[u8]) {
    if crate::redis::ffi::scan::own_read() {
        return; // a `keymiss` raised by our own read of a deleted key
    }
    let Some(state) = state::get() else { return };
    if state.registrations.is_empty() {
        return;
    }
    // Fires only on masters and never while loading (1.2); asked once a flow matches (the
    // flags are not free to compute, so sync runs reuse them).
    let mut flags: Option<ContextFlags> = None;
    let mut key_type = None;
    let mut sync_hits: Vec<Arc<Registration>> = Vec::new();
    let mut linked_hits: Vec<Arc<Registration>> = Vec::new();
    state.registrations.with_all(|all| {
        for reg in all {
            if reg.trigger.is_some() || reg.hook.is_some() || !reg.matches_key(key) {
                continue;
            }
            if reg.commands.is_some() {
                // Only events raised by one of its commands, linked to that command.
                if reg.matches_event(event) {
                    let f = flags.get_or_insert_with(|| ctx.get_flags());
                    if may_read(reg, key, f.contains(ContextFlags::MULTI)) {
                        linked_hits.push(Arc::clone(reg));
                    }
                }
                continue;
            }
            drain::note_write(reg);
            if !reg.matches_event(event) {
                continue;
            }
            let f = flags.get_or_insert_with(|| ctx.get_flags());
            if f.intersects(ContextFlags::LOADING | ContextFlags::SLAVE) {
                return;
            }
            let in_multi = f.contains(ContextFlags::MULTI);
            if reg.key_types.is_some() {
                let t = *key_type.get_or_insert_with(|| key_type_of(ctx, key));
                if !reg.wants_type(t) {
                    continue;
                }
            }
            if !may_read(reg, key, in_multi) {
                continue;
            }
            match reg.mode {
                // Run after the list lock is released: the flow may write keys, whose
                // notifications come back here.
                Mode::Sync => sync_hits.push(Arc::clone(reg)),
                Mode::Async | Mode::AsyncLocal => {
                    let number = || state.registry.next_number();
                    if reg.enqueue(key, event.as_bytes(), number)
                        == (Pushed::Accepted { schedule: true })
                    {
                        drain::start(Arc::clone(reg));
                    }
                }
            }
        }
    });
    // An await in a sync flow continues in the background (1.2's async_local), except
    // inside MULTI/Lua.
    let may_defer = !flags
        .unwrap_or(ContextFlags::empty())
        .intersects(crate::redis::ffi::replies::CANNOT_BLOCK);
    for reg in sync_hits {
        reg.count_triggered();
        run_sync(ctx, state, &reg, key, event, may_defer);
    }
    for reg in linked_hits {
        crate::run::linked::trigger(ctx, state, &reg, key, event);
    }
}

/// Whether `reg`'s user may read `key` (lock held): a registration never sees keys its
/// user may not read — it does not fire for them (`crate::redis::access`). The all-keys verdict is
/// cached between ACL changes, except inside MULTI (`acl_cache`).
fn may_read(reg: &Registration, key: &[u8], in_multi: bool) -> bool {
    reg.read_cache.may_read(&reg.run_as, key, !in_multi)
}

/// Runs a sync registration inline (as its user): the key is read under the lock we
/// hold, and `execute()` calls Redis directly on this context.
fn run_sync(
    ctx: &Context,
    state: &'static ModuleState,
    reg: &Arc<Registration>,
    key: &[u8],
    event: &str,
    may_defer: bool,
) {
    let _as = Scope::enter(reg.run_as.clone());
    let started = Instant::now();
    if let Some(plan) = &reg.fast {
        let ev = SyncEvent {
            key,
            event,
            started,
            may_defer,
        };
        return run_sync_fast(ctx, state, reg, plan, ev);
    }
    let mut cols = KeyBuilder::new(reg.read_value);
    read_key(ctx, key, &mut cols, reg.read_value);
    cols.push_event(event.as_bytes());
    let source = Box::new(ReadySource::keys(cols));
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    state.keep_registered(&**reg, &entry);
    entry.running();
    let ran = Inline {
        ctx: Some(ctx),
        run_as: None, // entered by run_sync
        section: Some(&entry.id),
    }
    .run_or_park(&reg.plan, source, may_defer);
    match ran {
        Ok(out) => finish(reg, &entry, out, started),
        // A step awaits: the rest goes on in the background (1.2's async_local).
        Err(rest) => {
            let (r, e) = (Arc::clone(reg), Arc::clone(&entry));
            let on_done = Box::new(move |out| finish(&r, &e, out, started));
            entry.started(go_on(state, *rest, &reg.run_as, on_done), None);
        }
    }
}

/// One event for a sync flow.
struct SyncEvent<'a> {
    key: &'a [u8],
    event: &'a str,
    started: Instant,
    /// Whether an await may continue in the background (not inside MULTI/Lua).
    may_defer: bool,
}

/// A record-local sync flow: one event through the event plan, no engine execution.
fn run_sync_fast(
    ctx: &Context,
    state: &'static ModuleState,
    reg: &Arc<Registration>,
    plan: &EventPlan,
    ev: SyncEvent<'_>,
) {
    let SyncEvent {
        key,
        event,
        started,
        may_defer,
    } = ev;
    // One event: it is listed once it ends whatever the caps (`accounting::Caps::keep` is
    // at least 1), so its results are always converted.
    let keep = usize::MAX;
    let run = |cols: &mut KeyBuilder| {
        let first = cols.len();
        let mut go = || {
            // The Redis lock is ours: the key is read as the event runs.
            let mut next = |cols: &mut KeyBuilder, i: usize| {
                if i != first {
                    return false;
                }
                read_key(ctx, key, cols, reg.read_value);
                cols.push_event(event.as_bytes());
                true
            };
            if may_defer {
                plan.run_deferring(cols, first, &mut next, keep)
            } else {
                (plan.run(cols, first, &mut next, keep), None)
            }
        };
        if plan.str_only() {
            // No user code runs (records are rendered in Rust): no `execute()` needs the
            // held lock marked, and no busy section can be long.
            go()
        } else {
            with_lock_held(ctx, go)
        }
    };
    let (outs, deferred) = SYNC_ROWS.with(|rows| match rows.try_borrow_mut() {
        Ok(mut rows) => {
            match rows.as_mut() {
                // Cleared, it keeps its capacity (no regrowing per 256 events), unless a big
                // value grew it: that memory goes back.
                Some(c) if c.read_value() == reg.read_value && c.len() < SYNC_ROWS_MAX => {}
                Some(c) if c.read_value() == reg.read_value && c.capacity_bytes() <= KEPT_BYTES => {
                    c.clear();
                }
                _ => *rows = Some(KeyBuilder::new(reg.read_value)),
            }
            match rows.as_mut() {
                Some(cols) => run(cols),
                None => run(&mut KeyBuilder::new(reg.read_value)),
            }
        }
        // A flow of this thread wrote a key: the nested event gets its own rows.
        Err(_) => run(&mut KeyBuilder::new(reg.read_value)),
    });
    // Kept lazily (`lazy`): listed, counted and trimmed before anything looks.
    lazy::record(state, reg, outs, started.elapsed().as_micros() as u64);
    if let Some(rest) = deferred {
        continue_in_background(state, reg, rest, started, None);
    }
}

/// An event that awaited (a sync one, or one of an async drain): listed as running (as
/// execution `id`, or a new one), it finishes on a worker once its await is over.
pub(crate) fn continue_in_background(
    state: &'static ModuleState,
    reg: &Arc<Registration>,
    rest: gearpy::Deferred,
    started: Instant,
    id: Option<String>,
) {
    let entry = Entry::new_registered(id.unwrap_or_else(|| state.registry.next_id()), &reg.shape);
    entry.running();
    state.keep_registered(&**reg, &entry);
    // Ended once: by the rest, or by RG.ABORTEXECUTION while it waits (1.2: `done`, one
    // error; the awaited value, if it ever comes, is dropped).
    let ended = Arc::new(AtomicBool::new(false));
    let (abort_reg, abort_entry, abort_ended) =
        (Arc::clone(reg), Arc::clone(&entry), Arc::clone(&ended));
    entry.on_abort(move || {
        if !abort_ended.swap(true, Ordering::AcqRel) {
            let out = ExecutionOutput::failed(ABORTED_WHILE_RUNNING);
            finish(&abort_reg, &abort_entry, out, started);
        }
    });
    let done_reg = Arc::clone(reg);
    let then = Box::new(move |out| {
        if !ended.swap(true, Ordering::AcqRel) {
            finish(&done_reg, &entry, out, started);
        }
    });
    crate::run::inline::finish_deferred(state, rest, reg.run_as.clone(), then);
}

/// Rows a thread's sync events are read into, one after another, before they are cleared
/// (saves allocating columns per event).
const SYNC_ROWS_MAX: usize = 256;
/// The most memory those rows keep between sets.
const KEPT_BYTES: usize = 1 << 20;

thread_local! {
    static SYNC_ROWS: RefCell<Option<KeyBuilder>> = const { RefCell::new(None) };
}

/// Records the run in the registration's stats and completes the execution.
fn finish(reg: &Registration, entry: &Arc<Entry>, out: ExecutionOutput, started: Instant) {
    // Counted as RG.DUMPEXECUTIONS shows it: aborted while running is a failure (1.2).
    let out = entry.settle(out);
    reg.stats()
        .record(&out, started.elapsed().as_millis() as u64);
    entry.finish(out);
}
