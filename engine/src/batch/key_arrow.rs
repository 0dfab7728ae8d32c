//! `KeyColumns::to_record_batch`: a batch of key rows as an Arrow `RecordBatch` over the
//! same buffers (no copy), for `mapBatch(format='arrow')`.
//!
//! Schema, the same for every batch of a kind: `key` Utf8; `type` Dictionary<UInt8, Utf8>
//! over every type name in [`KeyType`] code order; and, unless values were not read,
//! `value`: Utf8 (string keys), Map<Utf8, Utf8> (hashes; entries `key` non-null and
//! `value`) or List<Utf8> (lists). A batch of no rows gets a Utf8 `value`.
//! Text is checked to be UTF-8 in place. One case copies: a batch sliced from a bigger one
//! whose other rows hold non-UTF-8 hash or list items is compacted first (the check runs
//! over a child array's whole range). Depends on `keys`, `key_type` and `error`.

use std::collections::BTreeSet;

use arrow_array::types::UInt8Type;
use arrow_array::{
    Array, ArrayRef, BinaryArray, DictionaryArray, ListArray, MapArray, RecordBatch, StringArray,
    StructArray,
};
use arrow_schema::{DataType, Field, Fields, Schema};

use super::keys::KeyColumns;
use super::nested::Nested;
use super::{KeyType, KEY_TYPE_NAMES};
use crate::datum::py_bytes_repr;
use crate::error::{EngineError, Result};
use crate::sync::StdArc as Arc;

const WHAT: &str = "mapBatch(format='arrow')";

impl KeyColumns {
    /// The batch as an Arrow record batch sharing this batch's buffers (see the module
    /// doc for the schema). Errors: non-UTF-8 text (naming its key), or values of a batch
    /// that are not all strings, all hashes or all lists.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let kind = match self.values() {
            Some(_) => Some(self.value_kind()?),
            None => None,
        };
        let key = utf8(self.keys()).map_err(|i| self.not_utf8(i))?;
        let types = DictionaryArray::<UInt8Type>::try_new(
            self.types().clone(),
            Arc::new(StringArray::from(KEY_TYPE_NAMES.to_vec())),
        )
        .map_err(|e| EngineError::Internal(format!("key types: {e}")))?;
        let mut fields = vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("type", types.data_type().clone(), false),
        ];
        let mut columns: Vec<ArrayRef> = vec![Arc::new(key), Arc::new(types)];
        if let (Some(kind), Some(v)) = (kind, self.values()) {
            let value: ArrayRef = match kind {
                KeyType::Hash => match self.map_column(&v.hashes)? {
                    Some(m) => Arc::new(m),
                    None => return self.compacted().to_record_batch(),
                },
                KeyType::List => match self.list_column(&v.lists)? {
                    Some(l) => Arc::new(l),
                    None => return self.compacted().to_record_batch(),
                },
                _ => Arc::new(utf8(&v.strings).map_err(|i| self.not_utf8(i))?),
            };
            fields.push(Field::new("value", value.data_type().clone(), true));
            columns.push(value);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| EngineError::Internal(format!("key record batch: {e}")))
    }

    /// The one value type of the rows (string for no rows), or the error naming them all.
    fn value_kind(&self) -> Result<KeyType> {
        let codes: BTreeSet<u8> = self.types().values().iter().copied().collect();
        let kinds: BTreeSet<&str> = codes
            .iter()
            .map(|&c| KeyType::from_code(c).map_or("unknown", KeyType::name))
            .collect();
        let one = match (codes.len(), codes.first()) {
            (0, _) => Some(KeyType::String),
            (1, Some(&c)) => KeyType::from_code(c)
                .filter(|t| matches!(t, KeyType::String | KeyType::Hash | KeyType::List)),
            _ => None,
        };
        one.ok_or_else(|| {
            let names: Vec<&str> = kinds.into_iter().collect();
            EngineError::Execution(format!(
                "{WHAT} needs string, hash or list keys of one type per batch, got {}",
                names.join(", ")
            ))
        })
    }

    fn not_utf8(&self, row: usize) -> EngineError {
        EngineError::Execution(format!(
            "{WHAT} needs UTF-8 keys and values, key {} is not",
            py_bytes_repr(self.key(row))
        ))
    }

    /// The row whose item range (in `n`) holds item `item`.
    fn row_of_item(&self, n: &Nested, item: usize) -> usize {
        let rows = n.len();
        (0..rows).find(|&r| n.range(r).contains(&item)).unwrap_or(0)
    }

    /// Checks `n`'s own items; `Ok(None)` when they are UTF-8 but the child arrays they
    /// share are not (the caller compacts and retries).
    fn children_utf8(&self, n: &Nested) -> Result<Option<Vec<StringArray>>> {
        let own = n.offsets[0] as usize..n.offsets[n.len()] as usize;
        let mut out = Vec::with_capacity(n.children.len());
        for c in &n.children {
            match utf8(c) {
                Ok(s) => out.push(s),
                Err(_) => {
                    let bad = own
                        .clone()
                        .find(|&j| std::str::from_utf8(c.value(j)).is_err());
                    return match bad {
                        Some(j) => Err(self.not_utf8(self.row_of_item(n, j))),
                        None => Ok(None),
                    };
                }
            }
        }
        Ok(Some(out))
    }

    fn map_column(&self, n: &Nested) -> Result<Option<MapArray>> {
        let Some(children) = self.children_utf8(n)? else {
            return Ok(None);
        };
        let entry_fields = Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ]);
        let arrays: Vec<ArrayRef> = children
            .into_iter()
            .map(|s| Arc::new(s) as ArrayRef)
            .collect();
        let entries = StructArray::try_new(entry_fields.clone(), arrays, None)
            .map_err(|e| EngineError::Internal(format!("map entries: {e}")))?;
        let field = Arc::new(Field::new("entries", DataType::Struct(entry_fields), false));
        MapArray::try_new(field, n.offsets.clone(), entries, n.nulls.clone(), false)
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("map column: {e}")))
    }

    fn list_column(&self, n: &Nested) -> Result<Option<ListArray>> {
        let Some(mut children) = self.children_utf8(n)? else {
            return Ok(None);
        };
        let items = children.remove(0);
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        ListArray::try_new(field, n.offsets.clone(), Arc::new(items), n.nulls.clone())
            .map(Some)
            .map_err(|e| EngineError::Internal(format!("list column: {e}")))
    }

    /// The same rows in arrays of their own (a copy).
    fn compacted(&self) -> KeyColumns {
        let idx: Vec<u32> = (0..self.len() as u32).collect();
        self.take(&idx)
    }
}

/// `a` as Utf8 over the same buffers, or the index of its first non-UTF-8 value.
fn utf8(a: &BinaryArray) -> Result<StringArray, usize> {
    let (offsets, values, nulls) = a.clone().into_parts();
    StringArray::try_new(offsets, values, nulls).map_err(|_| {
        let bad = (0..a.len()).find(|&i| std::str::from_utf8(a.value(i)).is_err());
        bad.unwrap_or(0)
    })
}

#[cfg(test)]
#[path = "key_arrow_tests.rs"]
mod tests;
