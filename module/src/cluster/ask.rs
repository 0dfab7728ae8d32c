//! Asking every other shard something and gathering their answers (REFERENCE §7's
//! cluster-wide commands): the request goes out on the bus, each shard answers from its
//! main thread, and the gathered answers complete the request once all are in, or at its
//! deadline with what arrived (a silent shard is named in its answer slot).

use engine::sync::{AtomicU64, Ordering};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use redis_module::Context;

use super::bus::{self, Message};
use crate::ffi::replies::Reply;

/// What a shard is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `RG.GETEXECUTION <id> SHARD` on that shard.
    GetExecution(String),
    /// `RG.DROPEXECUTION <id>` on that shard (unknown ids are fine there).
    DropExecution(String),
    /// `RG.ABORTEXECUTION <id>` on that shard.
    AbortExecution(String),
    /// Install this session blob (a registration made on the asking shard).
    Session(Vec<u8>),
    /// Run this command here as this user (a flow's `execute()` on a key this shard owns).
    Call(crate::acl::RunAs, Vec<Vec<u8>>),
    /// `RG.PAUSEREGISTRATIONS <id>` (true) or `RG.UNPAUSEREGISTRATIONS <id>` (false).
    Pause(String, bool),
    /// `RG.CLEARREGISTRATIONSSTATS`.
    ClearStats,
    /// Install these REQUIREMENTS (pip, on a worker) before a script that needs them runs.
    Install(Vec<String>),
    /// Is this shard's part of the execution still running? (`1` or `0`)
    IsRunning(String),
}

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
    let Some(topo) = super::current() else {
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
    super::dist::start_sweeper();
    let m = Message::Ask { req, query: q };
    for id in &others {
        bus::send(Some(id), &m);
    }
}

/// Answers a query from `sender` (main thread, Redis lock held through `ctx`). Installing
/// requirements runs pip, so that answer comes later, from a worker.
pub fn on_ask(ctx: &Context, sender: &str, req: u64, q: Query) {
    if let Query::Install(names) = q {
        return install_then_answer(sender.to_owned(), req, names);
    }
    let reply = answer(ctx, q);
    send_answer(sender, req, &reply);
}

fn send_answer(to: &str, req: u64, reply: &Reply) {
    bus::send(
        Some(to),
        &Message::Answer {
            req,
            reply: encode_reply(reply),
        },
    );
}

fn install_then_answer(sender: String, req: u64, names: Vec<String>) {
    let Some(state) = crate::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || {
        let reply = match state.requirements.ensure(&names, false) {
            Ok(()) => Reply::Status("OK".into()),
            Err(e) => Reply::Error(e),
        };
        send_answer(&sender, req, &reply);
    });
}

fn answer(ctx: &Context, q: Query) -> Reply {
    use crate::commands::executions as ex;
    let result = match q {
        Query::GetExecution(id) => ex::local_plan(&id),
        Query::DropExecution(id) => ex::drop_local(&id),
        Query::AbortExecution(id) => ex::abort_local(&id),
        Query::Session(blob) => {
            crate::commands::internal::install_blob(ctx, &blob).map(|()| Reply::Status("OK".into()))
        }
        Query::Call(run_as, args) => Ok(crate::reply::from_call_reply(crate::host::call(
            Some(&run_as),
            &args,
        ))),
        Query::Pause(id, pause) => crate::commands::registrations::pause_local(&id, pause),
        Query::ClearStats => crate::commands::registrations::clear_stats_local(),
        Query::Install(_) => Err("requirements are installed on a worker".into()),
        Query::IsRunning(id) => Ok(Reply::Int(i64::from(super::dist::is_running(&id)))),
    };
    result.unwrap_or_else(Reply::Error)
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
    if let Some(state) = crate::state::get() {
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

const MAX_DEPTH: usize = 32;

/// A reply in the bus's wire form (tag byte, then the value).
pub fn encode_reply(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    put_reply(&mut out, r);
    out
}

fn put_reply(out: &mut Vec<u8>, r: &Reply) {
    let put = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match r {
        Reply::Null => out.push(0),
        Reply::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Reply::Bulk(b) => {
            out.push(2);
            put(out, b);
        }
        Reply::Status(s) => {
            out.push(3);
            put(out, s.as_bytes());
        }
        Reply::Error(s) => {
            out.push(4);
            put(out, s.as_bytes());
        }
        Reply::Array(items) => {
            out.push(5);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for i in items {
                put_reply(out, i);
            }
        }
    }
}

pub fn decode_reply(bytes: &[u8]) -> Option<Reply> {
    let mut buf = bytes;
    let r = take_reply(&mut buf, 0)?;
    buf.is_empty().then_some(r)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn take_u32(buf: &mut &[u8]) -> Option<usize> {
    take(buf, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn take_text(buf: &mut &[u8]) -> Option<String> {
    let n = take_u32(buf)?;
    String::from_utf8(take(buf, n)?.to_vec()).ok()
}

fn take_reply(buf: &mut &[u8], depth: usize) -> Option<Reply> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match take(buf, 1)?[0] {
        0 => Reply::Null,
        1 => Reply::Int(i64::from_le_bytes(take(buf, 8)?.try_into().ok()?)),
        2 => {
            let n = take_u32(buf)?;
            Reply::Bulk(take(buf, n)?.to_vec())
        }
        3 => Reply::Status(take_text(buf)?),
        4 => Reply::Error(take_text(buf)?),
        5 => {
            let n = take_u32(buf)?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(take_reply(buf, depth + 1)?);
            }
            Reply::Array(items)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let r = Reply::Array(vec![
            Reply::Null,
            Reply::Int(-5),
            Reply::Bulk(b"x\x00y".to_vec()),
            Reply::Status("OK".into()),
            Reply::Error("ERR no".into()),
            Reply::Array(vec![]),
        ]);
        let enc = encode_reply(&r);
        assert_eq!(decode_reply(&enc), Some(r));
        for cut in 0..enc.len() {
            assert_eq!(decode_reply(&enc[..cut]), None);
        }
    }
}
