//! Columnar record batches: what flows between pipeline stages.
//!
//! A [`Batch`] holds one of three record shapes ([`BatchData`]): key rows from a Redis
//! reader (key, type, value and event columns as Arrow arrays), native [`Datum`]s, or
//! an opaque host column (for example Python objects) the engine can count, slice and
//! partition without knowing its type. Every batch also carries an error lane: error records
//! skip later steps and reach the output as they are.
//!
//! Copies (the whole table is docs/data-path.md): a reader copies each key's bytes once into
//! a [`KeyBuilder`], whose vectors become the arrays without a copy; after that a key batch
//! moves by handle — `slice` and `clone` share the buffers, `to_record_batch` hands them to
//! Arrow consumers as they are, and a shuffle's receiver gets arrays that are slices of the
//! received buffer. `partition` (repartition) and `take` gather into new arrays, one copy,
//! unless the rows are already grouped. Datums own their values (an allocation per string
//! and container); a host column moves object handles. Nothing here comes from the buffer
//! pool. Depends on `datum` and `error`.

mod binary;
mod foreign;
mod gather;
mod key_arrow;
mod key_builder;
mod key_type;
mod keys;
mod nested;

pub use binary::BinaryColumn;
pub use foreign::{ForeignColumn, ForeignDecoder};
pub(crate) use key_builder::nulls_where as value_nulls;
pub use key_builder::{BuilderSizes, KeyBuilder};
pub use key_type::{KeyType, KEY_TYPE_NAMES};
pub use keys::{KeyColumns, KeyRow, KeyValues, ValueRef};
pub use nested::Nested;

use crate::datum::Datum;

/// The records of a batch, in one of the shapes the engine knows.
#[derive(Debug)]
pub enum BatchData {
    Keys(KeyColumns),
    Datums(Vec<Datum>),
    Foreign(Box<dyn ForeignColumn>),
}

/// A batch of records plus its error lane.
#[derive(Debug)]
pub struct Batch {
    pub data: BatchData,
    /// Per-row partitioning keys set by a key-extraction step; consumed by repartition.
    pub partition_keys: Option<BinaryColumn>,
    /// Error records: they skip every later step and land in the execution's errors.
    pub errors: Vec<String>,
}

impl Batch {
    pub fn new(data: BatchData) -> Self {
        Batch {
            data,
            partition_keys: None,
            errors: Vec::new(),
        }
    }

    pub fn datums(d: Vec<Datum>) -> Self {
        Self::new(BatchData::Datums(d))
    }

    pub fn errors_only(errors: Vec<String>) -> Self {
        Batch {
            data: BatchData::Datums(Vec::new()),
            partition_keys: None,
            errors,
        }
    }

    /// Number of (non-error) records.
    pub fn len(&self) -> usize {
        match &self.data {
            BatchData::Keys(k) => k.len(),
            BatchData::Datums(d) => d.len(),
            BatchData::Foreign(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.errors.is_empty()
    }

    /// Keeps rows `start..start+len` (clamped), dropping the rest; errors are kept.
    pub fn slice(self, start: usize, len: usize) -> Batch {
        let total = self.len();
        let start = start.min(total);
        let end = start.saturating_add(len).min(total);
        let data = match self.data {
            BatchData::Keys(k) => BatchData::Keys(k.slice(start, end)),
            BatchData::Datums(mut d) => {
                d.truncate(end);
                BatchData::Datums(d.split_off(start))
            }
            BatchData::Foreign(f) => BatchData::Foreign(f.slice(start, end)),
        };
        let partition_keys = self.partition_keys.map(|k| k.slice(start, end));
        Batch {
            data,
            partition_keys,
            errors: self.errors,
        }
    }

    /// Splits rows (and their partition keys) into `n` batches by destination
    /// (`dest[i]` < n). Errors stay in the
    /// first output (they are routed by the caller).
    pub fn partition(self, dest: &[usize], n: usize) -> Vec<Batch> {
        debug_assert_eq!(dest.len(), self.len());
        let parts: Vec<BatchData> = match self.data {
            BatchData::Keys(k) => k
                .partition(dest, n)
                .into_iter()
                .map(BatchData::Keys)
                .collect(),
            BatchData::Datums(d) => {
                let mut out: Vec<Vec<Datum>> = (0..n).map(|_| Vec::new()).collect();
                for (v, &to) in d.into_iter().zip(dest) {
                    out[to].push(v);
                }
                out.into_iter().map(BatchData::Datums).collect()
            }
            BatchData::Foreign(f) => f
                .partition(dest, n)
                .into_iter()
                .map(BatchData::Foreign)
                .collect(),
        };
        let mut batches: Vec<Batch> = parts.into_iter().map(Batch::new).collect();
        if let Some(first) = batches.first_mut() {
            first.errors = self.errors;
        }
        // The partition keys follow their rows (a keyed step after a shuffle uses them).
        if let Some(keys) = self.partition_keys {
            let mut cols: Vec<BinaryColumn> = (0..n).map(|_| BinaryColumn::default()).collect();
            for (k, &to) in keys.iter().zip(dest) {
                cols[to].push(k);
            }
            for (b, k) in batches.iter_mut().zip(cols) {
                b.partition_keys = Some(k);
            }
        }
        batches
    }
}
