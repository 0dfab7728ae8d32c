//! The engine's shuffle `Transport` over the cluster bus.
//!
//! Frames for this shard land (main thread) in one inbox keyed by channel; a shuffle step
//! waits on it with its execution's idle bound. Frames may arrive before the execution
//! that reads them has started, so the inbox keeps them until it does; an execution
//! removes its channels when it ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use engine::error::{EngineError, Result};
use engine::shuffle::{ChannelId, Transport};

use super::bus::{self, Message};

type Queues = HashMap<ChannelId, VecDeque<(usize, Vec<u8>)>>;

struct Inbox {
    queues: Mutex<Queues>,
    arrived: Condvar,
}

static INBOX: LazyLock<Inbox> = LazyLock::new(|| Inbox {
    queues: Mutex::new(HashMap::new()),
    arrived: Condvar::new(),
});

fn queues() -> MutexGuard<'static, Queues> {
    INBOX.queues.lock().unwrap_or_else(|e| e.into_inner())
}

/// A frame from shard `from` for (`exec`, `step`) arrived.
pub fn deliver(exec: u64, step: u32, from: usize, frame: Vec<u8>) {
    queues()
        .entry(ChannelId { exec, step })
        .or_default()
        .push_back((from, frame));
    INBOX.arrived.notify_all();
}

/// Drops whatever is left for execution `exec` (it ended).
pub fn forget(exec: u64) {
    queues().retain(|ch, _| ch.exec != exec);
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
        if bus::send(Some(peer), &m) {
            Ok(())
        } else {
            Err(EngineError::Execution(format!(
                "Failed sending records to shard {peer}"
            )))
        }
    }

    fn recv(&self, ch: ChannelId, timeout: Duration) -> Result<Option<(usize, Vec<u8>)>> {
        let deadline = Instant::now() + timeout;
        let mut q = queues();
        loop {
            if let Some(item) = q.get_mut(&ch).and_then(|v| v.pop_front()) {
                return Ok(Some(item));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            q = INBOX
                .arrived
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
