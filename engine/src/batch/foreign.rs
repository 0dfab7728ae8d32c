//! `ForeignColumn`: a column of host objects (e.g. Python values) the engine treats as
//! opaque. The host implements it; the engine only counts, slices and partitions rows
//! (moving handles, no copy) and, to send them to another shard, asks the host to encode
//! them into the frame (Python: `marshal`, `python/src/column.rs`).

use std::any::Any;
use std::fmt::Debug;

/// A column of host-owned records. Dropping it must be safe on any thread.
pub trait ForeignColumn: Send + Debug {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Rows `start..end`.
    fn slice(self: Box<Self>, start: usize, end: usize) -> Box<dyn ForeignColumn>;
    /// Rows split into `n` columns by `dest`.
    fn partition(self: Box<Self>, dest: &[usize], n: usize) -> Vec<Box<dyn ForeignColumn>>;
    /// The concrete column, for the host that made it.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
    /// Serialises the rows for another shard (`Err` text becomes the execution's error).
    /// Rows that cannot be serialised are left out and reported in `errors`, 1.2's way.
    fn encode(&self, _out: &mut Vec<u8>, _errors: &mut Vec<String>) -> Result<(), String> {
        Err("Failed serializing record".into())
    }
    /// The same records as a native key batch, when the host's rows are reader records
    /// it made from that batch and has not changed: a shuffle then sends the key batch
    /// instead of serialising host objects (the receiver gets a key batch).
    fn as_keys(&self) -> Option<&super::KeyColumns> {
        None
    }
}

/// Rebuilds a [`ForeignColumn`] from [`ForeignColumn::encode`]'s bytes on the receiving
/// shard (the host implements it; the shuffle carries it in its context).
pub trait ForeignDecoder: Send + Sync {
    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn ForeignColumn>, String>;
}
