//! KeysOnlyReader: key names from the keyspace scan as plain text records, with no Python
//! per key (1.2 runs a Python generator issuing SCAN through `execute`).

use engine::batch::{Batch, BatchData, KeyType};
use engine::exec::Source;
use engine::{Datum, Result};

use super::keys::KeysSource;

pub struct KeyNamesSource(KeysSource);

impl KeyNamesSource {
    /// Keys matching the glob `pattern` (or the one existing key, with `no_scan`).
    pub fn new(pattern: Vec<u8>, no_scan: bool) -> Self {
        KeyNamesSource(KeysSource::new(pattern, no_scan, false))
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
        let Some(b) = self.0.next_batch()? else {
            return Ok(None);
        };
        let BatchData::Keys(k) = b.data else {
            return Ok(Some(b));
        };
        // A missing key read with noScan comes back typed `empty`: KeysOnlyReader skips it.
        let names = (0..k.len())
            .filter(|&i| k.key_type(i) != KeyType::Empty)
            .map(|i| name(k.key(i)))
            .collect();
        Ok(Some(Batch::datums(names)))
    }
}
