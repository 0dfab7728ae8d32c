//! Recording a batch of finished event executions as 1.2 would have recorded them one by
//! one (REFERENCE §8): every event consumes an execution id and counts in the stats; each
//! is kept in the registry (FIFO at `MaxExecutions`) and in its registration's list
//! (oldest dropped beyond `MaxExecutionsPerRegistration`).
//!
//! Done in one go under the Redis lock, so no client sees a batch half recorded. That
//! also makes executions created and dropped within the same batch unobservable: those
//! ("doomed": all but the newest `MaxExecutionsPerRegistration` of a large batch) get no
//! `Entry` and no converted results. The registry is still updated as the one-by-one
//! sequence would leave it: a model tracks its length with the doomed entries counted
//! ("virtual"), so the FIFO evictions they would have caused happen too.

use std::collections::VecDeque;
use std::time::Duration;

use engine::exec::ExecutionOutput;
use std::sync::Arc;

use crate::model::executions::{Entry, PlanShape, Registry};
use crate::model::registrations::Registration;
use crate::model::state::ModuleState;

/// The execution caps in force for a batch (≤ 0: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub per_registration: i64,
    pub total: i64,
}

impl Caps {
    pub fn now(state: &ModuleState) -> Caps {
        Caps {
            per_registration: state.config.int("MaxExecutionsPerRegistration"),
            total: state.config.int("MaxExecutions"),
        }
    }

    /// How many of a batch's newest executions can still be listed after it.
    pub fn keep(&self) -> usize {
        [self.per_registration, self.total]
            .into_iter()
            .filter(|c| *c > 0)
            .map(|c| c as usize)
            .min()
            .unwrap_or(usize::MAX)
    }
}

fn cap(c: i64) -> Option<usize> {
    (c > 0).then_some(c as usize)
}

/// Records `outs` (one per event, in trigger order) that ran in `elapsed`, for events
/// numbered as they started (`numbers[i]` is event i's execution number; events past its
/// end get the next ones).
pub fn record_numbered(
    state: &ModuleState,
    reg: &Registration,
    outs: Vec<ExecutionOutput>,
    numbers: &[u64],
    elapsed: Duration,
    caps: Caps,
) {
    if outs.is_empty() {
        return;
    }
    reg.stats().record_batch(&outs, elapsed.as_micros() as u64);
    keep_numbered(state, reg, outs, numbers, caps);
}

/// Keeps `outs` (already counted in the stats) as [`record_numbered`] does.
pub fn keep_numbered(
    state: &ModuleState,
    reg: &Registration,
    outs: Vec<ExecutionOutput>,
    numbers: &[u64],
    caps: Caps,
) {
    let mut numbers = numbers.iter();
    // Every execution consumes its number; only kept ones get their id formatted.
    let mut next_id = |kept: bool| {
        let n = match numbers.next() {
            Some(&n) => n,
            None => state.registry.next_number(),
        };
        if kept {
            crate::model::topology::numbered_id(n)
        } else {
            String::new()
        }
    };
    keep_batch(
        &state.registry,
        &mut reg.kept_ids(),
        &reg.shape,
        outs,
        caps,
        &mut next_id,
    );
    // Its events still queued count in its list too (`registrations::trim_kept`).
    for old in reg.trim_queued(caps.per_registration) {
        state.registry.remove(&old);
    }
}

/// Ids for `outs`, their entries kept in `registry` and their ids in `kept` (the
/// registration's list, oldest first), as one-by-one keeping would leave both.
/// `next_id(kept)` consumes the next execution's number and returns its id when `kept`
/// (an execution the batch also trims needs no id text).
pub(crate) fn keep_batch(
    registry: &Registry,
    kept: &mut VecDeque<String>,
    plan: &Arc<PlanShape>,
    outs: Vec<ExecutionOutput>,
    caps: Caps,
    next_id: &mut dyn FnMut(bool) -> String,
) {
    let n = outs.len();
    let per_reg = cap(caps.per_registration);
    let total = cap(caps.total);
    if n == 1 {
        // One execution (sync flows): kept as such.
        let entry = Entry::new_registered(next_id(true), plan);
        entry.finish(outs.into_iter().next().unwrap_or_default());
        kept.push_back(entry.id.clone());
        registry.keep(entry, caps.total);
        while per_reg.is_some_and(|c| kept.len() > c) {
            if let Some(old) = kept.pop_front() {
                registry.remove(&old);
            }
        }
        return;
    }
    // Events below this index are dropped from the registration's list within the batch.
    let survivors_from = per_reg.map_or(0, |c| n.saturating_sub(c));

    let mut old_kept = std::mem::take(kept);
    let mut kept_len = old_kept.len();
    // The oldest of this batch's ids still in the registration's list.
    let mut new_front = 0usize;
    let mut new_kept = Vec::with_capacity(n - survivors_from);
    // The registry model: entries from before the batch still present, doomed entries
    // still present (by event index), and the length counting both.
    let mut old_present = registry.len();
    let mut doomed: VecDeque<usize> = VecDeque::new();
    let mut len = old_present;

    for (j, out) in outs.into_iter().enumerate() {
        let id = next_id(j >= survivors_from);
        if j < survivors_from {
            // Keep it (virtually), evicting the front while the registry is full.
            while total.is_some_and(|m| len >= m) {
                if old_present > 0 {
                    evict_front(registry);
                    old_present -= 1;
                } else if doomed.pop_front().is_none() {
                    evict_front(registry);
                }
                len -= 1;
            }
            doomed.push_back(j);
            len += 1;
        } else {
            // Doomed entries are older than every survivor: evicted first unless entries
            // from before the batch remain.
            while total.is_some_and(|m| len >= m) && old_present == 0 && !doomed.is_empty() {
                doomed.pop_front();
                len -= 1;
            }
            let entry = Entry::new_registered(id.clone(), plan);
            entry.finish(out);
            let before = registry.len();
            // The registry evicts real entries while real + doomed >= total.
            let max = total.map_or(0, |m| m.saturating_sub(doomed.len()).max(1) as i64);
            registry.keep(entry, max);
            let evicted = (before + 1).saturating_sub(registry.len());
            old_present -= evicted.min(old_present);
            len = len + 1 - evicted.min(len + 1);
            new_kept.push(id);
        }
        // The registration's list: oldest dropped beyond its cap.
        kept_len += 1;
        while per_reg.is_some_and(|c| kept_len > c) {
            kept_len -= 1;
            match old_kept.pop_front() {
                Some(old) => {
                    if registry.remove(&old).is_some() {
                        old_present = old_present.saturating_sub(1);
                        len -= 1;
                    }
                }
                None => {
                    if doomed.front() == Some(&new_front) {
                        doomed.pop_front();
                        len -= 1;
                    }
                    new_front += 1;
                }
            }
        }
    }
    old_kept.extend(new_kept);
    *kept = old_kept;
}

