//! `ShuffleOp`: the operator behind `collect` (everything to the initiator) and
//! `repartition` (each record to the owner of its partition key's slot).
//!
//! Local records pass straight through; remote ones are encoded and gathered per
//! destination into bundles sent once they reach `BUNDLE_BYTES` (and at the end), so a
//! message carries many batch parts. At `finish` the operator announces "done" and waits — with
//! the execution's idle bound — for every peer that sends to it. In a stage the wait never
//! holds a worker (`try_finish`): the operator takes what has arrived, then parks, to be
//! woken by the transport on the next arrival or by the timer at its idle deadline, so
//! shuffles waiting on each other across shards cannot starve a bounded pool.

use super::codec::{bundle_push, decode_frame_with, encode_data, encode_done, unbundle, Frame};
use super::partitioner::Partitioner;
use super::transport::ChannelId;
use super::ShuffleCtx;
use crate::batch::Batch;
use crate::error::{EngineError, Result};
use crate::ops::{wake_at, Emit, Finish, Operator, Waker};
use crate::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a blocking `finish` waits per receive (outside a stage).
const POLL_SLICE: Duration = Duration::from_millis(2);
/// Messages taken per `try_finish` call (the stage flushes between calls).
const FRAMES_PER_CALL: usize = 8;
/// A bundle is sent once it holds this much (DESIGN §7: frames of at least 64 KiB).
const BUNDLE_BYTES: usize = 64 * 1024;

pub struct ShuffleOp {
    ctx: ShuffleCtx,
    ch: ChannelId,
    collect: bool,
    /// Set once "done" was sent: peers still to finish, and when one last made progress.
    waiting: Option<(usize, Instant)>,
    /// The stage's waker (none outside a stage: `finish` then blocks).
    waker: Option<Waker>,
    /// When the idle timer last set will fire.
    timer_at: Option<Instant>,
    /// Encoded batch parts not yet sent, per destination shard (pooled buffers).
    bundles: Vec<Vec<u8>>,
    /// Largest encoded part so far: the size of the pooled scratch asked for next.
    scratch_hint: usize,
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
        ShuffleOp {
            ctx,
            ch,
            collect,
            waiting: None,
            waker: None,
            timer_at: None,
            bundles: Vec::new(),
            scratch_hint: 0,
        }
    }

    /// Adds `b` to `to`'s bundle, sending the bundle once it is large enough.
    fn send(&mut self, to: usize, b: &Batch) -> Result<()> {
        let mut buf = self.ctx.pool.take_capacity(self.scratch_hint);
        encode_data(b, &mut buf)?;
        self.scratch_hint = self.scratch_hint.max(buf.len());
        if self.bundles.len() < self.ctx.shards {
            self.bundles.resize_with(self.ctx.shards, Vec::new);
        }
        if self.bundles[to].capacity() == 0 {
            // Room for a full bundle plus this part: no regrowth on the way to BUNDLE_BYTES.
            self.bundles[to] = self.ctx.pool.take_vec(BUNDLE_BYTES + buf.len() + 8);
        }
        bundle_push(&mut self.bundles[to], &buf);
        if self.bundles[to].len() >= BUNDLE_BYTES {
            self.flush(to)?;
        }
        Ok(())
    }

    /// Sends what `to`'s bundle holds.
    fn flush(&mut self, to: usize) -> Result<()> {
        match self.bundles.get_mut(to) {
            Some(b) if !b.is_empty() => {
                let bundle = std::mem::take(b);
                self.ctx.transport.send(to, self.ch, bundle)
            }
            _ => Ok(()),
        }
    }

    fn destinations(&self, b: &Batch) -> Result<Vec<usize>> {
        let keys = b
            .partition_keys
            .as_ref()
            .ok_or_else(|| EngineError::Internal("repartition without extracted keys".into()))?;
        Ok(keys.iter().map(|k| self.ctx.slots.shard_of(k)).collect())
    }

    /// How many peers will send to this shard.
    fn expected_senders(&self) -> usize {
        if self.collect && self.ctx.me != self.ctx.initiator {
            0
        } else {
            self.ctx.shards - 1
        }
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
        for (shard, mut part) in parts.drain(..).enumerate() {
            if shard == self.ctx.me {
                part.partition_keys = None;
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
        // Park: woken by the next arrival, or at the idle deadline.
        self.ctx.transport.on_arrival(self.ch, Arc::clone(&waker));
        let deadline = self.waiting.map_or_else(Instant::now, |w| w.1) + self.ctx.idle_timeout;
        if self.timer_at.is_none_or(|t| t <= Instant::now()) {
            self.timer_at = Some(deadline);
            wake_at(deadline, waker);
        }
        // A frame that came before the waker was registered would not wake us: look again.
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
    /// Takes what has arrived (waiting at most `wait` for a frame); the idle bound counts
    /// from the last frame.
    fn poll(&mut self, out: &mut Emit, wait: Duration) -> Result<Poll> {
        let (mut left, mut progress) = match self.waiting {
            Some(w) => w,
            None => {
                self.announce_done()?;
                (self.expected_senders(), Instant::now())
            }
        };
        let mut taken = 0;
        let mut polled = Poll::Empty;
        while left > 0 {
            if taken == FRAMES_PER_CALL {
                polled = Poll::Busy;
                break;
            }
            let Some((_, bytes)) = self.ctx.transport.recv(self.ch, wait)? else {
                if progress.elapsed() >= self.ctx.idle_timeout {
                    return Err(EngineError::Execution("Execution max idle reached".into()));
                }
                break;
            };
            taken += 1;
            progress = Instant::now();
            for frame in unbundle(&bytes)? {
                match decode_frame_with(frame, self.ctx.foreign.as_deref())? {
                    Frame::Done => left = left.saturating_sub(1),
                    Frame::Data(mut b) => {
                        b.partition_keys = None;
                        out.push(b);
                    }
                }
            }
            self.ctx.pool.recycle(bytes);
        }
        self.waiting = Some((left, progress));
        Ok(if left == 0 { Poll::Done } else { polled })
    }
}

impl ShuffleOp {
    /// Tells every shard this one sends to that it has sent everything (the "done" rides
    /// in the last bundle).
    fn announce_done(&mut self) -> Result<()> {
        let targets: Vec<usize> = if self.collect {
            vec![self.ctx.initiator]
        } else {
            (0..self.ctx.shards).collect()
        };
        if self.bundles.len() < self.ctx.shards {
            self.bundles.resize_with(self.ctx.shards, Vec::new);
        }
        let mut done = Vec::new();
        encode_done(&mut done);
        let me = self.ctx.me;
        for t in targets.into_iter().filter(|&t| t != me) {
            bundle_push(&mut self.bundles[t], &done);
            self.flush(t)?;
        }
        Ok(())
    }
}
