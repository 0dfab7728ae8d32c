//! Properties of reading key batches in place (shuffle frame v3, record shape 1), run on
//! stable in CI; `fuzz/fuzz_targets/key_batch_decode.rs` fuzzes the same checks.
//!
//! A received bundle is decoded with `decode_bundle`, as the module does: the arrays of a
//! key batch are slices of the received buffer. So:
//! - a valid batch (sliced ones included) decodes equal to what was sent, wherever the
//!   bundle sits in memory; its value bytes are always in the received buffer, its offsets
//!   too unless they land at an address that is not a multiple of 4 (then they are copied);
//! - hostile bytes (every position of valid frames overwritten with edge values: offsets,
//!   lengths, padding, row counts, flags, type codes, value slots) are an error, or a batch
//!   that is safe to use whole: every row readable, its value slots' validity (rebuilt from
//!   the types, never sent) agreeing with its type, slices, gathers and a record batch made
//!   without a panic, and a re-encoding that decodes equal.

mod common;

#[path = "common/key_batch_use.rs"]
mod key_batch_use;

use std::ops::Range;

use arrow_buffer::{Buffer, MutableBuffer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::keys::random_keys;
use engine::batch::{KeyBuilder, KeyType};
use engine::shuffle::bundle_data;
use engine::{Batch, BatchData, Datum};
use key_batch_use::{bundle_of, decode_keys, exercise, rows_of};

const SEED: u64 = 0x6b_65_79_73; // "keys"

/// `bundle` copied into a new buffer at `skew` bytes past an 8-byte boundary.
fn received_at(bundle: &[u8], skew: usize) -> Buffer {
    let mut buf = MutableBuffer::with_capacity(skew + bundle.len());
    buf.extend_zeros(skew);
    buf.extend_from_slice(bundle);
    Buffer::from(buf).slice(skew)
}

fn inside(p: *const u8, buf: &Buffer) -> bool {
    let r: Range<usize> = buf.as_ptr().addr()..buf.as_ptr().addr() + buf.len();
    r.contains(&p.addr())
}

#[test]
fn valid_key_batches_are_read_in_place_wherever_the_bundle_lands() {
    let mut rng = StdRng::seed_from_u64(SEED);
    for i in 0..400 {
        let rows = rng.random_range(0..24);
        let all = random_keys(&mut rng, rows);
        let start = rng.random_range(0..=rows);
        let k = all.slice(start, rows);
        // A datum frame first on some bundles, so the key frame starts at any offset.
        let mut bundle = Vec::new();
        if rng.random_bool(0.5) {
            let d = Batch::datums(vec![Datum::Str("x".repeat(rng.random_range(0..9)))]);
            bundle_data(&mut bundle, &d).expect("datums encode");
        }
        let sent = Batch::new(BatchData::Keys(k.clone()));
        bundle_data(&mut bundle, &sent).expect("keys encode");
        for skew in 0..8 {
            let received = received_at(&bundle, skew);
            let got = decode_keys(&received).expect("a valid bundle decodes");
            assert_eq!(got.len(), 1);
            assert_eq!(rows_of(&got[0]), rows_of(&k), "batch {i} at skew {skew}");
            exercise(&got[0]);
            let keys = got[0].keys();
            if !keys.value_data().is_empty() {
                assert!(
                    inside(keys.value_data().as_ptr(), &received),
                    "values copied"
                );
            }
            let offsets = keys.offsets().inner().inner().as_ptr();
            if k.is_empty() {
                continue;
            }
            assert_eq!(
                inside(offsets, &received),
                skew % 4 == 0,
                "batch {i} at skew {skew}: offsets in place only when 4-byte aligned"
            );
        }
    }
}

/// Small valid key frames of every shape: with and without values and events, sliced or
/// not, with rows of every type.
fn sample_frames() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for shape in 0..8u8 {
        let mut k = KeyBuilder::new(shape & 1 != 0);
        for (i, t) in [KeyType::String, KeyType::Hash, KeyType::List, KeyType::Set]
            .into_iter()
            .enumerate()
        {
            k.push_key(format!("key{i}").as_bytes(), t);
            match t {
                KeyType::String => k.push_str(b"value"),
                KeyType::Hash => {
                    k.push_field(b"f1", b"v1");
                    k.push_field(b"f2", b"v2");
                }
                KeyType::List => k.push_item(b"item"),
                _ => {}
            }
            if shape & 2 != 0 {
                k.push_event(b"hset");
            }
        }
        let k = k.finish().expect("a small batch");
        let k = if shape & 4 != 0 { k.slice(1, 4) } else { k };
        frames.push(bundle_of(&k));
    }
    frames
}

