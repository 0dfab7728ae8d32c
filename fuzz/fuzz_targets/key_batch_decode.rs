//! Fuzzes reading key batches in place (frame v3, record shape 1): the receiver's arrays
//! are slices of the received buffer, so hostile offsets, lengths, padding, type codes or
//! value slots must be refused by the decoder; an accepted batch must be safe to use.
//!
//! Input: byte 0 picks where the bundle sits in the receive buffer (`% 8`: offsets that
//! land misaligned take the decoder's copying branch) and whether the rest is taken as a
//! raw key-batch body (after a valid header, so the fuzzer starts inside the key codec)
//! or as a recipe: a valid key batch built from the bytes, encoded, then corrupted at
//! fuzzer-chosen places ([`corrupt`]). The bundle is decoded with `decode_bundle` (the
//! path received bundles take). Every accepted batch is used whole: every row read (its
//! value slot's validity agrees with its type), sliced, gathered, made a record batch,
//! and re-encoded, which must decode to an equal batch.
//! `engine/tests/key_batch_props.rs` runs the same checks on stable: [`exercise`] is
//! shared with it by path.
#![no_main]

#[path = "../../engine/tests/common/key_batch_use.rs"]
mod key_batch_use;

use arrow_buffer::{Buffer, MutableBuffer};
use engine::batch::{KeyBuilder, KeyType};
use engine::shuffle::{bundle_data, decode_bundle, Frame};
use engine::{Batch, BatchData};
use key_batch_use::exercise;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let frame = if mode & 8 == 0 {
        [&b"G\x03\x00\x01"[..], rest].concat()
    } else {
        corrupt(rest)
    };
    let mut bundle = Vec::new();
    bundle.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    bundle.extend_from_slice(&frame);
    let skew = usize::from(mode % 8);
    let mut buf = MutableBuffer::with_capacity(skew + bundle.len());
    buf.extend_zeros(skew);
    buf.extend_from_slice(&bundle);
    let received = Buffer::from(buf).slice(skew);
    let _ = decode_bundle(&received, None, |f| {
        if let Frame::Data(Batch {
            data: BatchData::Keys(k),
            ..
        }) = f
        {
            exercise(&k);
        }
    });
});

/// A valid frame of a key batch built from `recipe`, then corrupted: the recipe's first
/// byte says how many rows and whether values and events are read, the next bytes are the
/// rows' type codes, and the last 8 bytes at most are the corruption — a position and a
/// little-endian value written over 1 or 4 bytes there.
fn corrupt(recipe: &[u8]) -> Vec<u8> {
    let (head, tail) = recipe.split_at(recipe.len().saturating_sub(8));
    let shape = head.first().copied().unwrap_or(0);
    let rows = usize::from(shape % 16);
    let mut k = KeyBuilder::new(shape & 16 != 0);
    let events = shape & 32 != 0;
    for i in 0..rows {
        let code = head.get(1 + i).copied().unwrap_or(0) % 8;
        let t = KeyType::from_code(code).unwrap_or(KeyType::String);
        k.push_key(format!("k{i}").as_bytes(), t);
        match t {
            KeyType::String => k.push_str(b"v"),
            KeyType::Hash => k.push_field(b"f", b"x"),
            KeyType::List => k.push_item(b"i"),
            _ => {}
        }
        if events {
            k.push_event(b"hset");
        }
    }
    let keys = k.finish().expect("a small batch");
    let start = usize::from(shape >> 6).min(rows);
    let batch = Batch::new(BatchData::Keys(keys.slice(start, rows)));
    let mut bundle = Vec::new();
    bundle_data(&mut bundle, &batch).expect("key batches encode");
    let mut frame = bundle.split_off(4);
    if tail.len() >= 3 && !frame.is_empty() {
        let at = usize::from(u16::from_le_bytes([tail[0], tail[1]])) % frame.len();
        let value = &tail[2..];
        let n = if value.len() >= 4 { 4 } else { 1 };
        let end = (at + n).min(frame.len());
        frame[at..end].copy_from_slice(&value[..end - at]);
    }
    frame
}
