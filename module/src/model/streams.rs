//! StreamReader registrations (REFERENCE §2.2): entries added to matching streams are
//! processed in batches through the consumer group `__gears_consumer_group__`; processed
//! entries are acked (and trimmed); failures follow `onFailedPolicy`.
//!
//! The `xadd` notification (main thread) counts new entries per stream and, once a batch
//! is due (`batch` entries, or `duration` ms) and none of that stream is queued or running,
//! queues it as an execution (`created`); a finished batch queues the next one of its
//! stream if enough entries wait. The first entry of a stream not seen yet queues a run of
//! the consumer's pending entries and counts what the stream still holds undelivered, as
//! 1.2 does; the registration's drain runs them one at a
//! time, in order, on the worker pool. Each reads its entries when it starts. `sync`
//! registrations run inline.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use engine::plan::Plan;
use gearpy::{RegisterRequest, StreamOptions};

use crate::model::executions::Entry;
use crate::model::registrations::{Mode, Stats};
use crate::redis::access::RunAs;

/// Status shown at the end of the registration's dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    WaitingForRetry,
    Aborted,
    Paused,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::WaitingForRetry => "WAITING_FOR_RETRY_ON_FAILURE",
            Status::Aborted => "ABORTED",
            Status::Paused => "PAUSED",
        }
    }
}

#[derive(Debug, Default)]
struct KeyState {
    /// The registration knows this stream (scanned, or an entry was added to it).
    seen: bool,
    /// Entries added since the last batch was queued.
    unprocessed: u64,
    /// When the first of those entries arrived (for lag).
    first_arrival: Option<Instant>,
    timer_armed: bool,
    /// A batch of this stream is queued or runs: new entries are only counted, and the
    /// next batch is queued when it finishes (`after_batch`), as 1.2 runs one execution
    /// per stream at a time.
    active: bool,
}

/// What a queued batch reads when it starts.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// At most this many entries; `None`: everything the stream holds.
    pub count: Option<u64>,
    /// Only entries delivered before and not acked (a failure, pause or restart left
    /// them), none of the new ones.
    pub pending_only: bool,
    /// When the first of its entries arrived (for lag).
    pub arrival: Instant,
}

/// One queued batch: its execution (listed `created` until it starts) and what it reads.
#[derive(Debug)]
pub struct Job {
    pub entry: Arc<Entry>,
    pub key: Vec<u8>,
    pub read: Read,
}

/// What an added entry asks for: batches to queue now, and whether to arm the `duration`
/// timer.
#[derive(Debug, Default)]
pub struct Due {
    pub reads: Vec<Read>,
    pub arm_timer: bool,
}

#[derive(Debug)]
struct State {
    status: Status,
    keys: HashMap<Vec<u8>, KeyState>,
    kept: std::collections::VecDeque<String>,
    lag_last_ms: u64,
    lag_total_ms: u64,
    lag_runs: u64,
    /// Batches not started yet, in trigger order.
    queue: VecDeque<Job>,
    /// A batch runs (its drain owns the queue's head).
    busy: bool,
}

/// One StreamReader registration.
#[derive(Debug)]
pub struct StreamRegistration {
    pub id: String,
    pub session: String,
    /// Who registered it: its batches run as this ACL user (`crate::redis::access`).
    pub run_as: RunAs,
    pub desc: Option<String>,
    pub prefix: String,
    pub opts: StreamOptions,
    pub mode: Mode,
    pub plan: Plan,
    /// The plan as executions show it (shared by every batch's execution).
    pub shape: std::sync::Arc<crate::model::executions::PlanShape>,
    stats: Mutex<Stats>,
    state: Mutex<State>,
}

