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
#[path = "codec_tests.rs"]
mod tests;
