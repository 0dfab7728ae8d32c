//! `ModuleState`, the owner of module-wide state: configuration, the worker pools, kept
//! executions, registrations, sessions, stream registrations and requirements. Built and
//! installed once at load (`app::load`); never `static mut`.

use std::sync::{Arc, OnceLock};

use engine::exec::WorkerPool;

use crate::model::executions::Registry;
use crate::model::executions::{Entry, Status};
use crate::model::registration_table::Registrations;
use crate::model::registrations::Registration;
use crate::model::requirements::Requirements;
use crate::model::sessions::Sessions;
use crate::model::streams::{StreamRegistration, StreamRegistrations};
use crate::redis::config::Config;

/// Module-wide state.
#[derive(Debug)]
pub struct ModuleState {
    pub config: Arc<Config>,
    /// Runs execution stages (`ExecutionThreads` threads).
    pub pool: WorkerPool,
    /// Runs RG.PYEXECUTE scripts (`SCRIPT_THREADS` threads, growing to
    /// `MAX_SCRIPT_THREADS`), so a script never waits for an execution thread.
    pub scripts: WorkerPool,
    /// Kept executions and the id counter.
    pub registry: Registry,
    /// register() flows of this shard.
    pub registrations: Registrations,
    /// Sessions that own registrations.
    pub sessions: Sessions,
    /// StreamReader registrations.
    pub streams: StreamRegistrations,
    /// Packages installed with REQUIREMENTS.
    pub requirements: Requirements,
}

/// Threads running RG.PYEXECUTE scripts (they hold the GIL most of the time; more than
/// one lets a script waiting on other shards or pip not hold up the next).
pub const SCRIPT_THREADS: usize = 2;

/// The script pool grows to this many threads while every one is busy, so a script that
/// runs long (or forever, until its client goes: `app::scripts`) does not hold up the
/// next ones; past it scripts wait.
pub const MAX_SCRIPT_THREADS: usize = 64;

static STATE: OnceLock<ModuleState> = OnceLock::new();

/// Installs the state (once, at load).
pub fn install(state: ModuleState) -> Result<(), String> {
    STATE
        .set(state)
        .map_err(|_| "Gearshift is already loaded".to_owned())
}

/// The state; `None` only before a successful load.
pub fn get() -> Option<&'static ModuleState> {
    STATE.get()
}

/// How long a shard waits for the others: `ExecutionMaxIdleTime`.
pub fn wait_bound() -> std::time::Duration {
    let ms = get().map_or(5000, |s| s.config.int("ExecutionMaxIdleTime"));
    std::time::Duration::from_millis(ms.max(1) as u64)
}

/// A registration that keeps the ids of its executions (KeysReader or StreamReader).
pub trait KeepsExecutions {
    /// Adds `id`, dropping the oldest beyond `max`; returns the dropped ids.
    fn keep_execution(&self, id: String, max: i64) -> Vec<String>;
}

impl KeepsExecutions for Registration {
    fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        Registration::keep_execution(self, id, max)
    }
}

impl KeepsExecutions for crate::model::streams::StreamRegistration {
    fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        crate::model::streams::StreamRegistration::keep_execution(self, id, max)
    }
}

impl ModuleState {
    /// Keeps an execution for RG.DUMPEXECUTIONS / RG.GETRESULTS, capped by `MaxExecutions`.
    pub fn keep(&self, entry: &Arc<Entry>) {
        self.registry
            .keep(Arc::clone(entry), self.config.int("MaxExecutions"));
    }

    /// `RG.UNREGISTER <id> [abortpending]` (and its replicated form): removes registration
    /// `id`; false if there is none. Its queued events still run, in trigger order, on its
    /// drain, which holds the registration until the queue is empty (1.2 runs the pending
    /// executions of an unregistered registration); with `abort_pending` they are discarded
    /// instead (counted as aborted) and never start. An event already running finishes.
    /// Done executions of the registration are dropped; those finishing later stay listed.
    pub fn unregister(&self, id: &str, abort_pending: bool) -> bool {
        let state = self;
        if let Some(r) = state.streams.remove(id) {
            state.sessions.forget_registration(&r.session, &r.id);
            self.abort_stream_pending(&r);
            self.drop_done(&r.kept_executions());
            return true;
        }
        let Some(reg) = state.registrations.remove(id) else {
            return false;
        };
        state.sessions.forget_registration(&reg.session, &reg.id);
        if abort_pending {
            let n = reg.clear_pending();
            reg.stats().aborted += n as u64;
        }
        self.drop_done(&reg.kept_executions());
        true
    }

    /// Drops the finished executions among `ids`.
    fn drop_done(&self, ids: &[String]) {
        for id in ids {
            let done = self
                .registry
                .get(id)
                .is_some_and(|e| !matches!(e.status(), Status::Running | Status::Created));
            if done {
                self.registry.remove(id);
            }
        }
    }

    /// Aborts a StreamReader registration's batches not started yet (pause, unregister, a
    /// failure under `abort`/`retry`): each counts in `numAborted` and is no longer listed.
    pub fn abort_stream_pending(&self, reg: &StreamRegistration) {
        let jobs = reg.take_pending();
        if jobs.is_empty() {
            return;
        }
        reg.stats().aborted += jobs.len() as u64;
        for job in jobs {
            job.entry.finish(engine::exec::ExecutionOutput {
                aborted: true,
                ..Default::default()
            });
            self.registry.remove(&job.entry.id);
        }
    }

    /// Drops the kept executions of KeysReader registrations that their queued (`created`)
    /// events push beyond `MaxExecutionsPerRegistration` (`registrations::trim_kept`).
    /// Queuing an event (the notification callback) does not trim: whatever looks at
    /// executions calls this first, so none sees the difference.
    pub fn trim_queued(&self) {
        let cap = self.config.int("MaxExecutionsPerRegistration");
        if cap <= 0 {
            return;
        }
        for reg in self.registrations.all() {
            for old in reg.trim_queued(cap) {
                self.registry.unlist(&old);
            }
        }
    }

    /// Keeps a registration's execution (listed while it runs), capped per registration
    /// (`MaxExecutionsPerRegistration`) and in all (`MaxExecutions`).
    pub fn keep_registered<R: KeepsExecutions + ?Sized>(&self, reg: &R, entry: &Arc<Entry>) {
        self.keep(entry);
        let cap = self.config.int("MaxExecutionsPerRegistration");
        for old in reg.keep_execution(entry.id.clone(), cap) {
            self.registry.unlist(&old);
        }
    }
}
