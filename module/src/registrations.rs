//! Registrations (REFERENCE §2.1, §4.2, §8): KeysReader flows bound to keyspace events,
//! their matching rules, per-registration serial execution queue and statistics.
//!
//! A registration's executions run one at a time, in trigger order (as 1.2's per-registration
//! worker does); the queue is bounded so a hot keyspace cannot grow memory without limit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use engine::batch::KeyType;
use engine::exec::ExecutionOutput;
use engine::plan::Plan;
use gearpy::RegisterRequest;

/// Events waiting per registration before new ones are dropped (and counted).
pub const MAX_PENDING_EVENTS: usize = 1_000_000;

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
    /// Events dropped because the pending queue was full.
    pub dropped: u64,
}

impl Stats {
    /// Counts a finished run as 1.2 does: failure if it has errors, aborted, else success.
    pub fn record(&mut self, out: &ExecutionOutput, ms: u64) {
        self.last_run_ms = ms;
        self.total_run_ms += ms;
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

    pub fn finished(&self) -> u64 {
        self.success + self.failures + self.aborted
    }
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<(Vec<u8>, Vec<u8>)>,
    running: bool,
    /// Ids of this registration's kept executions, oldest first.
    kept: VecDeque<String>,
}

/// One registration.
#[derive(Debug)]
pub struct Registration {
    pub id: String,
    pub session: String,
    pub desc: Option<String>,
    pub prefix: String,
    pub event_types: Option<Vec<String>>,
    pub key_types: Option<Vec<KeyType>>,
    pub read_value: bool,
    pub mode: Mode,
    pub plan: Plan,
    /// CommandReader registrations: the trigger name (keyspace events skip these).
    pub trigger: Option<String>,
    pub inorder: bool,
    stats: Mutex<Stats>,
    queue: Mutex<Queue>,
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
    pub fn new(id: String, session: String, req: RegisterRequest) -> Registration {
        Registration {
            id,
            session,
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
            plan: req.plan,
            trigger: req.trigger,
            inorder: req.inorder,
            stats: Mutex::new(Stats::default()),
            queue: Mutex::new(Queue::default()),
        }
    }

    /// `prefix`: trailing `*` = byte-prefix match, otherwise an exact key (not a glob).
    pub fn matches_key(&self, key: &[u8]) -> bool {
        match self.prefix.strip_suffix('*') {
            Some(p) => key.starts_with(p.as_bytes()),
            None => key == self.prefix.as_bytes(),
        }
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

    /// The reader name shown by dumps.
    pub fn reader(&self) -> &'static str {
        if self.trigger.is_some() {
            "CommandReader"
        } else {
            "KeysReader"
        }
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event; true if the caller must start the run loop (it was idle).
    pub fn enqueue(&self, key: &[u8], event: &[u8]) -> bool {
        let mut q = self.queue();
        if q.pending.len() >= MAX_PENDING_EVENTS {
            drop(q);
            self.stats().dropped += 1;
            return false;
        }
        q.pending.push_back((key.to_vec(), event.to_vec()));
        let start = !q.running;
        q.running = true;
        start
    }

    /// The next queued event, or marks the loop idle when there is none.
    pub fn next_event(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut q = self.queue();
        let next = q.pending.pop_front();
        if next.is_none() {
            q.running = false;
        }
        next
    }

    /// Remembers a kept execution id; returns ids to drop beyond `max` (≤ 0: unlimited).
    pub fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        let mut q = self.queue();
        q.kept.push_back(id);
        let mut dropped = Vec::new();
        while max > 0 && q.kept.len() > max as usize {
            dropped.extend(q.kept.pop_front());
        }
        dropped
    }

    /// Ids of kept executions (dropped on unregister).
    pub fn kept_executions(&self) -> Vec<String> {
        self.queue().kept.iter().cloned().collect()
    }

    /// Clears queued (not yet started) events; returns how many.
    pub fn clear_pending(&self) -> usize {
        let mut q = self.queue();
        let n = q.pending.len();
        q.pending.clear();
        n
    }
}

/// All registrations of this shard, in registration order.
#[derive(Debug)]
pub struct Registrations {
    next_id: AtomicU64,
    list: Mutex<Vec<Arc<Registration>>>,
}

impl Default for Registrations {
    fn default() -> Self {
        // 1.2's first registration on a fresh server is `…-1`.
        Registrations {
            next_id: AtomicU64::new(1),
            list: Mutex::new(Vec::new()),
        }
    }
}

impl Registrations {
    pub fn next_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", crate::executions::STANDALONE_SHARD_ID)
    }

    /// Makes sure later ids are larger than a loaded `<shard>-<n>` id.
    pub fn bump_past(&self, id: &str) {
        if let Some(n) = id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()) {
            self.next_id.fetch_max(n + 1, Ordering::Relaxed);
        }
    }

    fn list(&self) -> MutexGuard<'_, Vec<Arc<Registration>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, r: Arc<Registration>) {
        self.list().push(r);
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Registration>> {
        let mut l = self.list();
        let pos = l.iter().position(|r| r.id == id)?;
        Some(l.remove(pos))
    }

    /// The registration of a CommandReader trigger.
    pub fn by_trigger(&self, trigger: &str) -> Option<Arc<Registration>> {
        self.list()
            .iter()
            .find(|r| r.trigger.as_deref() == Some(trigger))
            .cloned()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Registration>> {
        self.list().iter().find(|r| r.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Registration>> {
        self.list().clone()
    }

    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    pub fn len(&self) -> usize {
        self.list().len()
    }
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
        };
        Registration::new("r-1".into(), "s".into(), req)
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
    fn queue_starts_once_and_goes_idle() {
        let r = reg("*", None);
        assert!(r.enqueue(b"a", b"set"));
        assert!(!r.enqueue(b"b", b"set"), "already running");
        assert_eq!(r.next_event().unwrap().0, b"a");
        assert_eq!(r.next_event().unwrap().0, b"b");
        assert!(r.next_event().is_none());
        assert!(r.enqueue(b"c", b"set"), "idle again: restart");
    }

    #[test]
    fn kept_executions_are_capped() {
        let r = reg("*", None);
        assert!(r.keep_execution("1".into(), 2).is_empty());
        assert!(r.keep_execution("2".into(), 2).is_empty());
        assert_eq!(r.keep_execution("3".into(), 2), vec!["1".to_string()]);
    }
}
