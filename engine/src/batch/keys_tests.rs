//! Unit tests of `KeyBuilder` + `KeyColumns` (included by `keys.rs`).

use super::*;
use crate::batch::{BuilderSizes, KeyBuilder};

/// A string, a hash, a zset, a list, and a second string; events `e0..e4`.
fn sample(read_value: bool) -> KeyBuilder {
    fill(KeyBuilder::new(read_value))
}

fn fill(mut b: KeyBuilder) -> KeyBuilder {
    b.push_key(b"s", KeyType::String);
    b.push_str(b"bar");
    b.push_event(b"e0");
    b.push_key(b"h", KeyType::Hash);
    b.push_field(b"name", b"Rick");
    b.push_field(b"age", b"70");
    b.push_event(b"e1");
    b.push_key(b"z", KeyType::ZSet);
    b.push_event(b"e2");
    b.push_key(b"l", KeyType::List);
    b.push_item(b"x");
    b.push_item(b"");
    b.push_event(b"e3");
    b.push_key(b"s2", KeyType::String);
    b.push_str(b"");
    b.push_event(b"e4");
    b
}

fn rows(k: &KeyColumns) -> Vec<KeyRow<'_>> {
    (0..k.len()).map(|i| k.row(i)).collect()
}

#[test]
fn rows_read_back_by_type_from_builder_and_columns() {
    let b = sample(true);
    let expect = [
        Some(ValueRef::Str(b"bar")),
        Some(ValueRef::Hash(vec![
            (&b"name"[..], &b"Rick"[..]),
            (b"age", b"70"),
        ])),
        Some(ValueRef::None),
        Some(ValueRef::List(vec![&b"x"[..], b""])),
        Some(ValueRef::Str(b"")),
    ];
    for (i, v) in expect.iter().enumerate() {
        assert_eq!(&b.row(i).value, v, "builder row {i}");
    }
    let built: Vec<String> = (0..b.len()).map(|i| format!("{:?}", b.row(i))).collect();
    let k = b.finish().expect("finish");
    assert_eq!(k.len(), 5);
    let cols: Vec<String> = rows(&k).iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(cols, built);
    assert_eq!(k.row(2).event, Some(&b"e2"[..]));
    assert_eq!((k.key(3), k.key_type(3)), (&b"l"[..], KeyType::List));
    let v = k.values().expect("values");
    assert_eq!(v.strings.null_count(), 3, "only string rows hold a string");
}

#[test]
fn without_values_rows_have_none() {
    let k = sample(false).finish().expect("finish");
    assert!(k.values().is_none());
    assert!(rows(&k).iter().all(|r| r.value.is_none()));
}

#[test]
fn slice_shares_buffers_and_reads_the_same_rows() {
    let k = sample(true).finish().expect("finish");
    let s = k.slice(1, 4);
    assert_eq!(s.len(), 3);
    let want: Vec<String> = (1..4).map(|i| format!("{:?}", k.row(i))).collect();
    let got: Vec<String> = rows(&s).iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(got, want);
    assert_eq!(s.keys().values().as_ptr(), k.keys().values().as_ptr());
    let (a, b) = (k.values().expect("v"), s.values().expect("v"));
    assert_eq!(
        a.hashes.children[0].values().as_ptr(),
        b.hashes.children[0].values().as_ptr()
    );
    assert_eq!(k.slice(2, 2).len(), 0);
}

#[test]
fn partition_keeps_order_within_each_part() {
    let k = sample(true).finish().expect("finish");
    let dest = [2, 0, 2, 0, 1];
    let parts = k.partition(&dest, 3);
    let keys =
        |p: &KeyColumns| -> Vec<Vec<u8>> { (0..p.len()).map(|i| p.key(i).to_vec()).collect() };
    assert_eq!(keys(&parts[0]), vec![b"h".to_vec(), b"l".to_vec()]);
    assert_eq!(keys(&parts[1]), vec![b"s2".to_vec()]);
    assert_eq!(keys(&parts[2]), vec![b"s".to_vec(), b"z".to_vec()]);
    for (p, part) in parts.iter().enumerate() {
        let src: Vec<usize> = (0..5).filter(|&i| dest[i] == p).collect();
        for (j, &i) in src.iter().enumerate() {
            assert_eq!(part.row(j), k.row(i), "part {p} row {j}");
        }
    }
}

