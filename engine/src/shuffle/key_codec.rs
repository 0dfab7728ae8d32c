//! Key batches on the wire (frame shape 1): every Arrow buffer of a [`KeyColumns`] as it
//! is in memory, so the receiver's arrays are slices of the received buffer, not copies.
//!
//! Layout (little-endian): `rows u32 | flags u8` (1 = values, 2 = events), the `keys`
//! binary column, `rows` type-code bytes, then with values the `strings` binary column, the
//! hash entry offsets and the `fields` and `values` binary columns, the list offsets and the
//! `items` binary column; with events, the `events` binary column. A binary column is
//! `n u32 | offsets | data_len u32 | data`; offsets are `pad u8 | pad zero bytes | n + 1
//! i32`, padded to 8 bytes from the start of the buffer being written (a bundle), and
//! rebased to start at 0 (a sliced array is sent as its own rows only).
//!
//! Decoding checks everything in one pass per buffer: offsets start at 0, never decrease
//! and end at their data's length; type codes are known; a row has items only in its own
//! type's value slot. Validity (which value slot a row uses) is rebuilt from the types.
//! Offsets that land at an address that is not a multiple of 4 (`i32`'s alignment: the
//! received buffer was moved by other than a multiple of 4 from where it was written) are
//! copied into an aligned buffer; nothing else is copied. The bus's receive copy keeps the
//! sender's alignment, so in the module offsets are read in place
//! (`engine/tests/key_batch_props.rs` checks both cases, and hostile frames).
//! Depends on `frame_io`, `batch`, `pool` (offsets checked once) and `error`.

use arrow_array::{Array, BinaryArray, UInt8Array};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};

use super::frame_io::{bad, put_bytes, put_u32, Reader};
use crate::batch::{value_nulls, KeyColumns, KeyType, KeyValues, Nested};
use crate::error::Result;
use crate::pool::checked_offsets;

/// Offsets start this far into the written buffer (a multiple of).
const ALIGN: usize = 8;
const HAS_VALUES: u8 = 1;
const HAS_EVENTS: u8 = 2;
const OFFSET: usize = std::mem::size_of::<i32>();

// Arrow buffers are written as they are in memory; frames are little-endian.
const _: () = assert!(cfg!(target_endian = "little"));

/// Appends the columns of `k` (see the module doc).
pub(super) fn put_keys(out: &mut Vec<u8>, k: &KeyColumns) {
    put_u32(out, k.len());
    let flags = if k.values().is_some() { HAS_VALUES } else { 0 }
        | if k.events().is_some() { HAS_EVENTS } else { 0 };
    out.push(flags);
    put_binary(out, k.keys());
    out.extend_from_slice(k.types().values());
    if let Some(v) = k.values() {
        put_binary(out, &v.strings);
        put_nested(out, &v.hashes);
        put_nested(out, &v.lists);
    }
    if let Some(e) = k.events() {
        put_binary(out, e);
    }
}

/// Offsets, 8-byte aligned in `out` and rebased to 0 (one copy, then a fix-up pass for
/// a sliced array whose offsets do not start at 0).
fn put_offsets(out: &mut Vec<u8>, o: &OffsetBuffer<i32>) {
    let pad = (ALIGN - (out.len() + 1) % ALIGN) % ALIGN;
    out.push(pad as u8);
    out.resize(out.len() + pad, 0);
    let at = out.len();
    out.extend_from_slice(o.inner().inner().as_slice());
    let first = o[0];
    if first != 0 {
        for c in out[at..].chunks_exact_mut(OFFSET) {
            let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]) - first;
            c.copy_from_slice(&v.to_le_bytes());
        }
    }
}

fn put_binary(out: &mut Vec<u8>, a: &BinaryArray) {
    let o = a.offsets();
    let (first, last) = (o[0] as usize, o[o.len() - 1] as usize);
    put_u32(out, a.len());
    put_offsets(out, o);
    put_bytes(out, &a.value_data()[first..last]);
}

/// Per-row offsets, then each child's items of those rows only.
fn put_nested(out: &mut Vec<u8>, n: &Nested) {
    let (first, last) = (n.offsets[0] as usize, n.offsets[n.len()] as usize);
    put_offsets(out, &n.offsets);
    for c in &n.children {
        put_binary(out, &c.slice(first, last - first));
    }
}

