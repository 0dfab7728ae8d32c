//! The reader's key rows as an Arrow `RecordBatch` with one fixed schema, the batch
//! `mapBatch(f, format='arrow')` and `filterBatch(f, format='arrow')` hand to `f`.
//!
//! PROVISIONAL: [`key_record_batch`] COPIES the engine's `KeyColumns` (offsets + bytes, hash
//! fields and values interleaved) into new Arrow arrays with builders, validating UTF-8 on
//! the way. Once `KeyColumns` holds Arrow arrays itself (`KeyColumns::to_record_batch()`,
//! same signature) this body becomes a call to it and the hand-over has no copy left.
//!
//! Schema, the same for every batch (`value` absent with `readValue=False`):
//! `key` Utf8, `type` Dictionary<UInt8, Utf8> (dictionary: every `KeyType` name, in code
//! order), `value` Utf8 (string keys) | Map<Utf8, Utf8> (hashes, entries `key`/`value`) |
//! List<Utf8> (lists). A batch of another or of mixed key types is an error.
//!
//! Part of `arrow`; depends on `engine::batch` and the arrow crates only.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, MapBuilder, MapFieldNames, StringBuilder};
use arrow_array::types::UInt8Type;
use arrow_array::{ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt8Array};
use arrow_schema::{DataType, Field, Schema};
use engine::batch::{KeyColumns, KeyType, ValueColumn};
use engine::EngineError;

/// Every `KeyType` name, in code order: the `type` column's dictionary.
pub(crate) fn type_names() -> Vec<&'static str> {
    (0..=u8::MAX)
        .map_while(KeyType::from_code)
        .map(KeyType::name)
        .collect()
}

fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "entries".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

/// The `value` column's type for a batch of `kind` keys.
fn value_type(kind: KeyType) -> Option<DataType> {
    let item = || Arc::new(Field::new("item", DataType::Utf8, true));
    match kind {
        KeyType::String => Some(DataType::Utf8),
        KeyType::List => Some(DataType::List(item())),
        KeyType::Hash => {
            let entries = DataType::Struct(
                vec![
                    Field::new("key", DataType::Utf8, false),
                    Field::new("value", DataType::Utf8, true),
                ]
                .into(),
            );
            Some(DataType::Map(
                Arc::new(Field::new("entries", entries, false)),
                false,
            ))
        }
        _ => None,
    }
}

/// The batch's schema: `key`, `type` and, for `Some(kind)`, `value`.
pub(crate) fn key_schema(value: Option<DataType>) -> Schema {
    let dict = DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8));
    let mut fields = vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("type", dict, false),
    ];
    fields.extend(value.map(|t| Field::new("value", t, false)));
    Schema::new(fields)
}

/// The key rows `k` as a `RecordBatch` (see the module doc). PROVISIONAL copying version.
pub fn key_record_batch(k: &KeyColumns) -> Result<RecordBatch, EngineError> {
    let n = k.len();
    let mut keys = StringBuilder::with_capacity(n, k.keys.byte_len());
    for i in 0..n {
        keys.append_value(text(k, i, k.keys.get(i))?);
    }
    let codes = UInt8Array::from_iter_values(k.types.iter().map(|t| t.code()));
    let dict = Arc::new(StringArray::from(type_names()));
    let types = DictionaryArray::<UInt8Type>::try_new(codes, dict).map_err(internal)?;
    let mut columns: Vec<ArrayRef> = vec![Arc::new(keys.finish()), Arc::new(types)];
    let mut value = None;
    if let Some(v) = &k.values {
        let kind = one_kind(k)?;
        value = value_type(kind);
        columns.push(value_column(k, v, kind)?);
    }
    RecordBatch::try_new(Arc::new(key_schema(value)), columns).map_err(internal)
}

/// The batch's one key type, if it is one the `value` column can hold.
fn one_kind(k: &KeyColumns) -> Result<KeyType, EngineError> {
    let first = k.types.first().copied().unwrap_or(KeyType::String);
    let same = k.types.iter().all(|t| *t == first);
    if same && value_type(first).is_some() {
        return Ok(first);
    }
    let mut names: Vec<&str> = k.types.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    names.dedup();
    Err(EngineError::Execution(format!(
        "mapBatch(format='arrow') needs string, hash or list keys of one type per batch, got {}",
        names.join(", ")
    )))
}

