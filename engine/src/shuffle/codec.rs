//! Shuffle frames: the bytes one shard sends another for a `collect`/`repartition` step.
//!
//! Layout v3 (little-endian): `magic 'G' | version 3 | kind`; kind 1 = "done sending";
//! kind 0 = data, records first: a shape byte and the records (key columns as their Arrow
//! buffers, [`super::key_codec`] — also for host rows that are unchanged reader records,
//! `ForeignColumn::as_keys`; tagged datums; or the host's serialised blob of foreign
//! records), then the optional partition keys, then the error lane. Records come first so a
//! host blob is written straight into the frame (its length patched in afterwards) even
//! when the host turns unserialisable rows into errors while writing it.
//!
//! A bundle is the frames one transport message carries, each length-prefixed;
//! [`bundle_data`] encodes a batch straight into the bundle (no scratch buffer).
//! [`decode_bundle`] decodes a received bundle held as an Arrow buffer: key batches'
//! arrays are slices of it (no copy); datums, host records, partition keys and errors are
//! parsed into their own allocations. [`decode_frame`] takes plain bytes and copies them
//! once into such a buffer first.
//! Decoding never trusts the input: every length is checked against what remains, nesting
//! depth is bounded, and malformed frames are errors, never panics (fuzzed in `fuzz/`).
//! Depends on `frame_io`, `key_codec`, `batch`, `datum` and `error`.

use arrow_buffer::{Buffer, MutableBuffer};

use super::frame_io::{bad, put_bytes, put_column, put_datum, put_u32, Reader};
use super::key_codec::{put_keys, read_keys};
use crate::batch::{Batch, BatchData, ForeignDecoder};
use crate::error::{EngineError, Result};

const MAGIC: u8 = b'G';
/// 2: records before the partition keys and the error lane. 3: key batches as their
/// Arrow buffers (8-byte aligned offsets), read in place on receipt.
const VERSION: u8 = 3;
const KIND_DATA: u8 = 0;
const KIND_DONE: u8 = 1;
/// A frame copied by [`decode_frame`] keeps its address modulo this (the key codec's
/// offset alignment), so its offsets stay aligned if they were.
const SKEW: usize = 8;

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
        // Host rows that are unchanged reader records travel as their key batch.
        BatchData::Foreign(f) => match f.as_keys() {
            Some(k) => {
                out.push(1);
                put_keys(out, k);
            }
            None => {
                out.push(2);
                let at = reserve_u32(out);
                f.encode(out, &mut errors).map_err(EngineError::Execution)?;
                patch_u32(out, at)?;
            }
        },
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
    let mut r = Reader::new(bytes);
    let mut frames = Vec::new();
    while !r.buf.is_empty() {
        frames.push(r.bytes()?);
    }
    Ok(frames)
}

/// Decodes every frame of a received bundle, in order, handing each to `each`. Key
/// batches borrow `body` (it stays alive until the last of their arrays drops).
pub fn decode_bundle(
    body: &Buffer,
    foreign: Option<&dyn ForeignDecoder>,
    mut each: impl FnMut(Frame),
) -> Result<()> {
    let mut r = Reader::new(body.as_slice());
    while !r.buf.is_empty() {
        let n = r.u32()? as usize;
        let (at, _) = r.take_at(n)?;
        each(decode_shared(&body.slice_with_length(at, n), foreign)?);
    }
    Ok(())
}

/// Decodes one frame (frames carrying host records are refused: no decoder).
pub fn decode_frame(bytes: &[u8]) -> Result<Frame> {
    decode_frame_with(bytes, None)
}

/// Decodes one frame; `foreign` rebuilds host records. The bytes are copied once (see
/// the module doc); [`decode_bundle`] reads a received buffer in place.
pub fn decode_frame_with(bytes: &[u8], foreign: Option<&dyn ForeignDecoder>) -> Result<Frame> {
    let skew = bytes.as_ptr().addr() % SKEW;
    let mut copy = MutableBuffer::with_capacity(skew + bytes.len());
    copy.extend_zeros(skew);
    copy.extend_from_slice(bytes);
    decode_shared(&Buffer::from(copy).slice(skew), foreign)
}

/// Decodes the frame that is all of `frame`; key batches are slices of it.
pub fn decode_shared(frame: &Buffer, foreign: Option<&dyn ForeignDecoder>) -> Result<Frame> {
    let mut r = Reader::new(frame.as_slice());
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
                1 => BatchData::Keys(read_keys(&mut r, frame)?),
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

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
