//! `ShuffleOp`: the operator behind `collect` (everything to the initiator) and
//! `repartition` (each record to the owner of its partition key's slot).
//!
//! Local records pass straight through; remote ones are encoded straight into their
//! destination's bundle (behind the room the transport keeps for its header), sent once
//! it reaches `BUNDLE_BYTES` (and at the end), so a message carries many batch parts.
//! Sends go through the credit window (`credit.rs`): at most `credit_window` bundles in
//! flight per destination, the rest queued here until the receiver, which returns a credit
//! for each bundle it takes, catches up. The receiver takes arrived bundles while it
//! processes its own input too, not only at the end, so credits flow during the run.
//! At `finish` the operator announces "done" (behind any queued bundles) and waits — with
//! the execution's idle bound — for every peer that sends to it and for its own queues to
//! drain. In a stage the wait never holds a worker (`try_finish`): the operator takes what
//! has arrived, then parks, to be woken by the transport on the next arrival or credit, or
//! by the timer at its idle deadline, so shuffles waiting on each other across shards
//! cannot starve a bounded pool.

use super::codec::{bundle_data, bundle_done, decode_bundle, Frame};
use super::credit::Credits;
use super::partitioner::Partitioner;
use super::peers::Peers;
use super::transport::{Bundle, ChannelId};
use super::ShuffleCtx;
use crate::batch::Batch;
use crate::error::{EngineError, Result};
use crate::ops::{wake_at, Emit, Finish, Operator, Waker};
use crate::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a blocking `finish` waits per receive (outside a stage).
const POLL_SLICE: Duration = Duration::from_millis(2);
/// Messages taken per `try_finish` call (the stage flushes between calls), and per
/// `process` call.
const FRAMES_PER_CALL: usize = 8;
/// A bundle is sent once it holds this much (DESIGN §7: frames of at least 64 KiB; at
/// 256 KiB a run sends a quarter of the bus messages, and takes the Redis lock to send
/// a quarter as often, as at 64 KiB).
const BUNDLE_BYTES: usize = 256 * 1024;

pub struct ShuffleOp {
    ctx: ShuffleCtx,
    ch: ChannelId,
    collect: bool,
    /// Peers still to send "done" to this shard.
    left: usize,
    /// Those peers, each with when it was last heard from (the idle bound is per peer).
    peers: Peers,
    /// Set once "done" was sent: when the shuffle last made progress (the idle bound
    /// while only credits are awaited).
    waiting: Option<Instant>,
    /// The stage's waker (none outside a stage: `finish` then blocks).
    waker: Option<Waker>,
    /// When the idle timer last set will fire.
    timer_at: Option<Instant>,
    /// Bundles being filled, per destination shard (empty: none started); each starts
    /// with the transport's header room.
    bundles: Vec<Vec<u8>>,
    /// Credits per destination, and bundles waiting for one.
    credits: Credits<Bundle>,
}

/// What one look at the inbox found.
enum Poll {
    Done,
    /// Stopped after `FRAMES_PER_CALL` frames: more may be waiting.
    Busy,
    Empty,
}

impl ShuffleOp {
    pub fn new(ctx: ShuffleCtx, step: u32, collect: bool) -> Self {
        let ch = ChannelId {
            exec: ctx.exec_id,
            step,
        };
        let left = if collect && ctx.me != ctx.initiator {
            0
        } else {
            ctx.shards - 1
        };
        let credits = Credits::new(ctx.credit_window, ctx.shards);
        let peers = Peers::new(ctx.shards, ctx.me, left > 0);
        ShuffleOp {
            ctx,
            ch,
            collect,
            left,
            peers,
            waiting: None,
            waker: None,
            timer_at: None,
            bundles: Vec::new(),
            credits,
        }
    }

    /// Encodes `b` into `to`'s bundle, sending the bundle once it is large enough.
    fn send(&mut self, to: usize, b: &Batch) -> Result<()> {
        let room = self.ctx.transport.headroom();
        bundle_data(self.bundle_for(to), b)?;
        if self.bundles[to].len() - room >= BUNDLE_BYTES {
            self.flush(to)?;
        }
        Ok(())
    }

