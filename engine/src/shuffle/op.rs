//! `ShuffleOp`: the operator behind `collect` (everything to the initiator) and
//! `repartition` (each record to the owner of its partition key's slot).
//!
//! Local records pass straight through; remote ones are encoded into pooled buffers and
//! sent one frame per batch. At `finish` the operator announces "done" and waits — with
//! the execution's idle bound — for every peer that sends to it. The wait is cooperative
//! (`try_finish`): each call waits at most `POLL_SLICE`, then the stage yields its worker,
//! so shuffles waiting on each other across shards cannot starve a bounded pool.

use super::codec::{decode_frame_with, encode_data, encode_done, Frame};
use super::partitioner::Partitioner;
use super::transport::ChannelId;
use super::ShuffleCtx;
use crate::batch::Batch;
use crate::error::{EngineError, Result};
use crate::ops::{Emit, Operator};
use std::time::{Duration, Instant};

/// Longest a `try_finish` call waits for a frame before yielding the worker.
const POLL_SLICE: Duration = Duration::from_millis(2);
/// Frames taken per `try_finish` call (the stage flushes between calls).
const FRAMES_PER_CALL: usize = 8;

pub struct ShuffleOp {
    ctx: ShuffleCtx,
    ch: ChannelId,
    collect: bool,
    /// Set once "done" was sent: peers still to finish, and when one last made progress.
    waiting: Option<(usize, Instant)>,
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
        }
    }

    fn send(&self, to: usize, b: &Batch) -> Result<()> {
        let mut buf = crate::pool::BufferPool::take(&self.ctx.pool);
        encode_data(b, &mut buf)?;
        self.ctx.transport.send(to, self.ch, buf.to_vec())
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
        while !self.try_finish(out)? {}
        Ok(())
    }

    fn try_finish(&mut self, out: &mut Emit) -> Result<bool> {
        let (mut left, mut progress) = match self.waiting {
            Some(w) => w,
            None => {
                self.announce_done()?;
                (self.expected_senders(), Instant::now())
            }
        };
        let mut taken = 0;
        while left > 0 && taken < FRAMES_PER_CALL {
            let Some((_, bytes)) = self.ctx.transport.recv(self.ch, POLL_SLICE)? else {
                if progress.elapsed() >= self.ctx.idle_timeout {
                    return Err(EngineError::Execution("Execution max idle reached".into()));
                }
                break;
            };
            taken += 1;
            progress = Instant::now();
            match decode_frame_with(&bytes, self.ctx.foreign.as_deref())? {
                Frame::Done => left -= 1,
                Frame::Data(mut b) => {
                    b.partition_keys = None;
                    out.push(b);
                }
            }
        }
        self.waiting = Some((left, progress));
        Ok(left == 0)
    }
}

impl ShuffleOp {
    /// Tells every shard this one sends to that it has sent everything.
    fn announce_done(&self) -> Result<()> {
        let targets: Vec<usize> = if self.collect {
            vec![self.ctx.initiator]
        } else {
            (0..self.ctx.shards).collect()
        };
        for t in targets.into_iter().filter(|&t| t != self.ctx.me) {
            let mut done = Vec::new();
            encode_done(&mut done);
            self.ctx.transport.send(t, self.ch, done)?;
        }
        Ok(())
    }
}
