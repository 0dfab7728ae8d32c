//! StreamReader registrations (REFERENCE §2.2): entries added to matching streams are
//! processed in batches through the consumer group `__gears_consumer_group__`; processed
//! entries are acked (and trimmed); failures follow `onFailedPolicy`.
//!
//! The `xadd` notification (main thread) only counts new entries per stream and, once a
//! batch is ready (or `duration` ms passed), starts that stream's run loop on the worker
//! pool; one batch per stream runs at a time, in order. `sync` registrations run inline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use engine::plan::Plan;
use gearpy::{RegisterRequest, StreamOptions};

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
    /// Entries added since the last batch was read (an estimate; the group is the truth).
    unprocessed: u64,
    /// When the first entry of the coming batch arrived (for `duration` and lag).
    first_arrival: Option<Instant>,
    running: bool,
    timer_armed: bool,
}

#[derive(Debug)]
struct State {
    status: Status,
    keys: HashMap<Vec<u8>, KeyState>,
    kept: std::collections::VecDeque<String>,
    lag_last_ms: u64,
    lag_total_ms: u64,
    lag_runs: u64,
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

    /// Counts a new entry; returns what should happen now.
    pub fn on_entry(&self, key: &[u8]) -> Trigger {
        let mut s = self.state();
        if s.status != Status::Ok {
            return Trigger::Nothing;
        }
        let batch = self.opts.batch;
        let duration = self.opts.duration_ms;
        let k = s.keys.entry(key.to_vec()).or_default();
        k.unprocessed += 1;
        k.first_arrival.get_or_insert_with(Instant::now);
        if k.unprocessed >= batch {
            if k.running {
                return Trigger::Nothing; // the running loop picks it up
            }
            k.running = true;
            return Trigger::Run;
        }
        if duration > 0 && !k.timer_armed {
            k.timer_armed = true;
            return Trigger::Timer;
        }
        Trigger::Nothing
    }

    /// Marks `key`'s loop as running unless it already is; true if the caller must run it.
    pub(crate) fn claim(&self, key: &[u8]) -> bool {
        let mut s = self.state();
        let k = s.keys.entry(key.to_vec()).or_default();
        k.timer_armed = false;
        if k.running {
            return false;
        }
        k.running = true;
        true
    }

    /// After a batch of `n` entries: whether another batch should run now (else the loop
    /// goes idle).
    pub(crate) fn after_batch(&self, key: &[u8], n: u64, more_pending: bool) -> bool {
        let mut s = self.state();
        let arrival = {
            let k = s.keys.entry(key.to_vec()).or_default();
            k.unprocessed = k.unprocessed.saturating_sub(n);
            let arrival = k.first_arrival.take();
            if k.unprocessed > 0 {
                k.first_arrival = Some(Instant::now());
            }
            arrival
        };
        if let Some(a) = arrival {
            let lag = a.elapsed().as_millis() as u64;
            s.lag_last_ms = lag;
            s.lag_total_ms += lag;
            s.lag_runs += 1;
        }
        let status_ok = s.status == Status::Ok;
        let k = s.keys.entry(key.to_vec()).or_default();
        let again = status_ok && (more_pending || k.unprocessed >= self.opts.batch);
        if !again {
            k.running = false;
        }
        again
    }

    /// Records entries a stream already holds when the registration starts.
    pub(crate) fn note_existing(&self, key: &[u8], n: u64) {
        let mut s = self.state();
        let k = s.keys.entry(key.to_vec()).or_default();
        k.unprocessed = k.unprocessed.max(n);
        if n > 0 {
            k.first_arrival.get_or_insert_with(Instant::now);
        }
    }

    /// Remembers a kept execution id; returns ids to drop beyond `max` (≤ 0: unlimited).
    pub fn keep_execution(&self, id: String, max: i64) -> Vec<String> {
        crate::model::registrations::keep_capped(&mut self.state().kept, id, max)
    }
}

pub enum Trigger {
    Nothing,
    Run,
    Timer,
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
