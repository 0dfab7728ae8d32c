//! Unit tests of the frame codec (included by `codec.rs`).

use super::*;

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

/// The frame of one hash row `h` with `items` value items (`f`, `v`, `f`, ...).
fn hash_frame(items: usize) -> Vec<u8> {
    let mut b = KeyBuilder::new(true);
    b.push_key(b"h", KeyType::Hash);
    b.push_field(b"f", b"v");
    let mut buf = Vec::new();
    encode_data(&Batch::new(BatchData::Keys(b.finish().unwrap())), &mut buf).unwrap();
    // type code 1 (hash), value flag 1, then the item count.
    let at = buf
        .windows(6)
        .position(|w| w == [1, 1, 2, 0, 0, 0])
        .unwrap()
        + 2;
    buf[at] = items as u8;
    buf
}

#[test]
fn key_values_must_fit_their_type() {
    assert!(decode_frame(&hash_frame(2)).is_ok());
    // One item left over: an odd count for a hash is malformed, not a panic.
    let err = decode_frame(&hash_frame(1)).unwrap_err();
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
        b"G\x01\x07",
        b"X\x01\x01",
    ] {
        assert!(decode_frame(bad).is_err(), "{bad:?}");
    }
    let mut done = Vec::new();
    encode_done(&mut done);
    assert!(matches!(decode_frame(&done), Ok(Frame::Done)));
}
