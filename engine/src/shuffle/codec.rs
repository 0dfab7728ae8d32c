//! Shuffle frames: the bytes one shard sends another for a `collect`/`repartition` step.
//!
//! Layout v2 (little-endian): `magic 'G' | version 2 | kind`; kind 1 = "done sending";
//! kind 0 = data, records first: a shape byte and the records (key columns as raw column
//! buffers, tagged datums, or the host's serialised blob of foreign records), then the
//! optional partition keys, then the error lane. Records come first so a host blob is
//! written straight into the frame (its length patched in afterwards) even when the host
//! turns unserialisable rows into errors while writing it.
//!
//! A bundle is the frames one transport message carries, each length-prefixed;
//! [`bundle_data`] encodes a batch straight into the bundle (no scratch buffer).
//! Decoding never trusts the input: every length is checked against what remains, nesting
//! depth is bounded, and malformed frames are errors, never panics (fuzzed in `fuzz/`).

use arrow_array::BinaryArray;

use crate::batch::{
    Batch, BatchData, BinaryColumn, ForeignDecoder, KeyBuilder, KeyColumns, KeyType,
};
use crate::datum::Datum;
use crate::error::{EngineError, Result};

const MAGIC: u8 = b'G';
/// 2: records before the partition keys and the error lane.
const VERSION: u8 = 2;
const KIND_DATA: u8 = 0;
const KIND_DONE: u8 = 1;
const MAX_DEPTH: usize = 64;

/// A decoded frame.
// Frames are decoded, matched and unpacked at once; boxing the batch would cost an
// allocation per frame to save a move.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Frame {
    Data(Batch),
    Done,
}

/// Appends a "done sending" frame.
pub fn encode_done(out: &mut Vec<u8>) {
    out.extend_from_slice(&[MAGIC, VERSION, KIND_DONE]);
}

/// Appends a data frame for `b`. Host columns are serialised by the host
/// ([`crate::batch::ForeignColumn::encode`]) straight into `out`; rows it cannot serialise
/// become errors. On `Err`, `out` may hold a partial frame (see [`bundle_data`]).
pub fn encode_data(b: &Batch, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(&[MAGIC, VERSION, KIND_DATA]);
    let mut errors = b.errors.clone();
    match &b.data {
        BatchData::Datums(d) => {
            out.push(0);
            put_u32(out, d.len());
            for v in d {
                put_datum(out, v);
            }
        }
        BatchData::Keys(k) => {
            out.push(1);
            put_keys(out, k);
        }
        BatchData::Foreign(f) => {
            out.push(2);
            let at = reserve_u32(out);
            f.encode(out, &mut errors).map_err(EngineError::Execution)?;
            patch_u32(out, at)?;
        }
    }
    // Rows the host could not serialise are gone, so the keys would no longer line up.
    let dropped_rows = errors.len() > b.errors.len();
    match b.partition_keys.as_ref().filter(|_| !dropped_rows) {
        Some(k) => {
            out.push(1);
            put_column(out, k);
        }
        None => out.push(0),
    }
    put_u32(out, errors.len());
    for e in &errors {
        put_bytes(out, e.as_bytes());
    }
    Ok(())
}

/// Appends a data frame for `b` to `bundle`, encoded in place (length prefix patched in
/// afterwards): the only copy of the records on the way to the wire. On `Err` the bundle
/// is left as it was.
pub fn bundle_data(bundle: &mut Vec<u8>, b: &Batch) -> Result<()> {
    let at = reserve_u32(bundle);
    match encode_data(b, bundle).and_then(|()| patch_u32(bundle, at)) {
        Ok(()) => Ok(()),
        Err(e) => {
            bundle.truncate(at);
            Err(e)
        }
    }
}

/// Appends a "done sending" frame to `bundle`.
pub fn bundle_done(bundle: &mut Vec<u8>) {
    put_u32(bundle, 3);
    encode_done(bundle);
}

