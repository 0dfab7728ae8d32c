//! Unit tests of the frame codec (included by `codec.rs`).

use super::*;
use crate::batch::{BinaryColumn, KeyBuilder, KeyColumns, KeyType};
use crate::datum::Datum;

/// A host column of strings; rows starting with '!' cannot be serialised.
#[derive(Debug)]
struct Texts(Vec<String>);

impl crate::batch::ForeignColumn for Texts {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slice(self: Box<Self>, a: usize, b: usize) -> Box<dyn crate::batch::ForeignColumn> {
        Box::new(Texts(self.0[a..b].to_vec()))
    }
    fn partition(
        self: Box<Self>,
        _dest: &[usize],
        _n: usize,
    ) -> Vec<Box<dyn crate::batch::ForeignColumn>> {
        unimplemented!()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
    fn encode(&self, out: &mut Vec<u8>, errors: &mut Vec<String>) -> Result<(), String> {
        let ok: Vec<&str> = self
            .0
            .iter()
            .filter(|t| {
                let bad = t.starts_with('!');
                if bad {
                    errors.push(format!("Failed serializing record {t}"));
                }
                !bad
            })
            .map(|t| t.as_str())
            .collect();
        out.extend_from_slice(ok.join("\n").as_bytes());
        Ok(())
    }
}

struct TextsDecoder;

impl ForeignDecoder for TextsDecoder {
    fn decode(&self, b: &[u8]) -> Result<Box<dyn crate::batch::ForeignColumn>, String> {
        let s = String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?;
        Ok(Box::new(Texts(s.split('\n').map(str::to_owned).collect())))
    }
}

#[test]
fn host_records_travel_through_the_host_codec() {
    let rows = vec!["a".to_owned(), "!x".to_owned(), "b".to_owned()];
    let mut b = Batch::errors_only(vec!["earlier".into()]);
    b.data = BatchData::Foreign(Box::new(Texts(rows)));
    b.partition_keys = Some(BinaryColumn::from_iter([&b"k1"[..], b"k2", b"k3"]));
    let mut buf = Vec::new();
    encode_data(&b, &mut buf).unwrap();
    // Without a decoder the frame is refused, never misread.
    assert!(decode_frame(&buf).is_err());
    let Frame::Data(got) = decode_frame_with(&buf, Some(&TextsDecoder)).unwrap() else {
        panic!("data frame expected");
    };
    assert_eq!(got.errors, vec!["earlier", "Failed serializing record !x"]);
    // A row was dropped, so the keys no longer line up and are not sent.
    assert!(got.partition_keys.is_none());
    let BatchData::Foreign(col) = got.data else {
        panic!("foreign rows expected");
    };
    let texts = col.into_any().downcast::<Texts>().unwrap();
    assert_eq!(texts.0, vec!["a", "b"]);
}

fn roundtrip(b: &Batch) -> Batch {
    let mut buf = Vec::new();
    encode_data(b, &mut buf).unwrap();
    match decode_frame(&buf).unwrap() {
        Frame::Data(b) => b,
        Frame::Done => panic!("expected data"),
    }
}

#[test]
fn datums_roundtrip() {
    let mut b = Batch::datums(vec![
        Datum::Null,
        Datum::Bool(true),
        Datum::Int(-5),
        Datum::Float(2.5),
        Datum::Str("héllo".into()),
        Datum::Bytes(vec![0, 255]),
        Datum::List(vec![
            Datum::Int(1),
            Datum::Map(vec![("k".into(), Datum::Null)]),
        ]),
    ]);
    b.errors.push("boom".into());
    b.partition_keys = Some(BinaryColumn::from_iter((0..7).map(|_| &b"k"[..])));
    let back = roundtrip(&b);
    assert_eq!(back.errors, b.errors);
    assert_eq!(back.partition_keys, b.partition_keys);
    match (back.data, b.data) {
        (BatchData::Datums(x), BatchData::Datums(y)) => assert_eq!(x, y),
        _ => panic!("shape changed"),
    }
}

#[test]
fn keys_roundtrip() {
    let mut b = KeyBuilder::new(true);
    b.push_key(b"a", KeyType::Hash);
    b.push_field(b"f", b"v");
    b.push_key(b"b", KeyType::Set);
    let k = b.finish().unwrap();
    let back = roundtrip(&Batch::new(BatchData::Keys(k.clone())));
    match back.data {
        BatchData::Keys(got) => assert_eq!(got, k),
        _ => panic!("shape changed"),
    }
}

/// A frame of a hash row `h` (`f` = `v`, `g` = `w`) and a string row `s` (`x`).
fn hash_frame() -> Vec<u8> {
    let mut b = KeyBuilder::new(true);
    b.push_key(b"h", KeyType::Hash);
    b.push_field(b"f", b"v");
    b.push_field(b"g", b"w");
    b.push_key(b"s", KeyType::String);
    b.push_str(b"x");
    let mut buf = Vec::new();
    encode_data(&Batch::new(BatchData::Keys(b.finish().unwrap())), &mut buf).unwrap();
    buf
}

/// Where the hash entry offsets `[0, 2, 2]` are in `frame`.
fn hash_offsets_at(frame: &[u8]) -> usize {
    let want: Vec<u8> = [0i32, 2, 2].iter().flat_map(|o| o.to_le_bytes()).collect();
    frame.windows(12).position(|w| w == want).unwrap()
}

#[test]
fn key_values_must_fit_their_type() {
    let frame = hash_frame();
    assert!(decode_frame(&frame).is_ok());
    // The string row given a hash entry: items outside the row's type slot.
    let at = hash_offsets_at(&frame);
    let mut f = frame.clone();
    f[at + 4] = 1;
    f[at + 8] = 2;
    let err = decode_frame(&f).unwrap_err();
    assert!(err.message().contains("value items"), "{err}");
    let k = |t: KeyType, items: &[&[u8]]| {
        let mut b = KeyBuilder::new(true);
        b.push_key(b"k", t);
        items.iter().for_each(|i| b.push_item(i));
        b.finish().unwrap()
    };
    // A set with items, a string with two: both rejected.
    let mut frame = Vec::new();
    encode_data(
        &Batch::new(BatchData::Keys(k(KeyType::List, &[b"x", b"y"]))),
        &mut frame,
    )
    .unwrap();
    // The type code follows the key column's data (length 1, then `k`).
    let list_code = frame
        .windows(5)
        .position(|w| w == [1, 0, 0, 0, b'k'])
        .unwrap()
        + 5;
    assert_eq!(frame[list_code], KeyType::List.code());
    for t in [KeyType::Set, KeyType::String] {
        let mut f = frame.clone();
        f[list_code] = t.code();
        assert!(decode_frame(&f).is_err(), "{t:?}");
    }
}

#[test]
fn a_sliced_key_batch_encodes_as_its_own_rows() {
    let mut b = KeyBuilder::new(true);
    for (k, v) in [(&b"a"[..], &b"1"[..]), (b"b", b"22"), (b"c", b"333")] {
        b.push_key(k, KeyType::String);
        b.push_str(v);
        b.push_event(b"set");
    }
    let all = b.finish().unwrap();
    let back = roundtrip(&Batch::new(BatchData::Keys(all.slice(1, 3))));
    match back.data {
        BatchData::Keys(got) => assert_eq!(got, all.slice(1, 3)),
        _ => panic!("shape changed"),
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [
        &b""[..],
        b"G",
        b"G\x01\x00\xff\xff\xff\xff",
        b"G\x03\x00\x01\xff\xff\xff\xff",
        b"G\x02\x01",
        b"G\x03\x07",
        b"X\x03\x01",
    ] {
        assert!(decode_frame(bad).is_err(), "{bad:?}");
    }
    let mut done = Vec::new();
    encode_done(&mut done);
    assert!(matches!(decode_frame(&done), Ok(Frame::Done)));
}

#[test]
fn hostile_key_offsets_are_errors() {
    let frame = hash_frame();
    let at = hash_offsets_at(&frame);
    let set = |i: usize, v: i32| {
        let mut f = frame.clone();
        f[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        decode_frame(&f).unwrap_err().message().to_string()
    };
    // Not starting at 0, decreasing, negative, past the items.
    for (i, v) in [(0, 1), (1, 3), (2, 1), (1, -1), (2, 9), (2, i32::MAX)] {
        assert!(set(i, v).contains("malformed"), "offset {i} = {v}");
    }
    // The key column's padding: header (3), shape (1), rows (4), flags (1), count (4),
    // then the pad byte; its offsets start 8-byte aligned, after 2 zero bytes.
    assert_eq!(frame[13..16], [2, 0, 0]);
    for pad in [8, 9, 0xff] {
        let mut f = frame.clone();
        f[13] = pad;
        assert!(decode_frame(&f).is_err(), "pad {pad}");
    }
}

#[test]
fn every_byte_mutation_of_a_key_frame_is_an_error_or_a_valid_batch() {
    let frame = hash_frame();
    for i in 0..frame.len() {
        for v in [0u8, 1, 2, 7, 8, 0x7f, 0x80, 0xff, frame[i].wrapping_add(1)] {
            let mut f = frame.clone();
            f[i] = v;
            if let Ok(Frame::Data(b)) = decode_frame(&f) {
                let again = roundtrip(&b);
                match (&b.data, &again.data) {
                    (BatchData::Keys(x), BatchData::Keys(y)) => assert_eq!(x, y, "byte {i} = {v}"),
                    _ => panic!("shape changed"),
                }
            }
        }
        assert!(decode_frame(&frame[..i]).is_err(), "cut at {i}");
    }
}

/// Every row of `k`, as a comparable view.
fn rows(k: &KeyColumns) -> Vec<String> {
    (0..k.len()).map(|i| format!("{:?}", k.row(i))).collect()
}

fn mixed_keys() -> KeyColumns {
    let mut b = KeyBuilder::new(true);
    for i in 0..12u8 {
        let key = [b'k', i];
        match i % 3 {
            0 => {
                b.push_key(&key, KeyType::Hash);
                (0..i % 4).for_each(|j| b.push_field(&[b'f', j], &[b'v', i]));
            }
            1 => {
                b.push_key(&key, KeyType::List);
                (0..i % 5).for_each(|j| b.push_item(&[j; 3]));
            }
            _ => {
                b.push_key(&key, KeyType::String);
                b.push_str(&[i; 2]);
            }
        }
        b.push_event(b"hset");
    }
    b.finish().unwrap()
}

#[test]
fn partitioned_key_batches_travel_as_their_own_rows() {
    let all = mixed_keys();
    let dest: Vec<usize> = (0..all.len()).map(|i| (i * 7) % 3).collect();
    for part in all.partition(&dest, 3) {
        let back = roundtrip(&Batch::new(BatchData::Keys(part.clone())));
        let BatchData::Keys(got) = back.data else {
            panic!("shape changed")
        };
        assert_eq!(rows(&got), rows(&part));
        // Only the part's own items travel.
        let items = |k: &KeyColumns| k.values().unwrap().lists.children[0].value_data().len();
        assert!(items(&got) <= items(&part));
    }
}

#[test]
fn decoded_key_arrays_borrow_the_received_buffer() {
    let mut bundle = vec![0u8; 24]; // transport header room, as the shuffle leaves it
    bundle_data(&mut bundle, &Batch::new(BatchData::Keys(mixed_keys()))).unwrap();
    bundle_done(&mut bundle);
    let body = Buffer::from_vec(bundle).slice(24);
    let range = body.as_ptr().addr()..body.as_ptr().addr() + body.len();
    let mut got = Vec::new();
    decode_bundle(&body, None, |f| got.push(f)).unwrap();
    assert!(matches!(got[1], Frame::Done));
    let Frame::Data(Batch {
        data: BatchData::Keys(k),
        ..
    }) = &got[0]
    else {
        panic!("key batch expected")
    };
    assert_eq!(rows(k), rows(&mixed_keys()));
    let v = k.values().unwrap();
    for p in [
        k.keys().value_data().as_ptr(),
        k.keys().value_offsets().as_ptr().cast(),
        k.types().values().as_ptr(),
        v.hashes.offsets.as_ptr().cast(),
        v.hashes.children[1].value_data().as_ptr(),
        v.lists.children[0].value_offsets().as_ptr().cast(),
        k.events().unwrap().value_data().as_ptr(),
    ] {
        assert!(range.contains(&p.addr()), "a column was copied");
    }
}

#[test]
fn a_frame_moved_off_its_alignment_still_decodes() {
    let mut frame = Vec::new();
    encode_data(&Batch::new(BatchData::Keys(mixed_keys())), &mut frame).unwrap();
    for shift in 1..8 {
        let mut moved = vec![0u8; shift];
        moved.extend_from_slice(&frame);
        let buf = Buffer::from_vec(moved).slice(shift);
        let Ok(Frame::Data(b)) = decode_shared(&buf, None) else {
            panic!("shift {shift}: not decoded")
        };
        let BatchData::Keys(k) = b.data else {
            panic!("shape changed")
        };
        assert_eq!(rows(&k), rows(&mixed_keys()), "shift {shift}");
    }
}

/// Host rows that are the unchanged records of a key batch.
#[derive(Debug)]
struct KeyedTexts(KeyColumns);

impl crate::batch::ForeignColumn for KeyedTexts {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slice(self: Box<Self>, a: usize, b: usize) -> Box<dyn crate::batch::ForeignColumn> {
        Box::new(KeyedTexts(self.0.slice(a, b)))
    }
    fn partition(
        self: Box<Self>,
        _dest: &[usize],
        _n: usize,
    ) -> Vec<Box<dyn crate::batch::ForeignColumn>> {
        unimplemented!()
    }
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
    fn encode(&self, _out: &mut Vec<u8>, _errors: &mut Vec<String>) -> Result<(), String> {
        panic!("host rows with a key batch are sent as that batch")
    }
    fn as_keys(&self) -> Option<&KeyColumns> {
        Some(&self.0)
    }
}

#[test]
fn host_rows_with_their_key_batch_travel_as_that_key_batch() {
    let mut kb = KeyBuilder::new(true);
    kb.push_key(b"a", KeyType::String);
    kb.push_str(b"1");
    kb.push_key(b"b", KeyType::Hash);
    kb.push_field(b"f", b"2");
    let keys = kb.finish().unwrap();
    let mut b = Batch::new(BatchData::Foreign(Box::new(KeyedTexts(keys.clone()))));
    b.partition_keys = Some(BinaryColumn::from_iter([&b"x"[..], b"y"]));
    let mut out = Vec::new();
    encode_data(&b, &mut out).unwrap();
    let Frame::Data(got) = decode_frame(&out).unwrap() else {
        panic!("data frame expected");
    };
    match got.data {
        BatchData::Keys(k) => assert_eq!(k, keys),
        other => panic!("key batch expected, got {other:?}"),
    }
    let k = got.partition_keys.unwrap();
    assert_eq!((k.get(0), k.get(1)), (&b"x"[..], &b"y"[..]));
}
