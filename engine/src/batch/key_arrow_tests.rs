//! Unit tests of `KeyColumns::to_record_batch` (included by `key_arrow.rs`).

use arrow_array::cast::AsArray;
use arrow_array::Array;

use super::*;
use crate::batch::KeyBuilder;

fn batch(rows: &[(&[u8], KeyType)], fill: impl Fn(&mut KeyBuilder, usize)) -> KeyColumns {
    let mut b = KeyBuilder::new(true);
    for (i, (k, t)) in rows.iter().enumerate() {
        b.push_key(k, *t);
        fill(&mut b, i);
    }
    b.finish().expect("finish")
}

fn hashes() -> KeyColumns {
    batch(
        &[
            (b"h1", KeyType::Hash),
            (b"h2", KeyType::Hash),
            (b"h3", KeyType::Hash),
        ],
        |b, i| {
            for f in 0..i + 1 {
                b.push_field(format!("f{f}").as_bytes(), format!("v{i}").as_bytes());
            }
        },
    )
}

#[test]
fn hashes_become_a_map_column_over_the_same_buffers() {
    let k = hashes();
    let rb = k.to_record_batch().expect("record batch");
    let schema = rb.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["key", "type", "value"]);
    let key = rb.column(0).as_string::<i32>();
    assert_eq!(key.value(1), "h2");
    assert_eq!(
        key.values().as_ptr(),
        k.keys().values().as_ptr(),
        "key: zero copy"
    );
    let types = rb.column(1).as_dictionary::<UInt8Type>();
    assert_eq!(types.keys().values().as_ptr(), k.types().values().as_ptr());
    let dict = types.values().as_string::<i32>();
    let dict: Vec<&str> = dict.iter().map(|s| s.unwrap_or_default()).collect();
    assert_eq!(dict, KEY_TYPE_NAMES);
    let map = rb.column(2).as_map();
    let v = k.values().expect("values");
    assert_eq!(map.value_offsets(), &v.hashes.offsets[..]);
    assert_eq!(
        map.value_offsets().as_ptr(),
        v.hashes.offsets.as_ptr(),
        "map offsets: zero copy"
    );
    let fields = map.keys().as_string::<i32>();
    assert_eq!(
        fields.values().as_ptr(),
        v.hashes.children[0].values().as_ptr()
    );
    let row2 = map.value(2);
    let f = row2.column(0).as_string::<i32>();
    let val = row2.column(1).as_string::<i32>();
    assert_eq!((f.value(2), val.value(2)), ("f2", "v2"));
    let DataType::Map(entries, _) = rb.schema().field(2).data_type().clone() else {
        panic!("not a map");
    };
    let DataType::Struct(kv) = entries.data_type() else {
        panic!("entries not a struct")
    };
    assert_eq!((kv[0].name().as_str(), kv[0].is_nullable()), ("key", false));
    assert_eq!(kv[1].name(), "value");
}

#[test]
fn a_slice_converts_its_own_rows() {
    let k = hashes();
    let rb = k.slice(1, 3).to_record_batch().expect("record batch");
    assert_eq!(rb.num_rows(), 2);
    let map = rb.column(2).as_map();
    assert_eq!(map.value(0).len(), 2);
    assert_eq!(map.value(1).column(1).as_string::<i32>().value(0), "v2");
}

#[test]
fn strings_and_lists_and_no_values() {
    let s = batch(
        &[(b"a", KeyType::String), (b"b", KeyType::String)],
        |b, i| b.push_str(if i == 0 { b"x" } else { b"" }),
    );
    let rb = s.to_record_batch().expect("strings");
    let v = rb.column(2).as_string::<i32>();
    assert_eq!((v.value(0), v.value(1), v.null_count()), ("x", "", 0));
    assert_eq!(
        v.values().as_ptr(),
        s.values().expect("v").strings.values().as_ptr()
    );

    let l = batch(&[(b"l", KeyType::List), (b"m", KeyType::List)], |b, i| {
        (0..i).for_each(|_| b.push_item(b"it"))
    });
    let rb = l.to_record_batch().expect("lists");
    let list = rb.column(2).as_list::<i32>();
    assert_eq!((list.value(0).len(), list.value(1).len()), (0, 1));
    assert_eq!(
        rb.schema().field(2).data_type(),
        &DataType::new_list(DataType::Utf8, true)
    );

    let mut b = KeyBuilder::new(false);
    b.push_key(b"k", KeyType::Set);
    b.push_key(b"j", KeyType::Hash);
    let rb = b
        .finish()
        .expect("finish")
        .to_record_batch()
        .expect("no values");
    assert_eq!(rb.num_columns(), 2);
    assert_eq!(rb.column(1).as_dictionary::<UInt8Type>().keys().value(0), 3);
}

#[test]
fn mixed_or_other_types_are_errors() {
    let k = batch(&[(b"h", KeyType::Hash), (b"s", KeyType::String)], |b, i| {
        if i == 1 {
            b.push_str(b"v")
        }
    });
    let e = k.to_record_batch().expect_err("mixed");
    assert_eq!(
        e.message(),
        "mapBatch(format='arrow') needs string, hash or list keys of one type per batch, got hash, string"
    );
    let k = batch(&[(b"z", KeyType::ZSet)], |_, _| {});
    let e = k.to_record_batch().expect_err("zset");
    assert!(e.message().ends_with("got zset"), "{}", e.message());
}

#[test]
fn non_utf8_text_names_its_key() {
    let k = batch(
        &[(b"ok", KeyType::String), (b"k\xff'", KeyType::String)],
        |b, _| b.push_str(b"v"),
    );
    let e = k.to_record_batch().expect_err("bad key");
    assert_eq!(
        e.message(),
        "mapBatch(format='arrow') needs UTF-8 keys and values, key b\"k\\xff'\" is not"
    );
    let k = batch(&[(b"h1", KeyType::Hash), (b"h2", KeyType::Hash)], |b, i| {
        b.push_field(b"f", if i == 1 { b"\xc3" } else { b"v" })
    });
    let e = k.to_record_batch().expect_err("bad value");
    assert!(e.message().ends_with("key b'h2' is not"), "{}", e.message());
    // The first row alone is UTF-8: its slice converts (by compacting).
    let rb = k.slice(0, 1).to_record_batch().expect("own rows are UTF-8");
    assert_eq!(rb.column(2).as_map().value(0).len(), 1);
}
