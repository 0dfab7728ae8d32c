//! The `Transport` seam and its in-process implementation (N shards in one process, for
//! tests and benches). The module implements it over the Redis Cluster.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};
use crate::ops::Waker;
use crate::sync::{Arc, Condvar, Mutex};

/// Frames of one shuffle step of one execution travel on their own channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelId {
    pub exec: u64,
    pub step: u32,
}

/// A bundle of frames as it travels. `buf[start..]` is the payload; the first `start`
/// bytes are the room the transport asked for (`Transport::headroom`), where it writes its
/// own message header in place on send, or the header a received message came with. So
/// the bundle is handed to the wire, and taken from it, without moving its frames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    pub buf: Vec<u8>,
    pub start: usize,
}

impl Bundle {
    /// A bundle whose payload is all of `buf` (no header room).
    pub fn plain(buf: Vec<u8>) -> Self {
        Bundle { buf, start: 0 }
    }

    /// The frames (empty if `start` is past the end).
    pub fn body(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }
}

/// Moves bundles between shards. `send` must not block for long; `recv` waits at most
/// `timeout` and returns `Ok(None)` when nothing came (`Duration::ZERO`: do not wait).
/// `on_arrival` registers a one-shot waker for the next bundle or credit on a channel: a
/// receiver that found nothing registers, then checks again, so no arrival is missed.
/// Credits (`grant`, `take_credits`) carry the shuffle's flow control (`credit.rs`).
pub trait Transport: Send + Sync {
    /// Bytes a sender leaves free at the front of each bundle for this transport's header.
    fn headroom(&self) -> usize {
        0
    }
    fn send(&self, to: usize, ch: ChannelId, bundle: Bundle) -> Result<()>;
    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Bundle)>>;
    fn on_arrival(&self, ch: ChannelId, waker: Waker);
    /// Gives shard `to` `n` credits on `ch` (this shard took `n` of its bundles).
    fn grant(&self, to: usize, ch: ChannelId, n: u32) -> Result<()>;
    /// Credits granted to this shard on `ch` since the last call: (granting shard, n).
    fn take_credits(&self, ch: ChannelId) -> Vec<(usize, u32)>;
}

type Inbox = Mutex<HashMap<ChannelId, VecDeque<(usize, Bundle)>>>;
type Wakers = Mutex<HashMap<ChannelId, Vec<Waker>>>;
type CreditBox = Mutex<HashMap<ChannelId, Vec<(usize, u32)>>>;

/// One shard's inbox: bundles, their condvar, parked receivers and credits granted to it.
struct ShardBox {
    inbox: Inbox,
    arrived: Condvar,
    wakers: Wakers,
    credits: CreditBox,
}

impl ShardBox {
    /// Wakes whoever waits on `ch` here.
    fn wake(&self, ch: ChannelId) {
        self.arrived.notify_all();
        let woken = self.wakers.lock().expect("wakers lock").remove(&ch);
        for w in woken.into_iter().flatten() {
            w();
        }
    }
}

/// N shards' inboxes in one process.
pub struct InProcessNetwork {
    inboxes: Vec<ShardBox>,
}

impl std::fmt::Debug for InProcessNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessNetwork")
            .field("shards", &self.inboxes.len())
            .finish()
    }
}

/// One shard's end of an [`InProcessNetwork`].
#[derive(Debug)]
pub struct InProcessTransport {
    me: usize,
    net: Arc<InProcessNetwork>,
}

impl InProcessTransport {
    fn shard(&self, to: usize) -> Result<&ShardBox> {
        self.net
            .inboxes
            .get(to)
            .ok_or_else(|| EngineError::Internal(format!("no shard {to}")))
    }
}

impl InProcessNetwork {
    /// A network of `n` shards; returns each shard's transport.
    // The network itself is only reachable through the transports it hands out, so `new`
    // returns those rather than `Self`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(n: usize) -> Vec<Arc<dyn Transport>> {
        let net = Arc::new(InProcessNetwork {
            inboxes: (0..n)
                .map(|_| ShardBox {
                    inbox: Mutex::new(HashMap::new()),
                    arrived: Condvar::new(),
                    wakers: Mutex::new(HashMap::new()),
                    credits: Mutex::new(HashMap::new()),
                })
                .collect(),
        });
        (0..n)
            .map(|me| {
                Arc::new(InProcessTransport {
                    me,
                    net: Arc::clone(&net),
                }) as Arc<dyn Transport>
            })
            .collect()
    }
}

impl Transport for InProcessTransport {
    fn send(&self, to: usize, ch: ChannelId, bundle: Bundle) -> Result<()> {
        let shard = self.shard(to)?;
        shard
            .inbox
            .lock()
            .expect("inbox lock")
            .entry(ch)
            .or_default()
            .push_back((self.me, bundle));
        shard.wake(ch);
        Ok(())
    }

    fn on_arrival(&self, ch: ChannelId, waker: Waker) {
        let shard = &self.net.inboxes[self.me];
        shard
            .wakers
            .lock()
            .expect("wakers lock")
            .entry(ch)
            .or_default()
            .push(waker);
    }

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Bundle)>> {
        let shard = &self.net.inboxes[self.me];
        let deadline = Instant::now() + timeout;
        let mut guard = shard.inbox.lock().expect("inbox lock");
        loop {
            if let Some(q) = guard.get_mut(&ch) {
                if let Some(item) = q.pop_front() {
                    if q.is_empty() {
                        guard.remove(&ch);
                    }
                    return Ok(Some(item));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            guard = shard
                .arrived
                .wait_timeout(guard, deadline - now)
                .expect("inbox lock")
                .0;
        }
    }

    fn grant(&self, to: usize, ch: ChannelId, n: u32) -> Result<()> {
        let shard = self.shard(to)?;
        shard
            .credits
            .lock()
            .expect("credits lock")
            .entry(ch)
            .or_default()
            .push((self.me, n));
        shard.wake(ch);
        Ok(())
    }

    fn take_credits(&self, ch: ChannelId) -> Vec<(usize, u32)> {
        let shard = &self.net.inboxes[self.me];
        let mut credits = shard.credits.lock().expect("credits lock");
        credits.remove(&ch).unwrap_or_default()
    }
}