impl StreamRegistration {
    pub fn new(
        id: String,
        session: String,
        req: RegisterRequest,
        opts: StreamOptions,
        run_as: RunAs,
    ) -> Self {
        StreamRegistration {
            id,
            session,
            run_as,
            desc: req.desc,
            prefix: req.prefix,
            opts,
            mode: Mode::parse(&req.mode),
            shape: crate::model::executions::PlanShape::of(&req.plan),
            plan: req.plan,
            stats: Mutex::new(Stats::default()),
            state: Mutex::new(State {
                status: Status::Ok,
                keys: HashMap::new(),
                kept: Default::default(),
                lag_last_ms: 0,
                lag_total_ms: 0,
                lag_runs: 0,
                queue: VecDeque::new(),
                busy: false,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> Status {
        self.state().status
    }

    pub fn set_status(&self, s: Status) {
        self.state().status = s;
    }

    /// Moves the status from `from` to `to`; false (unchanged) if it was not `from`.
    pub fn transition(&self, from: Status, to: Status) -> bool {
        let mut s = self.state();
        if s.status != from {
            return false;
        }
        s.status = to;
        true
    }

    /// (last, average) estimated lag in ms.
    pub fn lag(&self) -> (u64, f64) {
        let s = self.state();
        let avg = if s.lag_runs == 0 {
            0.0
        } else {
            s.lag_total_ms as f64 / s.lag_runs as f64
        };
        (s.lag_last_ms, avg)
    }

    pub fn matches_key(&self, key: &[u8]) -> bool {
        crate::model::registrations::prefix_matches(&self.prefix, key)
    }

    /// Whether its user may process stream `key` (lock held): read it, and update it as
    /// the consumer group and acks do (and delete entries, when it trims). Streams it may
    /// not are left alone, as if they did not match.
    pub fn may_use(&self, key: &[u8]) -> bool {
        let trims = if self.opts.trim {
            crate::redis::access::DELETE
        } else {
            0
        };
        crate::redis::access::may_access(
            &self.run_as,
            key,
            crate::redis::access::READ_UPDATE | trims,
        )
    }

    /// Counts a new entry (main thread, lock held). The first entry of a stream the
    /// registration has not seen yet queues a run of the pending entries at once, whatever
    /// `batch` is, and counts `undelivered()` (what the stream holds that the group has not
    /// delivered, this entry included) instead of one. Once `batch` entries wait and no
    /// batch of the stream is queued or running, one is queued.
    pub fn on_entry(&self, key: &[u8], undelivered: impl FnOnce() -> u64) -> Due {
        let mut s = self.state();
        if s.status != Status::Ok {
            return Due::default();
        }
        let (batch, duration) = (self.opts.batch.max(1), self.opts.duration_ms);
        let now = Instant::now();
        let k = s.keys.entry(key.to_vec()).or_default();
        let mut due = Due::default();
        let added = if k.seen {
            1
        } else {
            k.seen = true;
            k.active = true;
            due.reads.push(Read {
                count: None,
                pending_only: true,
                arrival: now,
            });
            undelivered().max(1)
        };
        k.unprocessed += added;
        k.first_arrival.get_or_insert(now);
        if k.active {
            return due;
        }
        if let Some(read) = take_batch(k, batch) {
            due.reads.push(read);
        } else if duration > 0 && !k.timer_armed {
            k.timer_armed = true;
            due.arm_timer = true;
        }
        due
    }

    /// A batch of `key` finished and was acked: the next one if `batch` entries wait, else
    /// the `duration` timer to arm for what is left (lock held).
    pub fn after_batch(&self, key: &[u8]) -> Due {
        let mut s = self.state();
        let ok = s.status == Status::Ok;
        let (batch, duration) = (self.opts.batch.max(1), self.opts.duration_ms);
        let Some(k) = s.keys.get_mut(key) else {
            return Due::default();
        };
        k.active = false;
        let mut due = Due::default();
        if !ok {
            return due;
        }
        if let Some(read) = take_batch(k, batch) {
            due.reads.push(read);
        } else if k.unprocessed > 0 && duration > 0 && !k.timer_armed {
            k.timer_armed = true;
            due.arm_timer = true;
        }
        due
    }

    /// The `duration` timer fired: the entries counted since the last batch, if any, make
    /// one more batch, even while one runs (1.2 flushes them then too).
    pub fn flush(&self, key: &[u8]) -> Option<Read> {
        let mut s = self.state();
        let ok = s.status == Status::Ok;
        let k = s.keys.entry(key.to_vec()).or_default();
        k.timer_armed = false;
        if !ok || k.unprocessed == 0 {
            return None;
        }
        k.unprocessed = 0;
        k.active = true;
        Some(Read {
            count: Some(self.opts.batch.max(1)),
            pending_only: false,
            arrival: k.first_arrival.take().unwrap_or_else(Instant::now),
        })
    }

    /// A scan found stream `key`: its first entry is no news any more. Returns whether it
    /// was seen before (its first XADD already counted what it holds).
    /// A stream seen before keeps its counts unless `reset_seen` (a scan that reads all it
    /// holds): the first scan of a new registration may run after that stream's first XADDs,
    /// whose counts must stand.
    pub fn mark_seen(&self, key: &[u8], reset_seen: bool) -> bool {
        let mut s = self.state();
        let k = s.keys.entry(key.to_vec()).or_default();
        let was = std::mem::replace(&mut k.seen, true);
        if was && !reset_seen {
            return true;
        }
        k.unprocessed = 0;
        k.first_arrival = None;
        k.active = false;
        was
    }

    /// A scan queued a batch reading everything `key` holds.
    pub fn scanned(&self, key: &[u8]) {
        self.state().keys.entry(key.to_vec()).or_default().active = true;
    }

    /// Queues a batch; true if no batch runs (the caller starts the drain).
    pub fn enqueue(&self, job: Job) -> bool {
        let mut s = self.state();
        s.queue.push_back(job);
        !std::mem::replace(&mut s.busy, true)
    }

    /// The next batch to run; `None` ends the drain.
    pub fn next_job(&self) -> Option<Job> {
        let mut s = self.state();
        let job = s.queue.pop_front();
        if job.is_none() {
            s.busy = false;
        }
        job
    }

    /// Takes the batches not started yet (to abort them) and forgets what it knew of its
    /// streams, as 1.2 does when a registration stops: the next scan or first XADD of a
    /// stream starts again from the consumer group.
    pub fn take_pending(&self) -> Vec<Job> {
        let mut s = self.state();
        s.keys.clear();
        s.queue.drain(..).collect()
    }

    /// Records a finished batch's lag: from its first entry arriving until now.
    pub fn record_lag(&self, arrival: Instant) {
        let lag = arrival.elapsed().as_millis() as u64;
        let mut s = self.state();
        s.lag_last_ms = lag;
        s.lag_total_ms += lag;
        s.lag_runs += 1;
    }

    /// `RG.CLEARREGISTRATIONSSTATS`: counters, lag and `lastError` start again;
    /// `numTriggered` keeps the batches queued or running.
    pub fn clear_stats(&self) {
        {
            let mut st = self.stats();
            let in_flight = st.triggered.saturating_sub(st.finished());
            *st = Stats {
                triggered: in_flight,
                ..Default::default()
            };
        }
        let mut s = self.state();
        (s.lag_last_ms, s.lag_total_ms, s.lag_runs) = (0, 0, 0);
    }

    /// Ids of its kept executions.
    pub fn kept_executions(&self) -> Vec<String> {
        self.state().kept.iter().cloned().collect()
    }

    /// Remembers a kept execution id; returns ids to drop beyond `max` (≤ 0: unlimited).
    pub fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        crate::model::registrations::keep_capped(&mut self.state().kept, id, max)
    }
}

/// A batch of `batch` entries if that many wait (their arrival starts its lag).
fn take_batch(k: &mut KeyState, batch: u64) -> Option<Read> {
    if k.unprocessed < batch {
        return None;
    }
    k.unprocessed -= batch;
    k.active = true;
    let arrival = k.first_arrival.take().unwrap_or_else(Instant::now);
    if k.unprocessed > 0 {
        k.first_arrival = Some(Instant::now());
    }
    Some(Read {
        count: Some(batch),
        pending_only: false,
        arrival,
    })
}

/// All StreamReader registrations of this shard.
#[derive(Debug, Default)]
pub struct StreamRegistrations {
    list: Mutex<Vec<Arc<StreamRegistration>>>,
}

impl StreamRegistrations {
    fn list(&self) -> MutexGuard<'_, Vec<Arc<StreamRegistration>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, r: Arc<StreamRegistration>) {
        self.list().push(r);
    }

    pub fn remove(&self, id: &str) -> Option<Arc<StreamRegistration>> {
        let mut l = self.list();
        let pos = l.iter().position(|r| r.id == id)?;
        Some(l.remove(pos))
    }

    pub fn get(&self, id: &str) -> Option<Arc<StreamRegistration>> {
        self.list().iter().find(|r| r.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<StreamRegistration>> {
        self.list().clone()
    }

    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(batch: u64, duration_ms: u64) -> StreamRegistration {
        let req = RegisterRequest {
            reader: "StreamReader".into(),
            prefix: "s*".into(),
            event_types: None,
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
        let opts = StreamOptions {
            batch,
            duration_ms,
            on_failed_policy: "continue".into(),
            retry_interval_s: 1,
            trim: true,
        };
        StreamRegistration::new("r".into(), "s".into(), req, opts, RunAs::user("default"))
    }

    fn counts(d: &Due) -> Vec<Option<u64>> {
        d.reads.iter().map(|r| r.count).collect()
    }

    fn one() -> u64 {
        1
    }

    #[test]
    fn a_new_stream_runs_its_pending_entries_at_once_then_counts_batches() {
        let r = reg(2, 0);
        let d = r.on_entry(b"s1", one);
        assert_eq!(counts(&d), vec![None]);
        assert!(d.reads[0].pending_only);
        assert!(
            counts(&r.on_entry(b"s1", one)).is_empty(),
            "one run at a time"
        );
        assert_eq!(counts(&r.after_batch(b"s1")), vec![Some(2)]);
        assert!(counts(&r.on_entry(b"s1", one)).is_empty());
        assert!(counts(&r.after_batch(b"s1")).is_empty(), "1 < batch");
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![Some(2)]);
    }

    #[test]
    fn a_new_stream_counts_what_it_already_holds() {
        let r = reg(2, 5);
        assert_eq!(counts(&r.on_entry(b"s1", || 5)), vec![None]);
        assert_eq!(counts(&r.after_batch(b"s1")), vec![Some(2)]);
        assert_eq!(counts(&r.after_batch(b"s1")), vec![Some(2)]);
        let last = r.after_batch(b"s1");
        assert!(
            last.reads.is_empty() && last.arm_timer,
            "the fifth waits for duration"
        );
        let seen = r.on_entry(b"s1", || panic!("asked only for a stream not seen"));
        assert_eq!(counts(&seen), vec![Some(2)]);
    }

    #[test]
    fn a_scanned_stream_is_no_news() {
        let r = reg(1, 0);
        assert!(!r.mark_seen(b"s1", false));
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![Some(1)]);
    }

    #[test]
    fn a_stream_whose_first_xadd_came_first_is_known_to_the_scan() {
        let r = reg(2, 0);
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![None]);
        assert!(
            r.mark_seen(b"s1", false),
            "the first scan must not queue a second read"
        );
    }

    #[test]
    fn a_late_first_scan_keeps_the_counts_of_the_first_xadds() {
        let r = reg(3, 0);
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![None]);
        r.after_batch(b"s1"); // the pending run finished: one entry counted
        assert!(r.on_entry(b"s1", one).reads.is_empty());
        assert!(r.mark_seen(b"s1", false));
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![Some(3)]);
    }

    #[test]
    fn stopping_forgets_the_streams() {
        let r = reg(1, 0);
        r.mark_seen(b"s1", false);
        assert_eq!(counts(&r.on_entry(b"s1", one)), vec![Some(1)]);
        assert!(r.take_pending().is_empty());
        let d = r.on_entry(b"s1", one);
        assert!(d.reads[0].pending_only, "seen anew: pending entries first");
    }

    #[test]
    fn duration_flushes_what_is_left() {
        let r = reg(3, 5);
        r.mark_seen(b"s1", false);
        let d = r.on_entry(b"s1", one);
        assert!(d.arm_timer && d.reads.is_empty());
        assert!(!r.on_entry(b"s1", one).arm_timer, "one timer at a time");
        assert_eq!(r.flush(b"s1").map(|x| x.count), Some(Some(3)));
        assert!(r.flush(b"s1").is_none(), "nothing left");
    }

    #[test]
    fn nothing_is_due_unless_ok() {
        let r = reg(1, 0);
        r.set_status(Status::Paused);
        assert!(r.on_entry(b"s1", one).reads.is_empty());
        assert!(!r.transition(Status::Ok, Status::WaitingForRetry));
        assert_eq!(r.status(), Status::Paused);
    }
}
