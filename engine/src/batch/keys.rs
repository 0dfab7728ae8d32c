//! `KeyColumns`: key rows produced by Redis readers, as Arrow arrays.
//!
//! Columns: `keys` (binary), `types` (one-byte [`KeyType`] codes), optional values and
//! optional events (binary). Values keep one slot per row in each of three arrays, like an
//! Arrow sparse union: `strings` (binary), `hashes` (entry offsets + field and value
//! arrays, a map layout) and `lists` (offsets + items); a row's type says which slot holds
//! its value, and the others are null. `slice` is O(1) (Arrow slicing shares the
//! buffers); `partition` gathers each column once in destination order
//! ([`super::gather`]) and slices the result. Built by [`super::KeyBuilder`].
//! Depends on `key_type`, `nested` and `gather`.

use super::gather;
use super::nested::Nested;
use super::KeyType;
use arrow_array::{Array, BinaryArray, UInt8Array};

/// The value columns (`readValue=True`): one slot per row in each.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValues {
    /// String keys' values; null on rows of another type.
    pub strings: BinaryArray,
    /// Hash keys' fields (`children[0]`) and values (`children[1]`).
    pub hashes: Nested,
    /// List keys' elements (`children[0]`).
    pub lists: Nested,
}

impl KeyValues {
    fn slice(&self, start: usize, len: usize) -> KeyValues {
        KeyValues {
            strings: self.strings.slice(start, len),
            hashes: self.hashes.slice(start, len),
            lists: self.lists.slice(start, len),
        }
    }

    fn value(&self, i: usize, t: KeyType) -> ValueRef<'_> {
        match t {
            KeyType::String => ValueRef::Str(self.strings.value(i)),
            KeyType::Hash => {
                let (f, v) = (&self.hashes.children[0], &self.hashes.children[1]);
                let range = self.hashes.range(i);
                ValueRef::Hash(range.map(|j| (f.value(j), v.value(j))).collect())
            }
            KeyType::List => {
                let items = &self.lists.children[0];
                ValueRef::List(self.lists.range(i).map(|j| items.value(j)).collect())
            }
            _ => ValueRef::None,
        }
    }
}

/// Reader output: one row per key, as Arrow arrays (cheap to clone: buffers are shared).
/// Boxed: the arrays' handles are a few hundred bytes, and batches move by value.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyColumns(Box<Columns>);

#[derive(Debug, Clone, PartialEq)]
struct Columns {
    keys: BinaryArray,
    types: UInt8Array,
    values: Option<KeyValues>,
    events: Option<BinaryArray>,
}

/// A borrowed view of a row's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef<'a> {
    None,
    Str(&'a [u8]),
    Hash(Vec<(&'a [u8], &'a [u8])>),
    List(Vec<&'a [u8]>),
}

/// A borrowed view of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow<'a> {
    pub key: &'a [u8],
    pub key_type: KeyType,
    /// `None` when values were not read.
    pub value: Option<ValueRef<'a>>,
    /// The triggering event, if any.
    pub event: Option<&'a [u8]>,
}

impl KeyColumns {
    /// Columns from arrays of equal length (the builder and the codec check that).
    /// Every type code must be a [`KeyType`] code; a row's value is read by its type.
    pub(crate) fn from_arrays(
        keys: BinaryArray,
        types: UInt8Array,
        values: Option<KeyValues>,
        events: Option<BinaryArray>,
    ) -> Self {
        debug_assert_eq!(keys.len(), types.len());
        KeyColumns(Box::new(Columns {
            keys,
            types,
            values,
            events,
        }))
    }

    pub fn len(&self) -> usize {
        self.0.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.types.is_empty()
    }

    pub fn keys(&self) -> &BinaryArray {
        &self.0.keys
    }

    pub fn types(&self) -> &UInt8Array {
        &self.0.types
    }

    /// `None` when the reader ran with `readValue=False`.
    pub fn values(&self) -> Option<&KeyValues> {
        self.0.values.as_ref()
    }

    /// The keyspace event of each row (registrations); `None` for `run()`.
    pub fn events(&self) -> Option<&BinaryArray> {
        self.0.events.as_ref()
    }

    pub fn key(&self, i: usize) -> &[u8] {
        self.0.keys.value(i)
    }

    pub fn key_type(&self, i: usize) -> KeyType {
        KeyType::from_code(self.0.types.value(i)).unwrap_or(KeyType::Unknown)
    }

    /// A borrowed view of row `i` (`i < len()`).
    pub fn row(&self, i: usize) -> KeyRow<'_> {
        let key_type = self.key_type(i);
        KeyRow {
            key: self.key(i),
            key_type,
            value: self.0.values.as_ref().map(|v| v.value(i, key_type)),
            event: self.0.events.as_ref().map(|e| e.value(i)),
        }
    }

    /// The fields and values of row `i` when it is a hash read with its value: what
    /// `row(i)` holds as `ValueRef::Hash`, without collecting them into a `Vec`.
    pub fn hash_fields(&self, i: usize) -> Option<impl Iterator<Item = (&[u8], &[u8])> + '_> {
        let values = self.0.values.as_ref()?;
        if self.key_type(i) != KeyType::Hash {
            return None;
        }
        let (f, v) = (&values.hashes.children[0], &values.hashes.children[1]);
        Some(values.hashes.range(i).map(|j| (f.value(j), v.value(j))))
    }

    /// Rows `start..end`, sharing this batch's buffers (O(1)).
    pub fn slice(&self, start: usize, end: usize) -> KeyColumns {
        let len = end.saturating_sub(start);
        let c = &self.0;
        KeyColumns(Box::new(Columns {
            keys: c.keys.slice(start, len),
            types: c.types.slice(start, len),
            values: c.values.as_ref().map(|v| v.slice(start, len)),
            events: c.events.as_ref().map(|e| e.slice(start, len)),
        }))
    }

    /// Splits rows into `n` batches by destination (`dest[i] < n`), keeping their order:
    /// a counting sort gives the destination order, each column is gathered once in that
    /// order, and each part is a slice of the result. Already grouped rows are not copied.
    pub fn partition(&self, dest: &[usize], n: usize) -> Vec<KeyColumns> {
        let (order, starts) = gather::counting_sort(dest, n);
        let all = match order {
            None => self.clone(),
            Some(order) => self.take(&order),
        };
        starts.windows(2).map(|w| all.slice(w[0], w[1])).collect()
    }

    /// Rows `idx[0], idx[1], ...` as new columns (bulk copies per column).
    pub fn take(&self, idx: &[u32]) -> KeyColumns {
        let c = &self.0;
        KeyColumns(Box::new(Columns {
            keys: gather::take_bytes(&c.keys, idx),
            types: gather::take_u8(&c.types, idx),
            values: c.values.as_ref().map(|v| KeyValues {
                strings: gather::take_bytes(&v.strings, idx),
                hashes: gather::take_nested(&v.hashes, idx),
                lists: gather::take_nested(&v.lists, idx),
            }),
            events: c.events.as_ref().map(|e| gather::take_bytes(e, idx)),
        }))
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
