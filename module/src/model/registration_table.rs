//! `Registrations`: all KeysReader (and CommandReader) registrations of this shard, in
//! registration order, with the registration ids and the lock-free counts the keyspace
//! callback and the command filter check first. Depends on `model::registrations`.

use engine::sync::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::model::registrations::Registration;

/// All registrations of this shard, in registration order.
#[derive(Debug)]
pub struct Registrations {
    next_id: AtomicU64,
    list: Mutex<Vec<Arc<Registration>>>,
    /// `list.len()`, readable without the lock (the notification callback's first check).
    count: AtomicUsize,
    /// How many registrations rewrite commands (`hook=` or `commands=`), readable without
    /// the lock: the command filter checks it for every command Redis runs.
    rewriting: AtomicUsize,
}

impl Default for Registrations {
    fn default() -> Self {
        // 1.2's first registration on a fresh server is `…-1`.
        Registrations {
            next_id: AtomicU64::new(1),
            list: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            rewriting: AtomicUsize::new(0),
        }
    }
}

impl Registrations {
    pub fn next_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        crate::model::topology::numbered_id(n)
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
        let mut l = self.list();
        l.push(r);
        self.recount(&l);
    }

    /// Refreshes the lock-free counts after the list changed (list lock held).
    fn recount(&self, l: &[Arc<Registration>]) {
        self.count.store(l.len(), Ordering::Release);
        let rewriting = l
            .iter()
            .filter(|r| r.hook.is_some() || r.commands.is_some())
            .count();
        self.rewriting.store(rewriting, Ordering::Release);
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Registration>> {
        let mut l = self.list();
        let pos = l.iter().position(|r| r.id == id)?;
        let r = l.remove(pos);
        self.recount(&l);
        Some(r)
    }

    /// Runs `f` over every registration without copying the list (the list lock is held:
    /// `f` must not call back into `Registrations`).
    pub fn with_all<R>(&self, f: impl FnOnce(&[Arc<Registration>]) -> R) -> R {
        f(&self.list())
    }

    /// Hooks of `command` (lowercase), newest first (the first one runs first).
    pub fn hooks_of(&self, command: &str) -> Vec<Arc<Registration>> {
        self.list()
            .iter()
            .rev()
            .filter(|r| r.hook.as_deref() == Some(command))
            .cloned()
            .collect()
    }

    /// True when a registration listens to events of `command` only (KeysReader
    /// `commands=`): the command is then run linked to its executions.
    pub fn commanded(&self, command: &str) -> bool {
        self.list().iter().any(|r| {
            r.commands
                .as_ref()
                .is_some_and(|c| c.iter().any(|x| x == command))
        })
    }

    /// True when any registration rewrites commands (the command filter's lock-free check).
    pub fn any_hooks(&self) -> bool {
        self.rewriting.load(Ordering::Acquire) > 0
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
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}
