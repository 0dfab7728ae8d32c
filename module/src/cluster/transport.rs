//! The engine's shuffle `Transport` over the cluster bus.
//!
//! Frames for this shard land (main thread) in one inbox keyed by channel; a shuffle step
//! waits on it with its execution's idle bound. Frames may arrive before the execution
//! that reads them has started, so the inbox keeps them until it does; an execution
//! removes its channels when it ends, and frames arriving for it later (a peer that was
//! slower than the idle bound) are dropped, so the inbox cannot grow with dead channels.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use engine::error::{EngineError, Result};
use engine::ops::Waker;
use engine::shuffle::{ChannelId, Transport};

use super::bus::{self, Message};

type Queues = HashMap<ChannelId, VecDeque<(usize, Vec<u8>)>>;

/// Executions that ended here, newest last (bounded).
#[derive(Default)]
struct Ended {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

const ENDED_KEPT: usize = 4096;

#[derive(Default)]
struct State {
    queues: Queues,
    ended: Ended,
    /// Shards whose part of an execution could not start, by execution.
    failed: HashMap<u64, Vec<usize>>,
    /// Channels already given the "done" of a failed shard.
    failed_done: HashSet<(ChannelId, usize)>,
    /// Parked shuffles to wake on the next frame of their channel.
    wakers: HashMap<ChannelId, Vec<Waker>>,
}

impl State {
    /// Takes the wakers of `ch` (or of every channel of `exec`), to call after unlocking.
    fn take_wakers(&mut self, pick: impl Fn(&ChannelId) -> bool) -> Vec<Waker> {
        let chans: Vec<ChannelId> = self.wakers.keys().filter(|c| pick(c)).copied().collect();
        chans
            .into_iter()
            .flat_map(|c| self.wakers.remove(&c).unwrap_or_default())
            .collect()
    }
}

impl State {
    /// A "done" frame standing in for a failed shard that `ch` has not had yet.
    fn failed_shard_done(&mut self, ch: ChannelId) -> Option<(usize, Vec<u8>)> {
        let shard = *self
            .failed
            .get(&ch.exec)?
            .iter()
            .find(|&&s| !self.failed_done.contains(&(ch, s)))?;
        self.failed_done.insert((ch, shard));
        let mut done = Vec::new();
        engine::shuffle::encode_done(&mut done);
        let mut bundle = Vec::new();
        engine::shuffle::bundle_push(&mut bundle, &done);
        Some((shard, bundle))
    }
}

struct Inbox {
    state: Mutex<State>,
    arrived: Condvar,
}

static INBOX: LazyLock<Inbox> = LazyLock::new(|| Inbox {
    state: Mutex::new(State::default()),
    arrived: Condvar::new(),
});

fn state() -> MutexGuard<'static, State> {
    INBOX.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A frame from shard `from` for (`exec`, `step`) arrived.
pub fn deliver(exec: u64, step: u32, from: usize, frame: Vec<u8>) {
    let mut st = state();
    if st.ended.set.contains(&exec) {
        engine::pool::global().recycle(frame);
        return; // too late: the execution ended here
    }
    let ch = ChannelId { exec, step };
    st.queues.entry(ch).or_default().push_back((from, frame));
    let woken = st.take_wakers(|c| *c == ch);
    drop(st);
    INBOX.arrived.notify_all();
    for w in woken {
        w();
    }
}

/// Shard `from` will send nothing for execution `exec`: every channel of it gets a "done"
/// in its name, so no shuffle waits for it.
pub fn fail_shard(exec: u64, from: usize) {
    let mut st = state();
    if st.ended.set.contains(&exec) {
        return;
    }
    st.failed.entry(exec).or_default().push(from);
    let woken = st.take_wakers(|c| c.exec == exec);
    drop(st);
    INBOX.arrived.notify_all();
    for w in woken {
        w();
    }
}

/// A peer of execution `exec` is alive: every channel of it that exists here gets an
/// empty bundle (no records, but progress for the idle bound) and its waker is called.
pub fn touch(exec: u64) {
    let mut st = state();
    if st.ended.set.contains(&exec) {
        return;
    }
    let chans: HashSet<ChannelId> = st
        .queues
        .keys()
        .chain(st.wakers.keys())
        .filter(|c| c.exec == exec)
        .copied()
        .collect();
    for ch in &chans {
        st.queues
            .entry(*ch)
            .or_default()
            .push_back((usize::MAX, Vec::new()));
    }
    let woken = st.take_wakers(|c| c.exec == exec);
    drop(st);
    INBOX.arrived.notify_all();
    for w in woken {
        w();
    }
}

/// Drops whatever is left for execution `exec` (it ended) and refuses later frames.
pub fn forget(exec: u64) {
    let mut st = state();
    st.queues.retain(|ch, q| {
        // Frames nobody will read go back to the pool they came from (bus receive copies).
        let keep = ch.exec != exec;
        if !keep {
            q.drain(..)
                .for_each(|(_, f)| engine::pool::global().recycle(f));
        }
        keep
    });
    st.failed.remove(&exec);
    st.failed_done.retain(|(ch, _)| ch.exec != exec);
    st.wakers.retain(|ch, _| ch.exec != exec);
    if st.ended.set.insert(exec) {
        st.ended.order.push_back(exec);
        if st.ended.order.len() > ENDED_KEPT {
            if let Some(old) = st.ended.order.pop_front() {
                st.ended.set.remove(&old);
            }
        }
    }
}

/// One execution's view of the cluster: shard indices map to node ids.
pub struct BusTransport {
    pub me: usize,
    pub peers: Arc<Vec<String>>,
}

impl Transport for BusTransport {
    fn send(&self, to: usize, ch: ChannelId, frame: Vec<u8>) -> Result<()> {
        if to == self.me {
            deliver(ch.exec, ch.step, to, frame);
            return Ok(());
        }
        let peer = self
            .peers
            .get(to)
            .ok_or_else(|| EngineError::Internal(format!("no shard {to}")))?;
        let m = Message::Frame {
            exec: ch.exec,
            step: ch.step,
            from: self.me as u32,
            frame,
        };
        let sent = bus::send(Some(peer), &m);
        if let Message::Frame { frame, .. } = m {
            engine::pool::global().recycle(frame); // the bundle, pooled by the shuffle
        }
        if sent {
            Ok(())
        } else {
            Err(EngineError::Execution(format!(
                "Failed sending records to shard {peer}"
            )))
        }
    }