#[test]
fn partition_of_a_slice_and_of_grouped_rows() {
    let k = sample(true).finish().expect("finish");
    let s = k.slice(1, 5);
    let parts = s.partition(&[1, 0, 1, 0], 2);
    assert_eq!(parts[0].row(0), k.row(2));
    assert_eq!(parts[0].row(1), k.row(4));
    assert_eq!(parts[1].row(1), k.row(3));
    // Already grouped: parts are slices of the input, no copy.
    let parts = k.partition(&[0, 0, 1, 1, 1], 2);
    assert_eq!(parts[1].row(2), k.row(4));
    assert_eq!(
        parts[1].keys().values().as_ptr(),
        k.keys().values().as_ptr()
    );
}

#[test]
fn events_for_some_rows_only_is_an_error() {
    let mut b = KeyBuilder::new(false);
    b.push_key(b"a", KeyType::String);
    b.push_key(b"b", KeyType::String);
    b.push_event(b"x");
    assert!(b.finish().is_err());
}

#[test]
fn a_cleared_builder_fills_again_like_a_new_one() {
    for read_value in [true, false] {
        let fresh = sample(read_value);
        let mut reused = sample(read_value);
        let held = reused.capacity_bytes();
        reused.clear();
        assert!(reused.is_empty() && reused.capacity_bytes() == held && held > 0);
        let reused = fill(reused);
        let show = |b: &KeyBuilder| {
            (0..b.len())
                .map(|i| format!("{:?}", b.row(i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&reused), show(&fresh));
        let (a, b) = (
            fresh.finish().expect("fresh"),
            reused.finish().expect("reused"),
        );
        let show = |k: &KeyColumns| rows(k).iter().map(|r| format!("{r:?}")).collect::<Vec<_>>();
        assert_eq!(show(&a), show(&b));
    }
}

#[test]
fn a_builder_sized_from_another_holds_the_same_rows() {
    for read_value in [true, false] {
        let first = sample(read_value);
        let sizes = first.sizes();
        let again = fill(KeyBuilder::sized(read_value, &sizes));
        assert_eq!(again.sizes(), sizes);
        let a = first.finish().expect("finish");
        let b = again.finish().expect("finish");
        let show = |k: &KeyColumns| format!("{:?}", rows(k));
        assert_eq!(show(&a), show(&b));
        // A sized builder that gets fewer rows (or none) is still exact.
        let mut few = KeyBuilder::sized(read_value, &sizes);
        few.push_key(b"only", KeyType::Hash);
        few.push_field(b"f", b"v");
        let k = few.finish().expect("finish");
        assert_eq!(k.len(), 1);
        let want = read_value.then(|| ValueRef::Hash(vec![(&b"f"[..], &b"v"[..])]));
        assert_eq!(k.row(0).value, want);
    }
    let empty = KeyBuilder::sized(true, &Default::default());
    assert!(empty.is_empty());
}

#[test]
fn sizes_are_capped_and_work_counts_bytes_and_items() {
    let mut b = KeyBuilder::new(true);
    assert_eq!(b.work_done(), 0);
    b.push_key(b"big", KeyType::List);
    let before = b.work_done();
    for _ in 0..10 {
        b.push_item(b"");
    }
    assert_eq!(b.work_done(), before + 10, "empty items are work too");
    b.push_key(b"h", KeyType::Hash);
    let before = b.work_done();
    b.push_field(b"ab", &vec![b'x'; (1 << 20) + 5]);
    assert_eq!(b.work_done(), before + 2 + (1 << 20) + 5 + 1);
    let capped = KeyBuilder::sized(true, &b.sizes()).sizes();
    assert_eq!(
        capped,
        BuilderSizes::default(),
        "an empty builder holds nothing"
    );
    let s = format!("{:?}", b.sizes());
    assert!(s.contains(&format!("{}", 1 << 20)), "{s}");
    assert!(!s.contains(&format!("{}", (1 << 20) + 5)), "{s}");
}

#[test]
fn hash_fields_are_the_hash_rows_values_in_place() {
    for read_value in [true, false] {
        let k = sample(read_value).finish().expect("finish");
        let sliced = k.slice(1, 4);
        for k in [&k, &sliced] {
            for i in 0..k.len() {
                let fields = k.hash_fields(i).map(|f| f.collect::<Vec<_>>());
                match &k.row(i).value {
                    Some(ValueRef::Hash(h)) => assert_eq!(fields.as_ref(), Some(h), "row {i}"),
                    _ => assert_eq!(fields, None, "row {i}"),
                }
            }
        }
    }
}
