//! `ShuffleOp`: the operator behind `collect` (everything to the initiator) and
//! `repartition` (each record to the owner of its partition key's slot).
//!
//! Local records pass straight through; remote ones are encoded into pooled buffers and
//! sent one frame per batch. At `finish` the operator announces "done" and waits — with
//! the execution's idle bound — for every peer that sends to it.

use super::codec::{decode_frame_with, encode_data, encode_done, Frame};
use super::partitioner::Partitioner;
use super::transport::ChannelId;
use super::ShuffleCtx;
use crate::batch::Batch;
use crate::error::{EngineError, Result};
use crate::ops::{Emit, Operator};

pub struct ShuffleOp {
    ctx: ShuffleCtx,
    ch: ChannelId,
    collect: bool,
}

impl ShuffleOp {
    pub fn new(ctx: ShuffleCtx, step: u32, collect: bool) -> Self {
        let ch = ChannelId {
            exec: ctx.exec_id,
            step,
        };
        ShuffleOp { ctx, ch, collect }
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
        let mut waiting = self.expected_senders();
        while waiting > 0 {
            let Some((_, bytes)) = self.ctx.transport.recv(self.ch, self.ctx.idle_timeout)? else {
                return Err(EngineError::Execution("Execution max idle reached".into()));
            };
            match decode_frame_with(&bytes, self.ctx.foreign.as_deref())? {
                Frame::Done => waiting -= 1,
                Frame::Data(mut b) => {
                    b.partition_keys = None;
                    out.push(b);
                }
            }
        }
        Ok(())
    }
}
