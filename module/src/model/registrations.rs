//! Registrations (REFERENCE §2.1, §4.2, §8): KeysReader flows bound to keyspace events,
//! their matching rules, their bounded queue of pending events and statistics.
//!
//! A registration's events run one at a time, in trigger order (as 1.2's per-registration
//! worker does), drained by `run::events::drain`; the queue is bounded so a hot keyspace
//! cannot grow memory without limit (see `model::event_queue` for the overflow policy).
//! Depends on `model` (queue, drain state) and `redis`.

use engine::sync::{AtomicU64, Ordering};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use engine::batch::KeyType;
use engine::exec::ExecutionOutput;
use engine::plan::Plan;
use gearpy::{EventPlan, RegisterRequest};

use crate::model::drain_state::DrainState;
pub use crate::model::event_queue::MAX_PENDING_EVENTS;
use crate::model::event_queue::{EventQueue, Pushed};
use crate::redis::access::RunAs;

/// Execution mode of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Async,
    AsyncLocal,
}

impl Mode {
    pub fn parse(s: &str) -> Mode {
        match s {
            "sync" => Mode::Sync,
            "async_local" => Mode::AsyncLocal,
            _ => Mode::Async,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::AsyncLocal => "async_local",
        }
    }
}

/// A job of an `inorder` registration; it calls `next_serial` on the registration when done.
pub type SerialJob = Box<dyn FnOnce(Arc<Registration>) + Send>;

/// Queued serial jobs and whether one is running.
#[derive(Default)]
struct SerialLane(Mutex<(std::collections::VecDeque<SerialJob>, bool)>);

impl std::fmt::Debug for SerialLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SerialLane")
    }
}

/// Statistics shown by RG.DUMPREGISTRATIONS.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub triggered: u64,
    pub success: u64,
    pub failures: u64,
    pub aborted: u64,
    pub last_run_ms: u64,
    pub total_run_ms: u64,
    pub last_error: Option<String>,
    /// Events dropped because the pending queue was full (not executions: they count in
    /// no other field).
    pub dropped: u64,
    /// Run time below a millisecond not yet added to `total_run_ms` (batched events).
    pub run_us_carry: u64,
}

impl Stats {
    /// Counts a finished run as 1.2 does: failure if it has errors, aborted, else success.
    pub fn record(&mut self, out: &ExecutionOutput, ms: u64) {
        self.last_run_ms = ms;
        self.total_run_ms += ms;
        self.count_outcome(out);
    }

    /// Failure if the run has errors (it sets `lastError`), aborted, else success (it clears
    /// `lastError`).
    fn count_outcome(&mut self, out: &ExecutionOutput) {
        if out.aborted {
            self.aborted += 1;
        } else if let Some(e) = out.errors.first() {
            self.failures += 1;
            self.last_error = Some(e.clone());
        } else {
            self.success += 1;
            self.last_error = None;
        }
    }

    /// Counts a batch of event executions run back to back in `us` microseconds, each as
    /// [`Stats::record`] would (the last one decides `lastError`).
    pub fn record_batch(&mut self, outs: &[ExecutionOutput], us: u64) {
        let n = outs.len() as u64;
        if n == 0 {
            return;
        }
        let total = us + self.run_us_carry;
        self.total_run_ms += total / 1000;
        self.run_us_carry = total % 1000;
        self.last_run_ms = us / n / 1000;
        for out in outs {
            self.count_outcome(out);
        }
    }

    pub fn finished(&self) -> u64 {
        self.success + self.failures + self.aborted
    }
}

