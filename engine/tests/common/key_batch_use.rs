//! Uses a decoded key batch whole: shared by `engine/tests/key_batch_props.rs` (stable, in
//! CI) and `fuzz/fuzz_targets/key_batch_decode.rs` (nightly), which include this file by
//! path so that both check the same things. Depends on the engine and arrow only.

use arrow_array::Array;
use arrow_buffer::Buffer;
use engine::batch::{KeyColumns, KeyRow, KeyType};
use engine::shuffle::{bundle_data, decode_bundle, Frame};
use engine::{Batch, BatchData};

/// The key batches of a received bundle, or the decoder's error.
pub fn decode_keys(received: &Buffer) -> Result<Vec<KeyColumns>, String> {
    let mut keys = Vec::new();
    decode_bundle(received, None, |f| {
        if let Frame::Data(Batch {
            data: BatchData::Keys(k),
            ..
        }) = f
        {
            keys.push(k);
        }
    })
    .map_err(|e| e.to_string())?;
    Ok(keys)
}

pub fn bundle_of(k: &KeyColumns) -> Vec<u8> {
    let mut bundle = Vec::new();
    bundle_data(&mut bundle, &Batch::new(BatchData::Keys(k.clone()))).expect("keys encode");
    bundle
}

/// The rows of `k`: what a batch means (a sliced batch's arrays still hold the rows
/// around its slice, so arrays are not compared directly).
pub fn rows_of(k: &KeyColumns) -> Vec<KeyRow<'_>> {
    (0..k.len()).map(|i| k.row(i)).collect()
}

/// Uses every part of a decoded batch; panics where any of it is inconsistent.
pub fn exercise(k: &KeyColumns) {
    for i in 0..k.len() {
        let row = k.row(i);
        if let Some(v) = k.values() {
            let t = row.key_type;
            assert_eq!(v.strings.is_valid(i), t == KeyType::String, "row {i}");
            let valid = |n: &engine::batch::Nested| n.nulls.as_ref().is_none_or(|b| b.is_valid(i));
            assert_eq!(valid(&v.hashes), t == KeyType::Hash, "row {i}");
            assert_eq!(valid(&v.lists), t == KeyType::List, "row {i}");
        }
    }
    let n = k.len();
    let half = k.slice(n / 2, n);
    (0..half.len()).for_each(|i| drop(half.row(i)));
    let reversed: Vec<u32> = (0..n as u32).rev().collect();
    let taken = k.take(&reversed);
    (0..taken.len()).for_each(|i| drop(taken.row(i)));
    let dest: Vec<usize> = (0..n).map(|i| i % 3).collect();
    assert_eq!(
        k.partition(&dest, 3)
            .iter()
            .map(KeyColumns::len)
            .sum::<usize>(),
        n
    );
    let _ = k.to_record_batch();
    let again = decode_keys(&Buffer::from_vec(bundle_of(k))).expect("a re-encoding decodes");
    assert_eq!(again.len(), 1);
    assert_eq!(rows_of(&again[0]), rows_of(k), "changed on a round trip");
}
