//! The `Transport` seam and its in-process implementation (N shards in one process, for
//! tests and benches). The module implements it over the Redis Cluster.

use std::collections::{HashMap, VecDeque};
use std::sync::Condvar;
use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};
use crate::sync::{Arc, Mutex};

/// Frames of one shuffle step of one execution travel on their own channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelId {
    pub exec: u64,
    pub step: u32,
}

/// Moves frames between shards. `send` must not block for long; `recv` waits at most
/// `timeout` and returns `Ok(None)` when nothing came.
pub trait Transport: Send + Sync {
    fn send(&self, to: usize, ch: ChannelId, frame: Vec<u8>) -> Result<()>;
    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>>;
}

type Inbox = Mutex<HashMap<ChannelId, VecDeque<(usize, Vec<u8>)>>>;

/// N shards' inboxes in one process.
#[derive(Debug)]
pub struct InProcessNetwork {
    inboxes: Vec<(Inbox, Condvar)>,
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
                .map(|_| (Mutex::new(HashMap::new()), Condvar::new()))
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
        let (inbox, cv) = self
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
        Ok(())
    }

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>> {
        let (inbox, cv) = &self.net.inboxes[self.me];
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
