//! The execution registry (REFERENCE §8): ids `<shard id>-<n>`, statuses, kept results,
//! FIFO eviction at `MaxExecutions`, and clients waiting for a result.
//!
//! Blocking RG.PYEXECUTE runs are not kept (1.2 drops them after replying); UNBLOCKING runs
//! stay until dropped or evicted.

use engine::sync::{AtomicU64, Ordering};

pub use super::progress::StepCount;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use engine::exec::{Execution, ExecutionOutput, WorkerPool};
use engine::plan::Plan;

use crate::model::reply::execution_reply;
use crate::redis::ffi::replies::{reply_blocked, Blocked};

/// The shard id of a standalone server: 40 zeros.
pub use crate::model::topology::STANDALONE_SHARD_ID;

/// Execution statuses as 1.2 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Done,
    Aborted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Done => "done",
            Status::Aborted => "aborted",
        }
    }
}

/// A step as RG.GETEXECUTION lists it.
#[derive(Debug, Clone)]
pub struct StepInfo {
    pub kind: String,
    pub name: String,
    pub arg: String,
}

#[derive(Debug)]
struct EntryState {
    status: Status,
    output: Option<ExecutionOutput>,
    waiters: Vec<Blocked>,
    handle: Option<Execution>,
    /// Interrupts the execution's running Python code on abort.
    control: Option<Arc<gearpy::ExecControl>>,
    total_ms: u64,
    /// RG.ABORTEXECUTION asked to stop it (a running one then ends `done`, one error).
    abort_requested: bool,
    /// Stops a run that has no engine execution (an event's rest waiting on an await).
    on_abort: Option<OnAbort>,
}

/// What aborts a run without an engine execution (`Entry::on_abort`).
pub struct OnAbort(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for OnAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnAbort")
    }
}

/// The error of an execution aborted while it ran (1.2: `done` with this one error).
pub const ABORTED_WHILE_RUNNING: &str = "gears.forcestopped: Execution was aborted";

/// What RG.GETEXECUTION shows of a plan: computed once per registration and shared by
/// every execution it triggers (not rebuilt per event).
#[derive(Debug)]
pub struct PlanShape {
    pub steps: Vec<StepInfo>,
    /// Steps per pipeline stage, in order (to map stage timings onto steps).
    group_sizes: Vec<usize>,
}

impl PlanShape {
    pub fn of(plan: &Plan) -> Arc<PlanShape> {
        let steps = plan
            .steps
            .iter()
            .map(|s| match s {
                engine::plan::StepSpec::Udf(h) => StepInfo {
                    kind: h.kind.to_owned(),
                    name: h.name.clone(),
                    arg: h.arg.clone(),
                },
                other => StepInfo {
                    kind: other.kind().to_owned(),
                    name: other.kind().to_owned(),
                    arg: String::new(),
                },
            })
            .collect();
        let group_sizes = plan.stage_groups().iter().map(|g| g.len()).collect();
        Arc::new(PlanShape { steps, group_sizes })
    }
}

/// One kept execution.
#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub registered: bool,
    shape: Arc<PlanShape>,
    started: Instant,
    state: Mutex<EntryState>,
    /// Other shards whose part of this (distributed) run reported back to the initiator.
    pub shards_received: AtomicU64,
    /// Shards whose part of this run finished, the initiator's own included.
    pub shards_completed: AtomicU64,
}

impl Entry {
    pub fn new(id: String, plan: &Plan) -> Arc<Entry> {
        Self::build(id, PlanShape::of(plan), false)
    }

    /// An execution triggered by a registration (`registered` = 1 in dumps).
    pub fn new_registered(id: String, shape: &Arc<PlanShape>) -> Arc<Entry> {
        Self::build(id, Arc::clone(shape), true)
    }

    /// The plan's steps, as RG.GETEXECUTION lists them.
    pub fn steps(&self) -> &[StepInfo] {
        &self.shape.steps
    }