/// Reserves a u32 length at the end of `out`; returns where it is.
fn reserve_u32(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Writes the length of what follows the u32 at `at`.
fn patch_u32(out: &mut [u8], at: usize) -> Result<()> {
    let n = u32::try_from(out.len() - at - 4)
        .map_err(|_| EngineError::Execution("shuffle frame larger than 4 GiB".into()))?;
    out[at..at + 4].copy_from_slice(&n.to_le_bytes());
    Ok(())
}

/// Appends `frame` to a bundle: the frames one transport message carries, each
/// length-prefixed, so small batch parts travel together (fewer, larger messages).
pub fn bundle_push(bundle: &mut Vec<u8>, frame: &[u8]) {
    put_bytes(bundle, frame);
}

/// The frames of a bundle; a truncated or overlong length is an error, never a panic.
pub fn unbundle(bytes: &[u8]) -> Result<Vec<&[u8]>> {
    let mut r = Reader { buf: bytes };
    let mut frames = Vec::new();
    while !r.buf.is_empty() {
        frames.push(r.bytes()?);
    }
    Ok(frames)
}

/// Decodes one frame (frames carrying host records are refused: no decoder).
pub fn decode_frame(bytes: &[u8]) -> Result<Frame> {
    decode_frame_with(bytes, None)
}

/// Decodes one frame; `foreign` rebuilds host records.
pub fn decode_frame_with(bytes: &[u8], foreign: Option<&dyn ForeignDecoder>) -> Result<Frame> {
    let mut r = Reader { buf: bytes };
    if r.u8()? != MAGIC || r.u8()? != VERSION {
        return Err(bad("bad magic or version"));
    }
    match r.u8()? {
        KIND_DONE => Ok(Frame::Done),
        KIND_DATA => {
            let data = match r.u8()? {
                0 => {
                    let n = r.count(1)?;
                    let mut d = Vec::with_capacity(n);
                    for _ in 0..n {
                        d.push(r.datum(0)?);
                    }
                    BatchData::Datums(d)
                }
                1 => BatchData::Keys(r.keys()?),
                2 => {
                    let blob = r.bytes()?;
                    let dec = foreign.ok_or_else(|| bad("host records without a decoder"))?;
                    BatchData::Foreign(dec.decode(blob).map_err(EngineError::Execution)?)
                }
                _ => return Err(bad("unknown record shape")),
            };
            let partition_keys = match r.u8()? {
                0 => None,
                1 => Some(r.column()?),
                _ => return Err(bad("bad partition key flag")),
            };
            let n = r.count(4)?;
            let mut errors = Vec::with_capacity(n);
            for _ in 0..n {
                errors.push(r.string()?);
            }
            if !r.buf.is_empty() {
                return Err(bad("trailing bytes"));
            }
            if partition_keys
                .as_ref()
                .is_some_and(|k| k.len() != data_len(&data))
            {
                return Err(bad("partition keys do not match rows"));
            }
            Ok(Frame::Data(Batch {
                data,
                partition_keys,
                errors,
            }))
        }
        _ => Err(bad("unknown frame kind")),
    }
}

fn data_len(d: &BatchData) -> usize {
    match d {
        BatchData::Keys(k) => k.len(),
        BatchData::Datums(d) => d.len(),
        BatchData::Foreign(f) => f.len(),
    }
}

fn bad(what: &str) -> EngineError {
    EngineError::Execution(format!("malformed shuffle frame: {what}"))
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

fn put_column(out: &mut Vec<u8>, c: &BinaryColumn) {
    let (offsets, data) = c.parts();
    put_u32(out, offsets.len());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    put_bytes(out, data);
}

/// An Arrow binary array in `put_column`'s layout (offsets rebased to 0 for a slice).
fn put_binary(out: &mut Vec<u8>, a: &BinaryArray) {
    let offsets = a.value_offsets();
    let (first, last) = (offsets[0], offsets[offsets.len() - 1]);
    put_u32(out, offsets.len());
    for o in offsets {
        out.extend_from_slice(&((o - first) as u32).to_le_bytes());
    }
    put_bytes(out, &a.value_data()[first as usize..last as usize]);
}

/// Key rows: keys, type codes, then per row its value as a counted list of items (a
/// string is one item, a hash alternates fields and values, a list holds its elements,
/// other types none), then the events.
fn put_keys(out: &mut Vec<u8>, k: &KeyColumns) {
    put_binary(out, k.keys());
    out.extend_from_slice(k.types().values());
    match k.values() {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            for i in 0..k.len() {
                match k.key_type(i) {
                    KeyType::String => {
                        put_u32(out, 1);
                        put_bytes(out, v.strings.value(i));
                    }
                    KeyType::Hash => {
                        let (f, val) = (&v.hashes.children[0], &v.hashes.children[1]);
                        let r = v.hashes.range(i);
                        put_u32(out, 2 * r.len());
                        for j in r {
                            put_bytes(out, f.value(j));
                            put_bytes(out, val.value(j));
                        }
                    }
                    KeyType::List => {
                        let items = &v.lists.children[0];
                        let r = v.lists.range(i);
                        put_u32(out, r.len());
                        for j in r {
                            put_bytes(out, items.value(j));
                        }
                    }
                    _ => put_u32(out, 0),
                }
            }
        }
    }
    match k.events() {
        None => out.push(0),
        Some(e) => {
            out.push(1);
            put_binary(out, e);
        }
    }
}

fn put_datum(out: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => out.push(0),
        Datum::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
        Datum::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Datum::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Datum::Str(s) => {
            out.push(4);
            put_bytes(out, s.as_bytes());
        }
        Datum::Bytes(b) => {
            out.push(5);
            put_bytes(out, b);
        }
        Datum::List(items) => {
            out.push(6);
            put_u32(out, items.len());
            for i in items {
                put_datum(out, i);
            }
        }
        Datum::Map(items) => {
            out.push(7);
            put_u32(out, items.len());
            for (k, v) in items {
                put_bytes(out, k.as_bytes());
                put_datum(out, v);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(bad("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of items each at least `min_size` bytes long, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() {
            return Err(bad("count exceeds frame"));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("invalid utf-8"))
    }

    fn column(&mut self) -> Result<BinaryColumn> {
        let n = self.count(4)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(self.u32()?);
        }
        let data = self.bytes()?.to_vec();
        BinaryColumn::from_parts(offsets, data).ok_or_else(|| bad("bad column offsets"))
    }

    fn keys(&mut self) -> Result<KeyColumns> {
        let keys = self.column()?;
        let types = self.take(keys.len())?;
        let read_value = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad("bad value flag")),
        };
        let mut b = KeyBuilder::new(read_value);
        for (key, &code) in keys.iter().zip(types) {
            let t = KeyType::from_code(code).ok_or_else(|| bad("bad key type"))?;
            b.push_key(key, t);
            if read_value {
                self.key_value(&mut b, t)?;
            }
        }
        match self.u8()? {
            0 => {}
            1 => {
                let e = self.column()?;
                if e.len() != keys.len() {
                    return Err(bad("events do not match rows"));
                }
                e.iter().for_each(|ev| b.push_event(ev));
            }
            _ => return Err(bad("bad event flag")),
        }
        b.finish()
    }

    /// One row's value items, checked against its type.
    fn key_value(&mut self, b: &mut KeyBuilder, t: KeyType) -> Result<()> {
        let n = self.count(4)?;
        match t {
            KeyType::String if n == 1 => b.push_str(self.bytes()?),
            KeyType::Hash if n % 2 == 0 => {
                for _ in 0..n / 2 {
                    let field = self.bytes()?;
                    b.push_field(field, self.bytes()?);
                }
            }
            KeyType::List => {
                for _ in 0..n {
                    b.push_item(self.bytes()?);
                }
            }
            _ if n == 0 && t != KeyType::String => {}
            _ => return Err(bad("value items do not match the key type")),
        }
        Ok(())
    }

    fn datum(&mut self, depth: usize) -> Result<Datum> {
        if depth > MAX_DEPTH {
            return Err(bad("nesting too deep"));
        }
        Ok(match self.u8()? {
            0 => Datum::Null,
            1 => Datum::Bool(self.u8()? != 0),
            2 => Datum::Int(i64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| bad("int"))?,
            )),
            3 => Datum::Float(f64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| bad("float"))?,
            )),
            4 => Datum::Str(self.string()?),
            5 => Datum::Bytes(self.bytes()?.to_vec()),
            6 => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.datum(depth + 1)?);
                }
                Datum::List(items)
            }
            7 => {
                let n = self.count(5)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.string()?;
                    items.push((k, self.datum(depth + 1)?));
                }
                Datum::Map(items)
            }
            _ => return Err(bad("unknown datum tag")),
        })
    }
}

#[cfg(test)]
mod tests {
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
}