    fn on_arrival(&self, ch: ChannelId, waker: Waker) {
        state().wakers.entry(ch).or_default().push(waker);
    }

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>> {
        let deadline = Instant::now() + timeout;
        let mut st = state();
        loop {
            if let Some(item) = st.queues.get_mut(&ch).and_then(|v| v.pop_front()) {
                return Ok(Some(item));
            }
            if let Some(done) = st.failed_shard_done(ch) {
                return Ok(Some(done));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            st = INBOX
                .arrived
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_wait_for_their_reader_and_late_ones_are_dropped() {
        let t = BusTransport {
            me: 0,
            peers: Arc::new(vec!["a".into(), "b".into()]),
        };
        let ch = ChannelId { exec: 77, step: 1 };
        deliver(77, 1, 1, b"early".to_vec());
        let got = t.recv(ch, Duration::from_millis(10)).unwrap();
        assert_eq!(got, Some((1, b"early".to_vec())));
        forget(77);
        deliver(77, 1, 1, b"late".to_vec());
        assert_eq!(t.recv(ch, Duration::from_millis(10)).unwrap(), None);
        // A failed shard's "done" comes once per channel.
        fail_shard(79, 1);
        let ch = ChannelId { exec: 79, step: 3 };
        let (from, frame) = t.recv(ch, Duration::ZERO).unwrap().unwrap();
        assert_eq!(from, 1);
        let frames = engine::shuffle::unbundle(&frame).unwrap();
        assert_eq!(frames.len(), 1);
        assert!(matches!(
            engine::shuffle::decode_frame(frames[0]),
            Ok(engine::shuffle::Frame::Done)
        ));
        assert_eq!(t.recv(ch, Duration::ZERO).unwrap(), None);
        forget(79);
        // A heartbeat reaches a channel that exists as an empty bundle (no frames).
        deliver(80, 2, 1, Vec::new());
        assert!(t
            .recv(ChannelId { exec: 80, step: 2 }, Duration::ZERO)
            .unwrap()
            .is_some());
        touch(80);
        let (_, beat) = t
            .recv(ChannelId { exec: 80, step: 2 }, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert!(engine::shuffle::unbundle(&beat).unwrap().is_empty());
        forget(80);
        // Sending to oneself never touches the bus.
        t.send(0, ChannelId { exec: 78, step: 0 }, b"self".to_vec())
            .unwrap();
        let own = t.recv(ChannelId { exec: 78, step: 0 }, Duration::ZERO);
        assert_eq!(own.unwrap(), Some((0, b"self".to_vec())));
    }
}
