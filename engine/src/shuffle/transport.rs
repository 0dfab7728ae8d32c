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

/// Moves frames between shards. `send` must not block for long; `recv` waits at most
/// `timeout` and returns `Ok(None)` when nothing came (`Duration::ZERO`: do not wait).
/// `on_arrival` registers a one-shot waker for the next frame on a channel: a receiver
/// that found nothing registers, then checks again, so no arrival is missed.
pub trait Transport: Send + Sync {
    fn send(&self, to: usize, ch: ChannelId, frame: Vec<u8>) -> Result<()>;
    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>>;
    fn on_arrival(&self, ch: ChannelId, waker: Waker);
}

type Inbox = Mutex<HashMap<ChannelId, VecDeque<(usize, Vec<u8>)>>>;
type Wakers = Mutex<HashMap<ChannelId, Vec<Waker>>>;

/// N shards' inboxes in one process.
pub struct InProcessNetwork {
    inboxes: Vec<(Inbox, Condvar, Wakers)>,
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

impl InProcessNetwork {
    /// A network of `n` shards; returns each shard's transport.
    // The network itself is only reachable through the transports it hands out, so `new`
    // returns those rather than `Self`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(n: usize) -> Vec<Arc<dyn Transport>> {
        let net = Arc::new(InProcessNetwork {
            inboxes: (0..n)
                .map(|_| {
                    (
                        Mutex::new(HashMap::new()),
                        Condvar::new(),
                        Mutex::new(HashMap::new()),
                    )
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
    fn send(&self, to: usize, ch: ChannelId, frame: Vec<u8>) -> Result<()> {
        let (inbox, cv, wakers) = self
            .net
            .inboxes
            .get(to)
            .ok_or_else(|| EngineError::Internal(format!("no shard {to}")))?;
        inbox
            .lock()
            .expect("inbox lock")
            .entry(ch)
            .or_default()
            .push_back((self.me, frame));
        cv.notify_all();
        let woken = wakers.lock().expect("wakers lock").remove(&ch);
        for w in woken.into_iter().flatten() {
            w();
        }
        Ok(())
    }

    fn on_arrival(&self, ch: ChannelId, waker: Waker) {
        let (_, _, wakers) = &self.net.inboxes[self.me];
        wakers
            .lock()
            .expect("wakers lock")
            .entry(ch)
            .or_default()
            .push(waker);
    }

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>> {
        let (inbox, cv, _) = &self.net.inboxes[self.me];
        let deadline = Instant::now() + timeout;
        let mut guard = inbox.lock().expect("inbox lock");
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
            guard = cv
                .wait_timeout(guard, deadline - now)
                .expect("inbox lock")
                .0;
        }
    }
}
