//! `Nested`: per-row ranges over flat child arrays, the layout of hash values (entry
//! offsets + fields + values, like an Arrow map) and list values (offsets + items) in key
//! columns. Depends on nothing in the crate.

use arrow_array::BinaryArray;
use arrow_buffer::{NullBuffer, OffsetBuffer};

/// Per-row ranges of child items: row `i` owns items `offsets[i]..offsets[i+1]` of each
/// child (a hash has two children, fields and values; a list has one, its items).
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    pub offsets: OffsetBuffer<i32>,
    /// Null on rows of another type; `None` when every row has this type.
    pub nulls: Option<NullBuffer>,
    pub children: Vec<BinaryArray>,
}

impl Nested {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }

    pub fn slice(&self, start: usize, len: usize) -> Nested {
        Nested {
            offsets: self.offsets.slice(start, len),
            nulls: self.nulls.as_ref().map(|n| n.slice(start, len)),
            children: self.children.clone(),
        }
    }
}
