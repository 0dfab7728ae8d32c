//! Moving records between shards: the partitioner (Redis hash slots), the frame codec,
//! the transport seam and the shuffle operator behind `collect` and `repartition`.
//!
//! No I/O lives here: a [`Transport`] moves bundles of frames (in-process for tests, the
//! Redis Cluster in the module), and credits for the flow control (`credit`).
//!
//! Copies per record (docs/data-path.md has the table): sending, a batch is encoded
//! straight into its destination's bundle, a pooled buffer (one copy; `repartition` of key
//! rows gathers them per destination first, one more); receiving, the transport's buffer is
//! made an Arrow buffer given back to the pool when its last user drops, key batches are
//! slices of it (no copy), datums and host records are decoded out of it (one copy, the
//! host's own for Python records). The module's bus adds one copy out of Redis's buffer on
//! receipt. Depends on `batch`, `datum`, `pool`, `ops`, `error`.

mod codec;
mod credit;
mod frame_io;
mod key_codec;
mod op;
mod partitioner;
mod peers;
mod transport;

pub use codec::{
    bundle_data, bundle_done, bundle_push, decode_bundle, decode_frame, decode_frame_with,
    decode_shared, encode_data, encode_done, unbundle, Frame,
};
pub use credit::Credits;
pub use op::ShuffleOp;
pub use partitioner::{crc16, key_hash_slot, Partitioner, SlotMap, SLOTS};
pub use transport::{Bundle, ChannelId, InProcessNetwork, Transport};

use crate::pool::BufferPool;
use crate::sync::Arc;
use std::time::Duration;

/// What a shuffle step needs to know about the cluster for one execution.
#[derive(Clone)]
pub struct ShuffleCtx {
    /// This shard's index in `0..shards`.
    pub me: usize,
    pub shards: usize,
    /// The shard that started the execution (receives `collect`).
    pub initiator: usize,
    /// Identifies the execution on every shard.
    pub exec_id: u64,
    pub transport: Arc<dyn Transport>,
    pub slots: Arc<SlotMap>,
    /// A shard silent for longer than this ends the execution (1.2's max idle).
    pub idle_timeout: Duration,
    pub pool: Arc<BufferPool>,
    /// Rebuilds host records arriving from other shards (none: only native records travel).
    pub foreign: Option<Arc<dyn crate::batch::ForeignDecoder>>,
    /// Bundles in flight per destination before the sender queues (0: unlimited).
    pub credit_window: usize,
}

impl std::fmt::Debug for ShuffleCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShuffleCtx")
            .field("me", &self.me)
            .field("shards", &self.shards)
            .finish()
    }
}
