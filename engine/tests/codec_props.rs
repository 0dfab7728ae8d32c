//! Properties of the shuffle frame codec, run on stable in CI. The same round-trip
//! property is fuzzed with cargo-fuzz in `fuzz/fuzz_targets/shuffle_decode.rs`; this file
//! exercises it on seeded random input so it does not need nightly:
//! - any valid batch survives `encode_data` → `decode_frame` unchanged, and encoding is
//!   canonical (re-encoding the decoded batch gives the same bytes);
//! - `decode_frame` never panics on arbitrary bytes (random, and mutations of valid
//!   frames so the decoder gets past the header), and whatever it accepts re-encodes and
//!   decodes to an equal batch.
//!
//! "Equal" is structural, with floats compared by bits: `Datum` is `PartialEq` only, and
//! a NaN read from random bytes must still round-trip.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::keys::random_keys;
use common::{mutate, random_bytes};

use engine::batch::BinaryColumn;
use engine::shuffle::{bundle_push, decode_frame, encode_data, encode_done, unbundle, Frame};
use engine::{Batch, BatchData, Datum};

const SEED: u64 = 0x63_6f_64_65_63; // "codec"
const BYTE_STRINGS: usize = 20_000;
const VALID_BATCHES: usize = 2_000;

fn same_datum(a: &Datum, b: &Datum) -> bool {
    match (a, b) {
        (Datum::Float(x), Datum::Float(y)) => x.to_bits() == y.to_bits(),
        (Datum::List(x), Datum::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_datum(p, q))
        }
        (Datum::Map(x), Datum::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kp, p), (kq, q))| kp == kq && same_datum(p, q))
        }
        _ => a == b,
    }
}

fn same_batch(a: &Batch, b: &Batch) -> bool {
    let data = match (&a.data, &b.data) {
        (BatchData::Datums(x), BatchData::Datums(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_datum(p, q))
        }
        (BatchData::Keys(x), BatchData::Keys(y)) => x == y,
        _ => false,
    };
    data && a.errors == b.errors && a.partition_keys == b.partition_keys
}

fn encode(b: &Batch) -> Vec<u8> {
    let mut buf = Vec::new();
    encode_data(b, &mut buf).expect("datum and key batches always encode");
    buf
}

fn decode_data(bytes: &[u8]) -> Batch {
    match decode_frame(bytes) {
        Ok(Frame::Data(b)) => b,
        other => panic!("expected a data frame, got {other:?}"),
    }
}

/// The fuzz target's property: when `bytes` decode to data, re-encoding and decoding
/// gives an equal batch, and the re-encoding is stable. Returns whether it decoded.
fn check_decoded_roundtrips(bytes: &[u8]) -> bool {
    let Ok(Frame::Data(first)) = decode_frame(bytes) else {
        return false;
    };
    let encoded = encode(&first);
    let second = decode_data(&encoded);
    assert!(
        same_batch(&first, &second),
        "re-decoded batch differs\nfirst: {first:?}\nsecond: {second:?}"
    );
    assert_eq!(encode(&second), encoded, "encoding is not canonical");
    true
}

fn random_string(rng: &mut StdRng) -> String {
    (0..rng.random_range(0..6))
        .map(|_| rng.random::<char>())
        .collect()
}

fn random_datum(rng: &mut StdRng, depth: usize) -> Datum {
    // Containers only near the top, so values stay small.
    let kinds = if depth < 3 { 8 } else { 6 };
    match rng.random_range(0..kinds) {
        0 => Datum::Null,
        1 => Datum::Bool(rng.random()),
        2 => Datum::Int(rng.random()),
        // Any bit pattern, NaNs and infinities included.
        3 => Datum::Float(f64::from_bits(rng.random())),
        4 => Datum::Str(random_string(rng)),
        5 => Datum::Bytes(random_bytes(rng, 6)),
        6 => Datum::List(
            (0..rng.random_range(0..4))
                .map(|_| random_datum(rng, depth + 1))
                .collect(),
        ),
        _ => Datum::Map(
            (0..rng.random_range(0..4))
                .map(|_| (random_string(rng), random_datum(rng, depth + 1)))
                .collect(),
        ),
    }
}