    fn build(id: String, shape: Arc<PlanShape>, registered: bool) -> Arc<Entry> {
        Arc::new(Entry {
            id,
            registered,
            shape,
            started: Instant::now(),
            shards_received: AtomicU64::new(0),
            shards_completed: AtomicU64::new(0),
            state: Mutex::new(EntryState {
                status: Status::Created,
                output: None,
                waiters: Vec::new(),
                handle: None,
                control: None,
                total_ms: 0,
                abort_requested: false,
                on_abort: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EntryState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its status; a started execution no worker has picked up yet is `created`.
    pub fn status(&self) -> Status {
        let s = self.lock();
        match (&s.status, &s.handle) {
            (Status::Running, Some(h)) if !h.has_started() => Status::Created,
            _ => s.status,
        }
    }

    /// Marks the execution running (one without an engine execution to keep).
    pub fn running(&self) {
        let mut s = self.lock();
        if s.status == Status::Created {
            s.status = Status::Running;
        }
    }

    /// Marks the execution started and keeps its handle (for abort).
    pub fn started(&self, handle: Execution, control: Option<Arc<gearpy::ExecControl>>) {
        let mut s = self.lock();
        if s.status == Status::Created {
            s.status = Status::Running;
        }
        s.handle = Some(handle);
        s.control = control;
    }

    /// The output as 1.2 reports it: an execution RG.ABORTEXECUTION stopped while it ran
    /// is not `aborted` but done with exactly one error. Call before replying with `out`.
    pub fn settle(&self, mut out: ExecutionOutput) -> ExecutionOutput {
        let ran = {
            let s = self.lock();
            s.abort_requested && s.handle.as_ref().is_some_and(|h| h.has_started())
        };
        if out.aborted && ran {
            out.aborted = false;
            out.errors.truncate(1);
            if out.errors.is_empty() {
                out.errors.push(ABORTED_WHILE_RUNNING.to_owned());
            }
        }
        out
    }

    /// Has RG.ABORTEXECUTION call `stop` (once, outside the entry's lock) for a run
    /// without an engine execution: `stop` ends it as 1.2 ends a running one.
    pub fn on_abort(&self, stop: impl FnOnce() + Send + 'static) {
        self.lock().on_abort = Some(OnAbort(Box::new(stop)));
    }

    /// Records the output (settled) and answers every waiting client.
    pub fn finish(&self, out: ExecutionOutput) {
        let out = self.settle(out);
        let waiters = {
            let mut s = self.lock();
            s.status = if out.aborted {
                Status::Aborted
            } else {
                Status::Done
            };
            s.total_ms = self.started.elapsed().as_millis() as u64;
            s.output = Some(out);
            // The handle is kept: it holds the stage timings RG.GETEXECUTION reports.
            std::mem::take(&mut s.waiters)
        };
        if waiters.is_empty() {
            return;
        }
        let reply = self
            .result_reply()
            .unwrap_or_else(|| execution_reply(&ExecutionOutput::default()));
        for w in waiters {
            reply_blocked(w, &reply);
        }
    }

    /// `[[results],[errors]]` once finished.
    pub fn result_reply(&self) -> Option<crate::redis::ffi::replies::Reply> {
        self.lock().output.as_ref().map(execution_reply)
    }

    /// Replies now if finished, else parks `client` until it is.
    pub fn reply_when_done(&self, client: Blocked) {
        let mut s = self.lock();
        match &s.output {
            Some(out) => {
                let r = execution_reply(out);
                drop(s);
                reply_blocked(client, &r);
            }
            None => s.waiters.push(client),
        }
    }

    /// Stops the execution; true if there was one to stop. One no worker picked up yet
    /// is `aborted` at once and never runs (its completion runs on `completer`); running
    /// Python code gets `gears.forcestopped` raised in it (the GIL is taken: the Redis
    /// lock may be held).
    pub fn abort(&self, completer: &WorkerPool) -> bool {
        let (handle, control, hook) = {
            let mut s = self.lock();
            if !matches!(s.status, Status::Running | Status::Created) {
                return false;
            }
            s.abort_requested = true;
            (s.handle.clone(), s.control.clone(), s.on_abort.take())
        };
        if let Some(OnAbort(stop)) = hook {
            stop();
            return true;
        }
        let started = handle.is_none_or(|h| h.abort_on(completer));
        if started {
            if let Some(c) = control {
                c.interrupt();
            }
        } else {
            // Listed `aborted` from now on; the completion only confirms it.
            let mut s = self.lock();
            s.status = Status::Aborted;
            s.output.get_or_insert_with(|| ExecutionOutput {
                aborted: true,
                ..Default::default()
            });
        }
        true
    }

    /// (read ms, per-step ms in plan order). A fused stage's time is reported on its last
    /// step (its steps run interleaved, record by record).
    pub fn durations(&self) -> (u64, Vec<u64>) {
        let nanos = self
            .lock()
            .handle
            .as_ref()
            .map(|h| h.stage_nanos())
            .unwrap_or_default();
        let ms = |i: usize| nanos.get(i).copied().unwrap_or(0) / 1_000_000;
        let mut steps = Vec::with_capacity(self.shape.steps.len());
        for (g, size) in self.shape.group_sizes.iter().enumerate() {
            steps.extend(std::iter::repeat_n(0, size.saturating_sub(1)));
            steps.push(ms(g + 1));
        }
        (ms(0), steps)
    }

    /// (records read, per-step records in and out in plan order): progress so far
    /// (`progress::per_step` maps the stages' counts onto the steps).
    pub fn progress(&self) -> (u64, Vec<StepCount>) {
        let counts = self
            .lock()
            .handle
            .as_ref()
            .map(|h| h.stage_counts())
            .unwrap_or_default();
        let kinds: Vec<&str> = self.shape.steps.iter().map(|s| s.kind.as_str()).collect();
        super::progress::per_step(&counts, &self.shape.group_sizes, &kinds)
    }

    /// (results count or -1 while running, errors, total ms).
    pub fn summary(&self) -> (i64, Vec<String>, u64) {
        let s = self.lock();
        match &s.output {
            Some(o) => (o.results.len() as i64, o.errors.clone(), s.total_ms),
            None => (-1, Vec::new(), self.started.elapsed().as_millis() as u64),
        }
    }
}

/// Kept executions: insertion order plus an index by id. Removal only drops the index
/// entry; the order list is pruned lazily, so keeping, looking up and removing are O(1)
/// (amortised) even with thousands of kept executions. The order list holds weak
/// references: a removed execution's results are freed at once, not at the next pruning.
#[derive(Debug, Default)]
struct Kept {
    order: VecDeque<Weak<Entry>>,
    by_id: ahash::AHashMap<String, Arc<Entry>>,
    /// Entries dropped from the list by a cap while they still ran: RG.GETRESULTSBLOCKING
    /// reaches them until they end (1.2 answers a client that waits on a running
    /// execution). Weak: an ended one is freed as any dropped one.
    unlisted: Vec<Weak<Entry>>,
}

impl Kept {
    /// `e` was dropped from the list by a cap: remembered while it runs.
    fn unlist(&mut self, e: Arc<Entry>) {
        if matches!(e.status(), Status::Running | Status::Created) {
            self.unlisted.retain(|w| w.strong_count() > 0);
            self.unlisted.push(Arc::downgrade(&e));
        }
    }

    /// The entry behind `w` if it is still kept (not removed, not replaced under its id).
    fn live(&self, w: &Weak<Entry>) -> Option<Arc<Entry>> {
        let e = w.upgrade()?;
        self.by_id
            .get(&e.id)
            .is_some_and(|x| Arc::ptr_eq(x, &e))
            .then_some(e)
    }

    /// Drops stale (removed) entries from the order list once they dominate it.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.by_id.len() + 64 {
            let order = std::mem::take(&mut self.order);
            self.order = order
                .into_iter()
                .filter(|w| self.live(w).is_some())
                .collect();
        }
    }
}

/// All kept executions, oldest first. Every use but taking an id settles deferred
/// executions first (`deferred`): they are kept as if they had been one by one.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    kept: Mutex<Kept>,
}

impl Registry {
    /// The next execution id (every execution consumes one, kept or not).
    pub fn next_id(&self) -> String {
        crate::model::topology::numbered_id(self.next_number())
    }

    /// The next execution number (`next_id` without formatting it).
    pub fn next_number(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `e`, evicting the oldest entries beyond `max` (≤ 0: unlimited).
    pub fn keep(&self, e: Arc<Entry>, max: i64) {
        super::deferred::settle();
        let mut k = self.kept();
        if max > 0 {
            while k.by_id.len() >= max as usize {
                let Some(old) = k.order.pop_front() else {
                    break;
                };
                if let Some(old) = k.live(&old) {
                    k.by_id.remove(&old.id);
                    k.unlist(old);
                }
            }
        }
        k.order.push_back(Arc::downgrade(&e));
        k.by_id.insert(e.id.clone(), e);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        super::deferred::settle();
        self.kept().by_id.get(id).cloned()
    }

    /// Drops `id` from the list for a cap (`MaxExecutionsPerRegistration`): unlike
    /// [`Registry::remove`], a client can still wait for it while it runs
    /// ([`Registry::get_or_running`]).
    pub fn unlist(&self, id: &str) {
        super::deferred::settle();
        let mut k = self.kept();
        if let Some(e) = k.by_id.remove(id) {
            k.unlist(e);
        }
        k.compact();
    }

    /// A kept entry, or one dropped by a cap that has not ended yet.
    pub fn get_or_running(&self, id: &str) -> Option<Arc<Entry>> {
        super::deferred::settle();
        let k = self.kept();
        if let Some(e) = k.by_id.get(id) {
            return Some(Arc::clone(e));
        }
        k.unlisted
            .iter()
            .filter_map(Weak::upgrade)
            .find(|e| e.id == id && matches!(e.status(), Status::Running | Status::Created))
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        super::deferred::settle();
        let mut k = self.kept();
        let e = k.by_id.remove(id);
        k.compact();
        e
    }

    /// Newest first, as RG.DUMPEXECUTIONS lists them.
    pub fn newest_first(&self) -> Vec<Arc<Entry>> {
        super::deferred::settle();
        let k = self.kept();
        k.order.iter().rev().filter_map(|w| k.live(w)).collect()
    }

    pub fn len(&self) -> usize {
        super::deferred::settle();
        self.kept().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_from_zero_and_eviction_is_fifo() {
        let r = Registry::default();
        let ids: Vec<String> = (0..4).map(|_| r.next_id()).collect();
        assert_eq!(ids[0], format!("{STANDALONE_SHARD_ID}-0"));
        for id in &ids {
            r.keep(Entry::new(id.clone(), &Plan::default()), 3);
        }
        let kept: Vec<String> = r.newest_first().iter().map(|e| e.id.clone()).collect();
        assert_eq!(kept, vec![ids[3].clone(), ids[2].clone(), ids[1].clone()]);
        assert!(r.remove(&ids[2]).is_some());
        assert!(r.get(&ids[2]).is_none());
        assert_eq!(r.len(), 2);
        // Removed entries do not count towards the cap, nor come back.
        let more: Vec<String> = (0..3).map(|_| r.next_id()).collect();
        for id in &more {
            r.keep(Entry::new(id.clone(), &Plan::default()), 3);
        }
        let kept: Vec<String> = r.newest_first().iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            kept,
            vec![more[2].clone(), more[1].clone(), more[0].clone()]
        );
        for id in &more {
            assert!(r.remove(id).is_some());
        }
        assert!(r.is_empty() && r.newest_first().is_empty());
    }

    #[test]
    fn removing_an_execution_frees_it_at_once() {
        let r = Registry::default();
        let id = r.next_id();
        let e = Entry::new(id.clone(), &Plan::default());
        let weak = Arc::downgrade(&e);
        r.keep(e, 0);
        assert!(weak.upgrade().is_some());
        r.remove(&id);
        assert!(
            weak.upgrade().is_none(),
            "the order list must not keep it alive"
        );
        assert!(r.newest_first().is_empty());
    }

    #[test]
    fn finish_records_status_and_results() {
        let e = Entry::new("x-1".into(), &Plan::default());
        assert_eq!(e.summary().0, -1);
        e.finish(ExecutionOutput {
            results: vec![engine::Datum::Int(1)],
            errors: vec![],
            aborted: false,
        });
        assert_eq!(e.status(), Status::Done);
        assert_eq!(e.summary().0, 1);
    }
}