/// One registration.
#[derive(Debug)]
pub struct Registration {
    pub id: String,
    pub session: String,
    /// Who registered it: everything it runs runs as this ACL user (`crate::redis::access`).
    pub run_as: RunAs,
    /// Whether `run_as` may read every key, between ACL changes (keyspace events).
    pub read_cache: crate::redis::access_cache::ReadCache,
    pub desc: Option<String>,
    pub prefix: String,
    pub event_types: Option<Vec<String>>,
    pub key_types: Option<Vec<KeyType>>,
    pub read_value: bool,
    pub mode: Mode,
    pub plan: Plan,
    /// The plan as executions show it (shared by every execution it triggers).
    pub shape: Arc<crate::model::executions::PlanShape>,
    /// CommandReader registrations: the trigger name (keyspace events skip these).
    pub trigger: Option<String>,
    pub inorder: bool,
    /// CommandReader hook: the hooked command (lowercase), an optional key prefix and the
    /// command's key positions `(first, last, step)` from COMMAND INFO.
    pub hook: Option<String>,
    pub keyprefix: Option<String>,
    pub key_spec: std::sync::Mutex<(i64, i64, i64)>,
    /// KeysReader `commands=[…]`: only events raised by these commands trigger, each run
    /// linked to the command's client (`override_reply`).
    pub commands: Option<Vec<String>>,
    /// `inorder` CommandReader runs waiting their turn (one runs at a time).
    serial: SerialLane,
    /// Set when every step is record-local: events then run many per GIL hold
    /// (`run::events::drain`); otherwise each event is one engine execution. A sync
    /// trigger with one continues in the background when it awaits (`commands::trigger`).
    pub fast: Option<EventPlan>,
    /// Pending events (async modes), filled by the notification callback.
    pub(crate) queue: EventQueue,
    /// Sync events counted since `stats()` last folded them in (async ones are the
    /// queue's accepted pushes).
    triggered: AtomicU64,
    /// `queue.pushed()` as last folded into `stats` (changed under the stats lock).
    folded_pushed: AtomicU64,
    stats: Mutex<Stats>,
    /// Ids of this registration's kept executions, oldest first.
    kept: Mutex<VecDeque<String>>,
    /// The drain's state (deferral, events carried to its next batch).
    drain: Mutex<DrainState>,
    /// The event the drain runs now (listed and abortable while it runs).
    pub in_flight: crate::model::in_flight::InFlight,
    /// Execution numbers of the queued events (listed `created`, abortable).
    pub queued_ids: crate::model::queued_ids::QueuedIds,
}

fn key_type_named(name: &str) -> KeyType {
    match name {
        "string" => KeyType::String,
        "hash" => KeyType::Hash,
        "list" => KeyType::List,
        "set" => KeyType::Set,
        "zset" => KeyType::ZSet,
        "module" => KeyType::Module,
        "empty" => KeyType::Empty,
        _ => KeyType::Unknown,
    }
}

impl Registration {
    pub fn new(id: String, session: String, req: RegisterRequest, run_as: RunAs) -> Registration {
        let fast = EventPlan::from_plan(&req.plan);
        Registration {
            id,
            session,
            run_as,
            read_cache: Default::default(),
            desc: req.desc,
            prefix: req.prefix,
            event_types: req
                .event_types
                .map(|v| v.into_iter().map(|e| e.to_ascii_lowercase()).collect()),
            key_types: req
                .key_types
                .map(|v| v.iter().map(|t| key_type_named(t)).collect()),
            read_value: req.read_value,
            mode: Mode::parse(&req.mode),
            shape: crate::model::executions::PlanShape::of(&req.plan),
            plan: req.plan,
            trigger: req.trigger,
            inorder: req.inorder,
            hook: req.hook,
            keyprefix: req.keyprefix,
            commands: req.commands,
            serial: SerialLane::default(),
            key_spec: std::sync::Mutex::new((0, 0, 0)),
            fast,
            queue: EventQueue::new(MAX_PENDING_EVENTS),
            triggered: AtomicU64::new(0),
            folded_pushed: AtomicU64::new(0),
            stats: Mutex::new(Stats::default()),
            kept: Mutex::new(VecDeque::new()),
            drain: Mutex::new(DrainState::default()),
            in_flight: Default::default(),
            queued_ids: Default::default(),
        }
    }

    /// `prefix`: trailing `*` = byte-prefix match, otherwise an exact key (not a glob).
    pub fn matches_key(&self, key: &[u8]) -> bool {
        prefix_matches(&self.prefix, key)
    }

