//! The engine's shuffle `Transport` over the cluster bus.
//!
//! Frames for this shard land (main thread) in one inbox keyed by channel; a shuffle step
//! waits on it with its execution's idle bound. Frames may arrive before the execution
//! that reads them has started, so the inbox keeps them until it does; an execution
//! removes its channels when it ends, and frames arriving for it later (a peer that was
//! slower than the idle bound) are dropped, so the inbox cannot grow with dead channels.
//!
//! A bundle goes out as the message itself: the shuffle left `FRAME_HEADER_LEN` bytes of
//! room before it, the header is written there and the buffer handed to the bus as is. A
//! received frame message is kept whole and the bundle read behind its header. Credits
//! of the shuffle's flow control travel as `Credit` messages and wait here per channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use engine::error::{EngineError, Result};
use engine::ops::Waker;
use engine::shuffle::{Bundle, ChannelId, Transport};
use engine::wire::bus::{write_frame_header, FrameHeader, FRAME_HEADER_LEN};

use super::bus::{self, Message};

type Queues = HashMap<ChannelId, VecDeque<(usize, Bundle)>>;

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
    /// Parked shuffles to wake on the next frame or credit of their channel.
    wakers: HashMap<ChannelId, Vec<Waker>>,
    /// Credits granted to this shard, by channel: (granting shard, n).
    credits: HashMap<ChannelId, Vec<(usize, u32)>>,
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
    fn failed_shard_done(&mut self, ch: ChannelId) -> Option<(usize, Bundle)> {
        let shard = *self
            .failed
            .get(&ch.exec)?
            .iter()
            .find(|&&s| !self.failed_done.contains(&(ch, s)))?;
        self.failed_done.insert((ch, shard));
        let mut bundle = Vec::new();
        engine::shuffle::bundle_done(&mut bundle);
        Some((shard, Bundle::plain(bundle)))
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

/// A bundle from shard `from` for (`exec`, `step`) arrived.
pub fn deliver(exec: u64, step: u32, from: usize, bundle: Bundle) {
    let mut st = state();
    if st.ended.set.contains(&exec) {
        engine::pool::global().recycle(bundle.buf);
        return; // too late: the execution ended here
    }
    let ch = ChannelId { exec, step };
    st.queues.entry(ch).or_default().push_back((from, bundle));
    let woken = st.take_wakers(|c| *c == ch);
    drop(st);
    INBOX.arrived.notify_all();
    for w in woken {
        w();
    }
}

/// Shard `from` took `n` of this shard's bundles on (`exec`, `step`): the sender may
/// release as many queued bundles.
pub fn credit(exec: u64, step: u32, from: usize, n: u32) {
    let mut st = state();
    if st.ended.set.contains(&exec) {
        return;
    }
    let ch = ChannelId { exec, step };
    st.credits.entry(ch).or_default().push((from, n));
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

/// Peer `from` of execution `exec` is alive: every channel of it that exists here gets an
/// empty bundle from `from` (no records, but progress for the idle bound of that peer
/// only) and its waker is called.
pub fn touch(exec: u64, from: usize) {
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
            .push_back((from, Bundle::default()));
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
                .for_each(|(_, f)| engine::pool::global().recycle(f.buf));
        }
        keep
    });
    st.failed.remove(&exec);
    st.failed_done.retain(|(ch, _)| ch.exec != exec);
    st.wakers.retain(|ch, _| ch.exec != exec);
    st.credits.retain(|ch, _| ch.exec != exec);
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

impl BusTransport {
    fn peer(&self, to: usize) -> Result<&String> {
        self.peers
            .get(to)
            .ok_or_else(|| EngineError::Internal(format!("no shard {to}")))
    }
}

impl Transport for BusTransport {
    fn headroom(&self) -> usize {
        FRAME_HEADER_LEN
    }

