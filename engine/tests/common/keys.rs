//! Random key batches for the codec property tests: rows of every key type, each value
//! shaped as its type allows.

use rand::rngs::StdRng;
use rand::Rng;

use engine::batch::{KeyBuilder, KeyColumns, KeyType};

use super::random_bytes;

/// Key rows of every type, each value shaped as its type allows (a string has one, a
/// hash field/value pairs, a list items, other types none); events on some batches.
pub fn random_keys(rng: &mut StdRng, rows: usize) -> KeyColumns {
    let mut k = KeyBuilder::new(rng.random_bool(0.7));
    let events = rng.random_bool(0.3);
    for _ in 0..rows {
        let t = KeyType::from_code(rng.random_range(0..8)).expect("codes 0..8 are key types");
        k.push_key(&random_bytes(rng, 8), t);
        let n = rng.random_range(0..4);
        match t {
            KeyType::String => k.push_str(&random_bytes(rng, 6)),
            KeyType::Hash => {
                (0..n).for_each(|_| k.push_field(&random_bytes(rng, 4), &random_bytes(rng, 6)))
            }
            KeyType::List => (0..n).for_each(|_| k.push_item(&random_bytes(rng, 6))),
            _ => {}
        }
        if events {
            k.push_event(&random_bytes(rng, 5));
        }
    }
    k.finish().expect("small batch")
}