    /// `eventTypes`: case-insensitive match on the notification name.
    pub fn matches_event(&self, event: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|ts| ts.iter().any(|t| t.eq_ignore_ascii_case(event)))
    }

    pub fn wants_type(&self, t: KeyType) -> bool {
        self.key_types.as_ref().is_none_or(|ts| ts.contains(&t))
    }

    /// Runs `job` after every earlier serial job of this registration (`inorder`): jobs run
    /// one at a time, in submission order; `done` (given to the job) starts the next.
    pub fn run_serial(self: &Arc<Self>, job: SerialJob) {
        let start = {
            let mut q = self.serial.0.lock().unwrap_or_else(|e| e.into_inner());
            q.0.push_back(job);
            !std::mem::replace(&mut q.1, true)
        };
        if start {
            Arc::clone(self).next_serial();
        }
    }

    /// Starts the next serial job, or marks the lane idle.
    pub fn next_serial(self: Arc<Self>) {
        let job = {
            let mut q = self.serial.0.lock().unwrap_or_else(|e| e.into_inner());
            let job = q.0.pop_front();
            if job.is_none() {
                q.1 = false;
            }
            job
        };
        if let Some(job) = job {
            job(self);
        }
    }

    /// The reader name shown by dumps.
    pub fn reader(&self) -> &'static str {
        if self.trigger.is_some() || self.hook.is_some() {
            "CommandReader"
        } else {
            "KeysReader"
        }
    }

    /// The statistics, with events counted by the notification callback folded in (and
    /// deferred executions settled, `deferred`).
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        super::deferred::settle();
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let pushed = self.queue.pushed();
        let folded = self.folded_pushed.swap(pushed, Ordering::Relaxed);
        s.triggered += pushed - folded + self.triggered.swap(0, Ordering::Relaxed);
        s.dropped += self.queue.take_dropped();
        s
    }

    /// Counts one triggered execution without taking the stats lock.
    pub fn count_triggered(&self) {
        self.triggered.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues an event (notification callback: Redis lock held, never blocks). Counted as
    /// triggered if accepted, and given its execution number (`number()`); a full queue
    /// drops it and counts it in `dropped`.
    pub fn enqueue(&self, key: &[u8], event: &[u8], number: impl FnOnce() -> u64) -> Pushed {
        let mut ids = self.queued_ids.pushing();
        let pushed = self.queue.push(key, event);
        if let Pushed::Accepted { .. } = pushed {
            ids.queued(self.queue.pushed() - 1, number());
        }
        pushed
    }

    /// Events waiting to run.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn drain_state(&self) -> MutexGuard<'_, DrainState> {
        self.drain.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn kept_ids(&self) -> MutexGuard<'_, VecDeque<String>> {
        super::deferred::settle();
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a kept execution id; returns ids to drop beyond `max` (≤ 0: unlimited),
    /// its queued events counted (`trim_kept`).
    pub fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        let queued = self.queued_ids.count();
        let mut kept = self.kept_ids();
        kept.push_back(id);
        trim_kept(&mut kept, max, queued)
    }

    /// Drops the kept executions its queued events push out of its list (`trim_kept`);
    /// returns their ids.
    pub fn trim_queued(&self, max: i64) -> Vec<String> {
        match self.queued_ids.count() {
            0 => Vec::new(),
            queued => trim_kept(&mut self.kept_ids(), max, queued),
        }
    }

    /// Ids of kept executions (dropped on unregister).
    pub fn kept_executions(&self) -> Vec<String> {
        self.kept_ids().iter().cloned().collect()
    }

    /// Discards queued (not yet started) events; returns how many. A client waiting for
    /// one gets an aborted execution's reply (`[[],[]]`).
    pub fn clear_pending(&self) -> usize {
        let n = self.queue.discard_pending();
        let none = crate::model::reply::execution_reply(&Default::default());
        for client in self.queued_ids.clear() {
            crate::redis::ffi::replies::reply_blocked(client, &none);
        }
        n
    }
}

/// A registration's `prefix` (`name` or `name*`) matches `key` (KeysReader and
/// StreamReader registrations alike).
pub fn prefix_matches(prefix: &str, key: &[u8]) -> bool {
    match prefix.strip_suffix('*') {
        Some(p) => key.starts_with(p.as_bytes()),
        None => key == prefix.as_bytes(),
    }
}

/// Adds `id` to a registration's kept execution ids, dropping the oldest beyond `max`
/// (≤ 0: unlimited); returns the dropped ids.
pub fn keep_capped(
    kept: &mut std::collections::VecDeque<String>,
    id: String,
    max: i64,
) -> Vec<String> {
    kept.push_back(id);
    trim_kept(kept, max, 0)
}

