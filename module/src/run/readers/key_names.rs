//! KeysOnlyReader: key names from the keyspace scan as plain text records, with no Python
//! per key (1.2 runs a Python generator issuing SCAN through `execute`).
//!
//! A plan that starts by counting gets the scan's key batches as they are: `count` reads
//! only row counts. A `String` per key, made on the reader's thread and freed on the
//! counting one, is what set `GB('KeysOnlyReader').count()` apart from `GB().count()`
//! (perf suite: 0.57 of it with the system allocator, 0.86 with mimalloc; issue #13).

use engine::batch::{Batch, BatchData, KeyType};
use engine::exec::Source;
use engine::{Datum, Result};

use super::keys::KeysSource;

pub struct KeyNamesSource {
    keys: KeysSource,
    /// The plan starts with `count`: batches of existing keys go on as key batches.
    counted: bool,
}

impl KeyNamesSource {
    /// Keys matching the glob `pattern` (or the one existing key, with `no_scan`), for a
    /// plan that starts by counting them when `counted`.
    pub fn new(pattern: Vec<u8>, no_scan: bool, counted: bool) -> Self {
        KeyNamesSource {
            keys: KeysSource::new(pattern, no_scan, false),
            counted,
        }
    }
}

fn name(key: &[u8]) -> Datum {
    match std::str::from_utf8(key) {
        Ok(s) => Datum::Str(s.to_owned()),
        Err(_) => Datum::Bytes(key.to_vec()),
    }
}

impl Source for KeyNamesSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let Some(b) = self.keys.next_batch()? else {
            return Ok(None);
        };
        let BatchData::Keys(k) = b.data else {
            return Ok(Some(b));
        };
        let missing = |i: usize| k.key_type(i) == KeyType::Empty;
        if self.counted && !(0..k.len()).any(missing) {
            return Ok(Some(Batch::new(BatchData::Keys(k))));
        }
        // A missing key read with noScan comes back typed `empty`: KeysOnlyReader skips it.
        let names = (0..k.len())
            .filter(|&i| !missing(i))
            .map(|i| name(k.key(i)))
            .collect();
        Ok(Some(Batch::datums(names)))
    }
}