fn value_column(k: &KeyColumns, v: &ValueColumn, kind: KeyType) -> Result<ArrayRef, EngineError> {
    let n = k.len();
    Ok(match kind {
        KeyType::String => {
            let mut b = StringBuilder::with_capacity(n, v.byte_len());
            for i in 0..n {
                b.append_value(text(k, i, v.row_items(i).next().unwrap_or_default())?);
            }
            Arc::new(b.finish())
        }
        KeyType::List => {
            let mut b = ListBuilder::with_capacity(StringBuilder::new(), n);
            for i in 0..n {
                for item in v.row_items(i) {
                    b.values().append_value(text(k, i, item)?);
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
        _ => {
            let (f, val) = (StringBuilder::new(), StringBuilder::new());
            let mut b = MapBuilder::with_capacity(Some(map_names()), f, val, n);
            for i in 0..n {
                let mut items = v.row_items(i);
                while let (Some(f), Some(val)) = (items.next(), items.next()) {
                    b.keys().append_value(text(k, i, f)?);
                    b.values().append_value(text(k, i, val)?);
                }
                b.append(true).map_err(internal)?;
            }
            Arc::new(b.finish())
        }
    })
}

/// `bytes` (of row `i`) as text, or the error naming the row's key.
fn text<'a>(k: &KeyColumns, i: usize, bytes: &'a [u8]) -> Result<&'a str, EngineError> {
    std::str::from_utf8(bytes).map_err(|_| {
        EngineError::Execution(format!(
            "mapBatch(format='arrow') needs UTF-8 keys and values, key {} is not",
            engine::datum::py_bytes_repr(k.keys.get(i))
        ))
    })
}

fn internal(e: arrow_schema::ArrowError) -> EngineError {
    EngineError::Internal(format!("arrow: {e}"))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, MapArray};

    use super::*;

    /// One row: key, type, value items.
    type Row<'a> = (&'a [u8], KeyType, &'a [&'a [u8]]);

    fn keys(rows: &[Row<'_>], read_value: bool) -> KeyColumns {
        let mut k = KeyColumns::new(read_value);
        for (key, t, items) in rows {
            k.push_key(key, *t);
            if let Some(v) = &mut k.values {
                items.iter().for_each(|i| v.push_item(i));
                v.finish_row();
            }
        }
        k
    }

    #[test]
    fn the_schema_is_the_same_for_every_batch_of_a_kind() {
        let a = keys(&[(b"h1", KeyType::Hash, &[b"f", b"v"])], true);
        let b = keys(
            &[
                (b"h2", KeyType::Hash, &[]),
                (b"h3", KeyType::Hash, &[b"x", b"\xc3\xa9"]),
            ],
            true,
        );
        let (a, b) = (key_record_batch(&a).unwrap(), key_record_batch(&b).unwrap());
        assert_eq!(a.schema(), b.schema());
        let m = b.column(2).as_any().downcast_ref::<MapArray>().unwrap();
        assert_eq!(m.value_offsets(), &[0, 0, 1]);
        let types = b
            .column(1)
            .as_any()
            .downcast_ref::<DictionaryArray<UInt8Type>>();
        assert_eq!(
            types.unwrap().values().len(),
            8,
            "the whole type dictionary"
        );
    }

    #[test]
    fn strings_lists_and_keys_only() {
        let s = keys(&[(b"a", KeyType::String, &[b"1"])], true);
        let s = key_record_batch(&s).unwrap();
        assert_eq!(s.schema().field(2).data_type(), &DataType::Utf8);
        let l = keys(&[(b"l", KeyType::List, &[b"x", b"y"])], true);
        let l = key_record_batch(&l).unwrap();
        assert!(matches!(l.schema().field(2).data_type(), DataType::List(_)));
        let k = keys(
            &[(b"a", KeyType::Set, &[]), (b"b", KeyType::Hash, &[])],
            false,
        );
        assert_eq!(key_record_batch(&k).unwrap().num_columns(), 2);
    }

    #[test]
    fn bad_batches_are_errors_naming_the_problem() {
        let mixed = keys(
            &[(b"h", KeyType::Hash, &[]), (b"s", KeyType::String, &[b"1"])],
            true,
        );
        let e = key_record_batch(&mixed).unwrap_err().to_string();
        assert!(e.contains("one type per batch, got hash, string"), "{e}");
        let bad = keys(&[(b"k\xff", KeyType::String, &[b"1"])], true);
        let e = key_record_batch(&bad).unwrap_err().to_string();
        assert!(
            e.contains("needs UTF-8 keys and values, key b'k\\xff' is not"),
            "{e}"
        );
        let bad_value = keys(&[(b"k", KeyType::String, &[b"\xff"])], true);
        let e = key_record_batch(&bad_value).unwrap_err().to_string();
        assert!(e.contains("key b'k' is not"), "{e}");
    }
}
