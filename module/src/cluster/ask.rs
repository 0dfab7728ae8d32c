//! Asking every other shard something and gathering their answers (REFERENCE §7's
//! cluster-wide commands): the request goes out on the bus, each shard answers from its
//! main thread, and the gathered answers complete the request once all are in, or at its
//! deadline with what arrived (a silent shard is named in its answer slot).

use engine::sync::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::bus::{self, Message};
use crate::redis::ffi::replies::Reply;

// The wire forms live in the engine so the fuzz targets reach them without Redis.
pub use engine::wire::bus::Query;
pub use engine::wire::reply::{decode_reply, encode_reply};

/// Each other shard's answer: `(node id, reply)`.
pub type Answers = Vec<(String, Reply)>;
pub type OnAnswers = Box<dyn FnOnce(Answers) + Send>;

struct Gather {
    waiting_for: Vec<String>,
    answers: Answers,
    deadline: Instant,
    done: OnAnswers,
}

fn gathers() -> MutexGuard<'static, HashMap<u64, Gather>> {
    static G: OnceLock<Mutex<HashMap<u64, Gather>>> = OnceLock::new();
    G.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Asks every other master `q`; `done` gets their answers (on a worker or the sweeper),
/// at the latest after `timeout`. Not in cluster mode: `done` gets no answers at once and
/// this returns false.
pub fn ask_others(q: Query, timeout: Duration, done: OnAnswers) -> bool {
    let Some(topo) = crate::model::topology::current() else {
        done(Vec::new());
        return false;
    };
    let others: Vec<String> = topo
        .shards
        .iter()
        .filter(|s| s.id != topo.my_id)
        .map(|s| s.id.clone())
        .collect();
    ask(others, q, timeout, done);
    true
}

/// Asks the shards `others` (node ids) `q`; `done` gets their answers, at the latest after
/// `timeout`.
pub fn ask(others: Vec<String>, q: Query, timeout: Duration, done: OnAnswers) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let req = NEXT.fetch_add(1, Ordering::Relaxed);
    gathers().insert(
        req,
        Gather {
            waiting_for: others.clone(),
            answers: Vec::new(),
            deadline: Instant::now() + timeout,
            done,
        },
    );
    super::sweeper::every_tick(sweep);
    let m = Message::Ask { req, query: q };
    for id in &others {
        bus::send(Some(id), &m);
    }
}

/// Asks every other master `q` and waits (this thread holds no lock) at most `timeout`
/// for their answers; none outside cluster mode.
pub fn ask_others_and_wait(q: Query, timeout: Duration) -> Answers {
    let (tx, rx) = std::sync::mpsc::channel();
    ask_others(
        q,
        timeout,
        Box::new(move |answers| {
            let _ = tx.send(answers);
        }),
    );
    rx.recv_timeout(timeout + Duration::from_secs(1))
        .unwrap_or_default()
}

/// An answer arrived (main thread): completes its request once all are in.
pub fn on_answer(sender: &str, req: u64, reply: &[u8]) {
    let reply = decode_reply(reply).unwrap_or_else(|| Reply::Error("bad answer".into()));
    let mut g = gathers();
    let Some(gather) = g.get_mut(&req) else {
        return; // late: already completed at its deadline
    };
    gather.waiting_for.retain(|s| s != sender);
    gather.answers.push((sender.to_owned(), reply));
    if !gather.waiting_for.is_empty() {
        return;
    }
    let Some(gather) = g.remove(&req) else { return };
    drop(g);
    if let Some(state) = crate::model::state::get() {
        state.pool.spawn_fn(move || (gather.done)(gather.answers));
    }
}

/// Completes requests past their deadline with what arrived; silent shards get an error.
pub fn sweep(now: Instant) {
    let expired: Vec<Gather> = {
        let mut g = gathers();
        let ids: Vec<u64> = g
            .iter()
            .filter(|(_, x)| x.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        ids.into_iter().filter_map(|k| g.remove(&k)).collect()
    };
    for mut x in expired {
        for s in x.waiting_for.drain(..) {
            x.answers
                .push((s, Reply::Error("no answer from the shard".into())));
        }
        (x.done)(x.answers);
    }
}
