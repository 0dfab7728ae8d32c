//! `ForeignColumn`: a column of host objects (e.g. Python values) the engine treats as
//! opaque. The host implements it; the engine only counts, slices and partitions rows.

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
}