    fn send(&self, to: usize, ch: ChannelId, mut bundle: Bundle) -> Result<()> {
        if to == self.me {
            deliver(ch.exec, ch.step, to, bundle);
            return Ok(());
        }
        let peer = self.peer(to)?;
        let header = FrameHeader {
            exec: ch.exec,
            step: ch.step,
            from: self.me as u32,
        };
        // The header goes into the room left before the bundle; a bundle without that
        // room (not made by the shuffle) is copied into a message instead.
        let sent = match bundle.start.checked_sub(FRAME_HEADER_LEN) {
            Some(at) if write_frame_header(&mut bundle.buf[at..], header) => {
                bus::send_raw(Some(peer), &bundle.buf[at..])
            }
            _ => bus::send(
                Some(peer),
                &Message::Frame {
                    exec: ch.exec,
                    step: ch.step,
                    from: self.me as u32,
                    frame: bundle.body().to_vec(),
                },
            ),
        };
        engine::pool::global().recycle(bundle.buf); // Redis copied it
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

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Bundle)>> {
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

    fn grant(&self, to: usize, ch: ChannelId, n: u32) -> Result<()> {
        if to == self.me {
            credit(ch.exec, ch.step, to, n);
            return Ok(());
        }
        let m = Message::Credit {
            exec: ch.exec,
            step: ch.step,
            from: self.me as u32,
            n,
        };
        // A lost credit only slows that sender down (it ends with the idle bound at worst).
        if !bus::send(Some(self.peer(to)?), &m) {
            crate::redis::ffi::log::warning("Gearshift: could not send shuffle credit");
        }
        Ok(())
    }

    fn take_credits(&self, ch: ChannelId) -> Vec<(usize, u32)> {
        state().credits.remove(&ch).unwrap_or_default()
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
        deliver(77, 1, 1, Bundle::plain(b"early".to_vec()));
        let got = t.recv(ch, Duration::from_millis(10)).unwrap();
        assert_eq!(got, Some((1, Bundle::plain(b"early".to_vec()))));
        forget(77);
        deliver(77, 1, 1, Bundle::plain(b"late".to_vec()));
        assert_eq!(t.recv(ch, Duration::from_millis(10)).unwrap(), None);
        // A failed shard's "done" comes once per channel.
        fail_shard(79, 1);
        let ch = ChannelId { exec: 79, step: 3 };
        let (from, frame) = t.recv(ch, Duration::ZERO).unwrap().unwrap();
        assert_eq!(from, 1);
        let frames = engine::shuffle::unbundle(frame.body()).unwrap();
        assert_eq!(frames.len(), 1);
        assert!(matches!(
            engine::shuffle::decode_frame(frames[0]),
            Ok(engine::shuffle::Frame::Done)
        ));
        assert_eq!(t.recv(ch, Duration::ZERO).unwrap(), None);
        forget(79);
        // A heartbeat reaches a channel that exists as an empty bundle (no frames).
        deliver(80, 2, 1, Bundle::default());
        assert!(t
            .recv(ChannelId { exec: 80, step: 2 }, Duration::ZERO)
            .unwrap()
            .is_some());
        touch(80, 2);
        let (from, beat) = t
            .recv(ChannelId { exec: 80, step: 2 }, Duration::ZERO)
            .unwrap()
            .unwrap();
        assert!(engine::shuffle::unbundle(beat.body()).unwrap().is_empty());
        assert_eq!(from, 2, "a heartbeat is progress of the shard that sent it");
        forget(80);
        // Sending to oneself never touches the bus.
        let own = Bundle::plain(b"self".to_vec());
        t.send(0, ChannelId { exec: 78, step: 0 }, own.clone())
            .unwrap();
        let got = t.recv(ChannelId { exec: 78, step: 0 }, Duration::ZERO);
        assert_eq!(got.unwrap(), Some((0, own)));
    }

    #[test]
    fn credits_wait_per_channel_and_die_with_their_execution() {
        let t = BusTransport {
            me: 0,
            peers: Arc::new(vec!["a".into(), "b".into()]),
        };
        let ch = ChannelId { exec: 91, step: 1 };
        credit(91, 1, 1, 2);
        credit(91, 1, 1, 1);
        credit(91, 2, 1, 5);
        assert_eq!(t.take_credits(ch), vec![(1, 2), (1, 1)]);
        assert!(t.take_credits(ch).is_empty());
        // A credit wakes a parked receiver of its channel.
        let woken = Arc::new(engine::sync::AtomicBool::new(false));
        let flag = Arc::clone(&woken);
        t.on_arrival(
            ch,
            Arc::new(move || flag.store(true, engine::sync::Ordering::SeqCst)),
        );
        t.grant(0, ch, 1).unwrap();
        assert!(woken.load(engine::sync::Ordering::SeqCst));
        assert_eq!(t.take_credits(ch), vec![(0, 1)]);
        forget(91);
        credit(91, 1, 1, 1);
        assert!(t.take_credits(ch).is_empty());
        assert!(t.take_credits(ChannelId { exec: 91, step: 2 }).is_empty());
    }
}