    /// `to`'s bundle, started (header room reserved) if it was not.
    fn bundle_for(&mut self, to: usize) -> &mut Vec<u8> {
        if self.bundles.len() < self.ctx.shards {
            self.bundles.resize_with(self.ctx.shards, Vec::new);
        }
        if self.bundles[to].is_empty() {
            let mut buf = self.new_buffer();
            buf.resize(self.ctx.transport.headroom(), 0);
            self.bundles[to] = buf;
        }
        &mut self.bundles[to]
    }

    /// A bundle buffer from the pool (one size class: room for a full bundle and the
    /// part that tips it over); the bus transport gives it back once Redis copied it.
    fn new_buffer(&self) -> Vec<u8> {
        self.ctx.pool.take_vec(2 * BUNDLE_BYTES)
    }

    /// Sends what `to`'s bundle holds, or queues it when `to` has no credit left.
    fn flush(&mut self, to: usize) -> Result<()> {
        let room = self.ctx.transport.headroom();
        match self.bundles.get_mut(to) {
            Some(b) if b.len() > room => {
                let bundle = Bundle {
                    buf: std::mem::take(b),
                    start: room,
                };
                match self.credits.offer(to, bundle) {
                    Some(bundle) => self.ctx.transport.send(to, self.ch, bundle),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Sends the bundles that credits returned since the last look; true if any came.
    fn release(&mut self) -> Result<bool> {
        let granted = self.ctx.transport.take_credits(self.ch);
        for &(from, n) in &granted {
            for bundle in self.credits.grant(from, n as usize) {
                self.ctx.transport.send(from, self.ch, bundle)?;
            }
        }
        Ok(!granted.is_empty())
    }

    fn destinations(&self, b: &Batch) -> Result<Vec<usize>> {
        let keys = b
            .partition_keys
            .as_ref()
            .ok_or_else(|| EngineError::Internal("repartition without extracted keys".into()))?;
        Ok(keys.iter().map(|k| self.ctx.slots.shard_of(k)).collect())
    }
}

impl Operator for ShuffleOp {
    fn name(&self) -> &'static str {
        if self.collect {
            "collect"
        } else {
            "repartition"
        }
    }

    fn handles_errors(&self) -> bool {
        true
    }

    fn process(&mut self, mut input: Batch, out: &mut Emit) -> Result<()> {
        // Credits and bundles that came meanwhile: queued sends go on, senders get credit.
        self.release()?;
        if self.left > 0 {
            self.take_arrived(out, Duration::ZERO)?;
        }
        if self.collect {
            if self.ctx.me == self.ctx.initiator {
                out.push(input);
                return Ok(());
            }
            return self.send(self.ctx.initiator, &input);
        }
        // Error records have no key: they stay on this shard.
        let errors = std::mem::take(&mut input.errors);
        if !errors.is_empty() {
            out.push(Batch::errors_only(errors));
        }
        if input.is_empty() {
            return Ok(());
        }
        let dest = self.destinations(&input)?;
        let mut parts = input.partition(&dest, self.ctx.shards);
        // Each part keeps its keys: a keyed step after the shuffle (groupby's reduce) uses
        // them instead of calling the extractor again (1.2 calls it once per record).
        for (shard, part) in parts.drain(..).enumerate() {
            if shard == self.ctx.me {
                out.push(part);
            } else if !part.is_empty() {
                self.send(shard, &part)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        while !matches!(self.poll(out, POLL_SLICE)?, Poll::Done) {}
        Ok(())
    }

    fn try_finish(&mut self, out: &mut Emit) -> Result<Finish> {
        let Some(waker) = self.waker.as_ref().map(Arc::clone) else {
            // Outside a stage: nobody would wake us, so wait a slice and ask to run again.
            return Ok(match self.poll(out, POLL_SLICE)? {
                Poll::Done => Finish::Done,
                _ => Finish::Yield,
            });
        };
        match self.poll(out, Duration::ZERO)? {
            Poll::Done => return Ok(Finish::Done),
            Poll::Busy => return Ok(Finish::Yield),
            Poll::Empty => {}
        }
        // Park: woken by the next arrival or credit, or at the idle deadline.
        self.ctx.transport.on_arrival(self.ch, Arc::clone(&waker));
        let deadline =
            self.idle_since(self.waiting.unwrap_or_else(Instant::now)) + self.ctx.idle_timeout;
        if self.timer_at.is_none_or(|t| t <= Instant::now()) {
            self.timer_at = Some(deadline);
            wake_at(deadline, waker);
        }
        // What came before the waker was registered would not wake us: look again.
        Ok(match self.poll(out, Duration::ZERO)? {
            Poll::Done => Finish::Done,
            Poll::Busy => Finish::Yield,
            // Records taken so far are handed on by the stage before it idles.
            Poll::Empty => Finish::Parked,
        })
    }

    fn set_waker(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }
}

impl ShuffleOp {
    /// Announces "done" (the first time), then takes what has arrived (waiting at most
    /// `wait` for a bundle) and sends what credits release; the idle bound counts from the
    /// last progress. Done once every peer said "done" and nothing waits for credit.
    fn poll(&mut self, out: &mut Emit, wait: Duration) -> Result<Poll> {
        let mut progress = match self.waiting {
            Some(p) => p,
            None => {
                self.announce_done()?;
                self.peers.start(Instant::now());
                Instant::now()
            }
        };
        let mut polled = Poll::Empty;
        loop {
            if self.release()? {
                progress = Instant::now();
            }
            if self.left == 0 && self.credits.queued() == 0 {
                polled = Poll::Done;
                break;
            }
            match self.take_arrived(out, wait)? {
                0 => {
                    if self.idle_since(progress).elapsed() >= self.ctx.idle_timeout {
                        return Err(EngineError::Execution("Execution max idle reached".into()));
                    }
                    break;
                }
                FRAMES_PER_CALL => {
                    progress = Instant::now();
                    if self.left > 0 {
                        polled = Poll::Busy;
                        break;
                    }
                }
                _ => progress = Instant::now(),
            }
        }
        self.waiting = Some(progress);
        Ok(polled)
    }

    /// Where the idle bound counts from: the longest-silent peer still to say "done", or,
    /// once none is, the last progress (`progress`) of the sends waiting for credit.
    fn idle_since(&self, progress: Instant) -> Instant {
        self.peers.oldest().unwrap_or(progress)
    }

    /// Takes up to `FRAMES_PER_CALL` arrived bundles (waiting at most `wait` for the
    /// first), decoding their frames into `out`, and gives their senders credit for them.
    /// Returns how many it took.
    fn take_arrived(&mut self, out: &mut Emit, wait: Duration) -> Result<usize> {
        let mut taken = 0;
        let mut granted = vec![0u32; self.ctx.shards];
        let mut wait = wait;
        while taken < FRAMES_PER_CALL {
            let Some((from, bundle)) = self.ctx.transport.recv(self.ch, wait)? else {
                break;
            };
            wait = Duration::ZERO;
            taken += 1;
            self.peers.heard(from, Instant::now());
            if let Some(g) = granted.get_mut(from).filter(|_| from != self.ctx.me) {
                *g += 1;
            }
            // Key batches borrow the received buffer; it goes back to the pool when the
            // last of them drops.
            let Bundle { buf, start } = bundle;
            let body = self.ctx.pool.adopt(buf).into_buffer();
            let body = body.slice(start.min(body.len()));
            let (left, peers) = (&mut self.left, &mut self.peers);
            decode_bundle(&body, self.ctx.foreign.as_deref(), |f| match f {
                Frame::Done => {
                    *left = left.saturating_sub(1);
                    peers.done(from);
                }
                Frame::Data(b) => out.push(b),
            })?;
        }
        for (to, n) in granted.into_iter().enumerate().filter(|&(_, n)| n > 0) {
            self.ctx.transport.grant(to, self.ch, n)?;
        }
        Ok(taken)
    }

    /// Tells every shard this one sends to that it has sent everything (the "done" rides
    /// in the last bundle, behind any bundle still waiting for credit).
    fn announce_done(&mut self) -> Result<()> {
        let targets: Vec<usize> = if self.collect {
            vec![self.ctx.initiator]
        } else {
            (0..self.ctx.shards).collect()
        };
        let me = self.ctx.me;
        for t in targets.into_iter().filter(|&t| t != me) {
            bundle_done(self.bundle_for(t));
            self.flush(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "op_tests.rs"]
mod tests;