fn random_batch(rng: &mut StdRng) -> Batch {
    let rows = rng.random_range(0..8);
    let mut b = if rng.random_bool(0.5) {
        Batch::datums((0..rows).map(|_| random_datum(rng, 0)).collect())
    } else {
        Batch::new(BatchData::Keys(random_keys(rng, rows)))
    };
    b.errors = (0..rng.random_range(0..3))
        .map(|_| random_string(rng))
        .collect();
    if rng.random_bool(0.5) {
        let keys: Vec<Vec<u8>> = (0..rows).map(|_| random_bytes(rng, 5)).collect();
        b.partition_keys = Some(BinaryColumn::from_iter(keys.iter().map(Vec::as_slice)));
    }
    b
}

#[test]
fn valid_batches_roundtrip_exactly() {
    let mut rng = StdRng::seed_from_u64(SEED);
    for i in 0..VALID_BATCHES {
        let b = random_batch(&mut rng);
        let bytes = encode(&b);
        let back = decode_data(&bytes);
        assert!(
            same_batch(&b, &back),
            "batch {i} changed\nsent: {b:?}\ngot: {back:?}"
        );
        assert_eq!(encode(&back), bytes, "batch {i}: encoding is not canonical");
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_roundtrip_when_accepted() {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut accepted = 0;
    for _ in 0..BYTE_STRINGS {
        let bytes = match rng.random_range(0..4) {
            0 => random_bytes(&mut rng, 64),
            // A valid header, so the body decoder sees random input too.
            1 => [&b"G\x03\x00"[..], &random_bytes(&mut rng, 64)].concat(),
            _ => {
                let valid = encode(&random_batch(&mut rng));
                mutate(&mut rng, valid)
            }
        };
        accepted += usize::from(check_decoded_roundtrips(&bytes));
    }
    // Guards the generator: mutations must leave enough frames decodable (about 3% do)
    // for the round-trip half of the property to mean something.
    assert!(
        accepted > BYTE_STRINGS / 100,
        "only {accepted} of {BYTE_STRINGS} inputs decoded"
    );
}

#[test]
fn done_frames_and_nesting_bounds() {
    let mut done = Vec::new();
    encode_done(&mut done);
    assert!(matches!(decode_frame(&done), Ok(Frame::Done)));
    let nest = |depth: usize| (0..depth).fold(Datum::Int(1), |d, _| Datum::List(vec![d]));
    let ok = Batch::datums(vec![nest(60)]);
    assert!(same_batch(&ok, &decode_data(&encode(&ok))));
    // Deeper than the decoder allows: an error, never a stack overflow or a panic.
    assert!(decode_frame(&encode(&Batch::datums(vec![nest(200)]))).is_err());
}

/// Bundles give back their frames in order; any cut or garbage is an error, not a panic.
#[test]
fn bundles_round_trip_and_reject_truncation() {
    let frames: Vec<Vec<u8>> = vec![encode(&Batch::datums(vec![Datum::Int(1)])), {
        let mut d = Vec::new();
        encode_done(&mut d);
        d
    }];
    let mut bundle = Vec::new();
    for f in &frames {
        bundle_push(&mut bundle, f);
    }
    let got = unbundle(&bundle).unwrap();
    assert_eq!(got, frames.iter().map(|f| f.as_slice()).collect::<Vec<_>>());
    for cut in 1..bundle.len() {
        if let Ok(parts) = unbundle(&bundle[..cut]) {
            // A cut exactly between frames is a shorter valid bundle.
            assert!(parts.len() < frames.len());
        }
    }
    assert!(unbundle(&[0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(unbundle(&[]).unwrap().is_empty());
}
