//! Fuzzes the shuffle frame decoder: frames come from other shards over the network, so
//! `decode_frame` must reject any malformed input with an error, never a panic, an
//! unbounded allocation or a stack overflow. When the input does decode to data, the batch
//! must survive `encode_data` → `decode_frame` unchanged (compared structurally, floats by
//! bits so NaNs count as equal). `engine/tests/codec_props.rs` checks the same property
//! on stable with seeded random input. Messages are bundles of frames, so the input is
//! also split with `unbundle` (which must not panic either).
#![no_main]

use engine::shuffle::{decode_frame, encode_data, unbundle, Frame};
use engine::{Batch, BatchData, Datum};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = unbundle(data) {
        for f in frames {
            let _ = decode_frame(f);
        }
    }
    let Ok(Frame::Data(first)) = decode_frame(data) else {
        return;
    };
    let mut encoded = Vec::new();
    encode_data(&first, &mut encoded).expect("a decoded batch holds no host records");
    let second = match decode_frame(&encoded) {
        Ok(Frame::Data(b)) => b,
        other => panic!("re-encoded data frame decoded as {other:?}"),
    };
    assert!(
        same_batch(&first, &second),
        "round trip changed {first:?} into {second:?}"
    );
});

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

/// `Datum` equality with floats compared by bits: a NaN decoded from fuzz input must
/// still count as round-tripped.
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
