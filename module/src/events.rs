//! Keyspace events → registration executions (REFERENCE §2.1, DESIGN §6).
//!
//! The notification callback runs on Redis's main thread under the Redis lock: for `sync`
//! registrations it runs the flow right there (Redis lock first, then the GIL); for the
//! others it only queues `(key, event)` and, if the registration was idle, starts its run
//! loop on the worker pool. Each event is one execution, run in trigger order, counted and
//! kept as 1.2 does.

use std::sync::Arc;
use std::time::Instant;

use engine::batch::{Batch, BatchData, KeyColumns};
use engine::exec::{ExecConfig, Execution, ExecutionOutput};
use gearpy::PyRuntime;
use redis_module::{Context, ContextFlags, NotifyEvent};

use crate::executions::Entry;
use crate::ffi::scan::{key_type_of, read_key};
use crate::host::with_lock_held;
use crate::readers::keys::KeysSource;
use crate::readers::ready::ReadySource;
use crate::registrations::{Mode, Registration};
use crate::state::{self, ModuleState};

/// The keyspace notification handler (main thread, Redis lock held).
pub fn on_keyspace_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(ctx, event, key)));
}

fn dispatch(ctx: &Context, event: &str, key: &[u8]) {
    let Some(state) = state::get() else { return };
    if state.registrations.is_empty() {
        return;
    }
    // Fires only on masters and never while loading (1.2).
    let flags = ctx.get_flags();
    if flags.intersects(ContextFlags::LOADING | ContextFlags::SLAVE) {
        return;
    }
    let mut key_type = None;
    for reg in state.registrations.all() {
        if reg.trigger.is_some() || !reg.matches_event(event) || !reg.matches_key(key) {
            continue;
        }
        if reg.key_types.is_some() {
            let t = *key_type.get_or_insert_with(|| key_type_of(ctx, key));
            if !reg.wants_type(t) {
                continue;
            }
        }
        reg.stats().triggered += 1;
        match reg.mode {
            Mode::Sync => run_sync(ctx, state, &reg, key, event),
            Mode::Async | Mode::AsyncLocal => {
                if reg.enqueue(key, event.as_bytes()) {
                    run_next(Arc::clone(&reg));
                }
            }
        }
    }
}

/// Runs a sync registration inline: the key is read under the lock we hold, and
/// `execute()` calls Redis directly on this context.
fn run_sync(ctx: &Context, state: &ModuleState, reg: &Arc<Registration>, key: &[u8], event: &str) {
    let started = Instant::now();
    let mut cols = KeyColumns::new(reg.read_value);
    read_key(ctx, key, &mut cols, reg.read_value);
    cols.push_event(event.as_bytes());
    let source = Box::new(ReadySource::new(Batch::new(BatchData::Keys(cols))));
    let entry = Entry::new_registered(state.registry.next_id(), &reg.plan);
    track(state, reg, &entry);
    let out = with_lock_held(ctx, || {
        engine::reference::run_reference(source, &reg.plan, Some(&PyRuntime))
    })
    .unwrap_or_else(|e| ExecutionOutput {
        errors: vec![e.to_string()],
        ..Default::default()
    });
    finish(state, reg, &entry, out, started);
}

/// Starts the registration's next queued event, if any; chains itself on completion.
pub fn run_next(reg: Arc<Registration>) {
    let Some(state) = state::get() else { return };
    let Some((key, event)) = reg.next_event() else {
        return;
    };
    let started = Instant::now();
    let entry = Entry::new_registered(state.registry.next_id(), &reg.plan);
    track(state, &reg, &entry);
    let source = Box::new(KeysSource::for_event(key, event, reg.read_value));
    let (done_reg, done_entry) = (Arc::clone(&reg), Arc::clone(&entry));
    let on_done = Box::new(move |out: ExecutionOutput| {
        if let Some(state) = state::get() {
            finish(state, &done_reg, &done_entry, out, started);
        }
        run_next(done_reg);
    });
    match Execution::start(
        source,
        &reg.plan,
        Some(&PyRuntime),
        None,
        &state.pool,
        &ExecConfig::default(),
        on_done,
    ) {
        Ok(h) => entry.started(h, None),
        Err(e) => {
            let out = ExecutionOutput {
                errors: vec![e.to_string()],
                ..Default::default()
            };
            finish(state, &reg, &entry, out, started);
            run_next(reg);
        }
    }
}

/// Keeps the execution (listed while it runs), capped per registration and globally.
fn track(state: &ModuleState, reg: &Registration, entry: &Arc<Entry>) {
    state
        .registry
        .keep(Arc::clone(entry), state.config.int("MaxExecutions"));
    let cap = state.config.int("MaxExecutionsPerRegistration");
    for old in reg.keep_execution(entry.id.clone(), cap) {
        state.registry.remove(&old);
    }
}

/// Records the run in the registration's stats and completes the execution.
fn finish(
    _state: &ModuleState,
    reg: &Registration,
    entry: &Arc<Entry>,
    out: ExecutionOutput,
    started: Instant,
) {
    reg.stats()
        .record(&out, started.elapsed().as_millis() as u64);
    entry.finish(out);
}