/// Reads key columns from `r`, which reads `frame`'s bytes: the arrays are slices of `frame`.
pub(super) fn read_keys(r: &mut Reader<'_>, frame: &Buffer) -> Result<KeyColumns> {
    let rows = r.count(1)?;
    let flags = r.u8()?;
    if flags & !(HAS_VALUES | HAS_EVENTS) != 0 {
        return Err(bad("bad key batch flags"));
    }
    let keys = read_binary(r, frame, rows, None)?;
    let (at, codes) = r.take_at(rows)?;
    if codes.iter().fold(0, |m, &c| m.max(c)) > KeyType::Empty.code() {
        return Err(bad("bad key type"));
    }
    let types = UInt8Array::new(ScalarBuffer::from(frame.slice_with_length(at, rows)), None);
    let values = if flags & HAS_VALUES != 0 {
        let strings = read_binary(r, frame, rows, value_nulls(codes, KeyType::String))?;
        let hashes = read_nested(r, frame, rows, 2, value_nulls(codes, KeyType::Hash))?;
        let lists = read_nested(r, frame, rows, 1, value_nulls(codes, KeyType::List))?;
        let v = KeyValues {
            strings,
            hashes,
            lists,
        };
        check_slots(codes, &v)?;
        Some(v)
    } else {
        None
    };
    let events = match flags & HAS_EVENTS {
        0 => None,
        _ => Some(read_binary(r, frame, rows, None)?),
    };
    Ok(KeyColumns::from_arrays(keys, types, values, events))
}

/// `n + 1` offsets, checked (start at 0, never decrease); returns them and the last.
fn read_offsets(
    r: &mut Reader<'_>,
    frame: &Buffer,
    n: usize,
) -> Result<(OffsetBuffer<i32>, usize)> {
    let pad = r.u8()? as usize;
    if pad >= ALIGN {
        return Err(bad("bad offset padding"));
    }
    r.take(pad)?;
    let len = n
        .checked_add(1)
        .and_then(|c| c.checked_mul(OFFSET))
        .ok_or_else(|| bad("count exceeds frame"))?;
    let (at, bytes) = r.take_at(len)?;
    let buf = if bytes.as_ptr().align_offset(OFFSET) == 0 {
        frame.slice_with_length(at, len)
    } else {
        Buffer::from_slice_ref(bytes)
    };
    let offsets = ScalarBuffer::<i32>::from(buf);
    let last = offsets[n] as usize;
    let offsets = checked_offsets(offsets).ok_or_else(|| bad("bad column offsets"))?;
    Ok((offsets, last))
}

/// A binary column of `n` rows.
fn read_binary(
    r: &mut Reader<'_>,
    frame: &Buffer,
    n: usize,
    nulls: Option<NullBuffer>,
) -> Result<BinaryArray> {
    if r.u32()? as usize != n {
        return Err(bad("column length does not match rows"));
    }
    let (offsets, last) = read_offsets(r, frame, n)?;
    if r.u32()? as usize != last {
        return Err(bad("column data does not match its offsets"));
    }
    let (at, _) = r.take_at(last)?;
    BinaryArray::try_new(offsets, frame.slice_with_length(at, last), nulls)
        .map_err(|_| bad("bad binary column"))
}

/// Per-row offsets over `children` binary columns of as many items as the offsets say.
fn read_nested(
    r: &mut Reader<'_>,
    frame: &Buffer,
    rows: usize,
    children: usize,
    nulls: Option<NullBuffer>,
) -> Result<Nested> {
    let (offsets, items) = read_offsets(r, frame, rows)?;
    let children = (0..children)
        .map(|_| read_binary(r, frame, items, None))
        .collect::<Result<Vec<_>>>()?;
    Ok(Nested {
        offsets,
        nulls,
        children,
    })
}

/// Rows hold a value only in their own type's slot (a string row one string; other rows
/// an empty string, no hash entries, no list items unless of that type).
fn check_slots(codes: &[u8], v: &KeyValues) -> Result<()> {
    let only = |t: KeyType, o: &[i32]| {
        let code = t.code();
        codes
            .iter()
            .zip(o.iter().zip(&o[1..]))
            .fold(true, |ok, (&c, (a, b))| ok & ((c == code) | (a == b)))
    };
    if only(KeyType::String, v.strings.value_offsets())
        && only(KeyType::Hash, &v.hashes.offsets)
        && only(KeyType::List, &v.lists.offsets)
    {
        Ok(())
    } else {
        Err(bad("value items do not match the key type"))
    }
}