/// The one trim rule of a registration's executions, KeysReader and StreamReader alike
/// (`MaxExecutionsPerRegistration`, REFERENCE §8): it lists at most `max` (≤ 0:
/// unlimited), `created` ones included, oldest dropped first. `kept` holds the ids of
/// those with an entry (a StreamReader's queued batches among them); `queued` counts
/// the newer ones without (a KeysReader's queued events). Returns the ids dropped from
/// `kept` (their entries leave the registry; one still running finishes unlisted).
pub fn trim_kept(
    kept: &mut std::collections::VecDeque<String>,
    max: i64,
    queued: usize,
) -> Vec<String> {
    let mut dropped = Vec::new();
    while max > 0 && !kept.is_empty() && kept.len() + queued > max as usize {
        dropped.extend(kept.pop_front());
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(prefix: &str, events: Option<Vec<&str>>) -> Registration {
        let req = RegisterRequest {
            reader: "KeysReader".into(),
            prefix: prefix.into(),
            event_types: events.map(|v| v.into_iter().map(String::from).collect()),
            key_types: None,
            read_value: true,
            mode: "async".into(),
            desc: None,
            plan: Plan::default(),
            on_registered: None,
            trigger: None,
            inorder: false,
            stream: None,
            globals: None,
            id: None,
            wire: None,
            hook: None,
            keyprefix: None,
            commands: None,
        };
        Registration::new("r-1".into(), "s".into(), req, RunAs::user("default"))
    }

    #[test]
    fn prefix_is_prefix_or_exact_never_glob() {
        let r = reg("person:*", None);
        assert!(r.matches_key(b"person:1"));
        assert!(!r.matches_key(b"persons"));
        let exact = reg("person", None);
        assert!(exact.matches_key(b"person"));
        assert!(!exact.matches_key(b"person:1"));
        let glob_looking = reg("p?rson", None);
        assert!(!glob_looking.matches_key(b"person"));
        assert!(reg("*", None).matches_key(b"anything"));
    }

    #[test]
    fn event_types_are_case_insensitive() {
        let r = reg("*", Some(vec!["HSET", "del"]));
        assert!(r.matches_event("hset"));
        assert!(r.matches_event("del"));
        assert!(!r.matches_event("set"));
    }

    #[test]
    fn enqueue_counts_triggered_and_clear_discards() {
        let r = reg("*", None);
        assert_eq!(
            r.enqueue(b"a", b"set", || 7),
            Pushed::Accepted { schedule: true }
        );
        assert_eq!(
            r.enqueue(b"b", b"set", || 8),
            Pushed::Accepted { schedule: false }
        );
        assert_eq!(r.queued_ids.numbers(usize::MAX), vec![7, 8]);
        assert_eq!(r.stats().triggered, 2);
        assert_eq!(r.pending(), 2);
        assert_eq!(r.clear_pending(), 2);
        assert!(r.queued_ids.numbers(usize::MAX).is_empty());
        let mut c = r.queue.consumer();
        assert!(c.pop().is_none(), "cleared events never run");
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn record_batch_counts_each_event() {
        let ok = ExecutionOutput::default();
        let bad = ExecutionOutput {
            errors: vec!["boom".into()],
            ..Default::default()
        };
        let mut s = Stats::default();
        s.record_batch(&[ok.clone(), bad.clone(), ok.clone()], 2500);
        assert_eq!((s.success, s.failures, s.last_error.clone()), (2, 1, None));
        assert_eq!((s.total_run_ms, s.run_us_carry), (2, 500));
        s.record_batch(&[ok, bad], 600);
        assert_eq!(s.last_error.as_deref(), Some("boom"));
        assert_eq!((s.total_run_ms, s.run_us_carry), (3, 100));
    }

    #[test]
    fn kept_executions_are_capped() {
        let r = reg("*", None);
        assert!(r.keep_execution("1".into(), 2).is_empty());
        assert!(r.keep_execution("2".into(), 2).is_empty());
        assert_eq!(r.keep_execution("3".into(), 2), vec!["1".to_string()]);
    }

    #[test]
    fn queued_events_count_in_the_cap() {
        let r = reg("*", None);
        assert!(r.keep_execution("1".into(), 3).is_empty());
        assert!(r.keep_execution("2".into(), 3).is_empty());
        r.enqueue(b"k", b"set", || 3);
        r.enqueue(b"k", b"set", || 4);
        assert_eq!(r.trim_queued(3), vec!["1".to_string()]);
        assert!(r.trim_queued(0).is_empty(), "unlimited");
        r.enqueue(b"k", b"set", || 5);
        assert_eq!(r.trim_queued(3), vec!["2".to_string()]);
        assert!(r.kept_executions().is_empty());
    }
}