/// Evicts the registry's oldest entry.
fn evict_front(registry: &Registry) {
    if let Some(oldest) = registry.newest_first().pop() {
        registry.remove(&oldest.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    #[test]
    fn keep_is_the_smallest_positive_cap() {
        let c = |per_registration, total| Caps {
            per_registration,
            total,
        };
        assert_eq!(c(100, 1000).keep(), 100);
        assert_eq!(c(0, 1000).keep(), 1000);
        assert_eq!(c(100, -1).keep(), 100);
        assert_eq!(c(0, 0).keep(), usize::MAX);
    }

    fn out(i: usize) -> ExecutionOutput {
        ExecutionOutput {
            results: vec![engine::Datum::Int(i as i64)],
            ..Default::default()
        }
    }

    /// 1.2's order, one execution at a time (what `events::track` does).
    fn one_by_one(r: &Registry, kept: &mut VecDeque<String>, n: usize, caps: Caps) {
        for i in 0..n {
            let e =
                Entry::new_registered(r.next_id(), &PlanShape::of(&engine::plan::Plan::default()));
            e.finish(out(i));
            r.keep(Arc::clone(&e), caps.total);
            kept.push_back(e.id.clone());
            while caps.per_registration > 0 && kept.len() > caps.per_registration as usize {
                let old = kept.pop_front().unwrap();
                r.remove(&old);
            }
        }
    }

    fn ids(r: &Registry) -> Vec<String> {
        r.newest_first().iter().map(|e| e.id.clone()).collect()
    }

    /// Same ids, same kept lists, same results as one by one, for every mix of caps,
    /// prior entries (other executions and this registration's) and batch sizes.
    #[test]
    fn batch_keeping_matches_one_by_one() {
        let mut cases = 0;
        for total in [-1i64, 1, 3, 5, 12] {
            for per_registration in [0i64, 1, 2, 4, 7] {
                for others in [0usize, 2, 6] {
                    for prior in [0usize, 3, 9] {
                        for n in [1usize, 2, 4, 8, 17] {
                            let caps = Caps {
                                per_registration,
                                total,
                            };
                            let (a, b) = (Registry::default(), Registry::default());
                            let (mut ka, mut kb) = (VecDeque::new(), VecDeque::new());
                            for r in [&a, &b] {
                                for _ in 0..others {
                                    r.keep(
                                        Entry::new(r.next_id(), &engine::plan::Plan::default()),
                                        total,
                                    );
                                }
                            }
                            one_by_one(&a, &mut ka, prior, caps);
                            one_by_one(&b, &mut kb, prior, caps);
                            one_by_one(&a, &mut ka, n, caps);
                            let outs = (0..n).map(out).collect();
                            keep_batch(
                                &b,
                                &mut kb,
                                &PlanShape::of(&engine::plan::Plan::default()),
                                outs,
                                caps,
                                &mut |_| b.next_id(),
                            );
                            let ctx = format!("{caps:?} others={others} prior={prior} n={n}");
                            assert_eq!(ids(&a), ids(&b), "{ctx}");
                            assert_eq!(ka, kb, "{ctx}");
                            assert_eq!(a.next_id(), b.next_id(), "{ctx}");
                            for e in b.newest_first() {
                                let want = a.get(&e.id).unwrap().summary().0;
                                assert_eq!(e.summary().0, want, "{ctx} {}", e.id);
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 5 * 5 * 3 * 3 * 5);
    }
}