/// Every byte of every sample frame overwritten with edge values, as one byte and as a
/// little-endian word (a count, a length, an offset, padding, a flag or a type code,
/// whichever is there), decoded with the offsets aligned and misaligned.
#[test]
fn hostile_key_frames_are_errors_or_safe_batches() {
    let words: [u32; 9] = [0, 1, 3, 4, 7, 8, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
    let bytes: [u8; 8] = [0, 1, 2, 7, 8, 9, 0x80, 0xff];
    let (mut accepted, mut refused) = (0usize, 0usize);
    for bundle in sample_frames() {
        let whole = [bundle.len() as u32];
        // After the bundle's length prefix: the frame itself.
        for at in 4..bundle.len() {
            let edits = bytes
                .iter()
                .map(|b| vec![*b])
                .chain(words.iter().chain(&whole).map(|w| w.to_le_bytes().to_vec()));
            for edit in edits {
                let mut hostile = bundle.clone();
                let end = (at + edit.len()).min(hostile.len());
                hostile[at..end].copy_from_slice(&edit[..end - at]);
                for skew in [0, 1] {
                    match decode_keys(&received_at(&hostile, skew)) {
                        Ok(keys) => {
                            keys.iter().for_each(exercise);
                            accepted += 1;
                        }
                        Err(e) => {
                            assert!(e.contains("malformed shuffle frame"), "{e}");
                            refused += 1;
                        }
                    }
                }
            }
        }
    }
    // Guards the generator: both outcomes must be reached often.
    assert!(
        accepted > 1000 && refused > 10_000,
        "{accepted} accepted, {refused} refused"
    );
}

/// Random bytes after a valid header for a key batch: never a panic.
#[test]
fn random_key_bodies_never_panic() {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    for _ in 0..20_000 {
        let len = rng.random_range(0..96);
        let mut frame = b"G\x03\x00\x01".to_vec();
        frame.extend((0..len).map(|_| rng.random::<u8>() % 16));
        let mut bundle = (frame.len() as u32).to_le_bytes().to_vec();
        bundle.extend_from_slice(&frame);
        if let Ok(keys) = decode_keys(&received_at(&bundle, rng.random_range(0..8))) {
            keys.iter().for_each(exercise);
        }
    }
}

/// The checks a hostile sender meets, one by one, on a frame of one string row.
#[test]
fn each_key_field_is_checked() {
    let mut k = KeyBuilder::new(true);
    k.push_key(b"k", KeyType::String);
    k.push_str(b"v");
    let bundle = bundle_of(&k.finish().expect("one row"));
    // bundle: len u32 | G 3 0 1 | rows u32 | flags | keys: n u32, pad u8, pads, 2 offsets,
    // data_len u32, "k" | code | strings ...
    let keys_at = 4 + 4 + 4 + 1;
    let pad = usize::from(bundle[keys_at + 4]);
    let code_at = keys_at + 4 + 1 + pad + 8 + 4 + 1;
    assert_eq!(
        bundle[code_at],
        KeyType::String.code(),
        "layout as documented"
    );
    let refused = |at: usize, v: &[u8], why: &str| {
        let mut b = bundle.clone();
        b[at..at + v.len()].copy_from_slice(v);
        let e = decode_keys(&received_at(&b, 0)).expect_err(why);
        assert!(e.contains(why), "{why}: got {e}");
    };
    refused(code_at, &[8], "bad key type");
    refused(
        code_at,
        &[KeyType::Hash.code()],
        "value items do not match the key type",
    );
    refused(keys_at - 1, &[0xff], "bad key batch flags");
    refused(keys_at + 4, &[8], "bad offset padding");
    refused(
        keys_at,
        &2u32.to_le_bytes(),
        "column length does not match rows",
    );
    let first_offset = keys_at + 4 + 1 + pad;
    refused(first_offset, &1i32.to_le_bytes(), "bad column offsets");
    refused(
        first_offset + 4,
        &(-1i32).to_le_bytes(),
        "bad column offsets",
    );
    refused(
        first_offset + 4,
        &2i32.to_le_bytes(),
        "column data does not match its offsets",
    );
}
