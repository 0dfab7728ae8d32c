//! KeysReader for `run()`: scans the keyspace (glob pattern) or reads one exact key
//! (`noScan`), with values (`readValue`), a bounded batch per Redis-lock hold.
//!
//! Keys the execution's ACL user may not read are skipped, as if they did not exist
//! (`crate::redis::access`): a run sees the part of the keyspace its user may read.

use std::time::Duration;

use engine::batch::{Batch, BatchData, BuilderSizes, KeyBuilder};
use engine::exec::Source;
use engine::{EngineError, Result};
use redis_module::{DetachedFromClient, ThreadSafeContext};

use crate::redis::access::KeyGate;
use crate::redis::ffi::scan::{read_key, scan_some, ScanBudget, ScanCursor};

/// Keys per batch and the longest single lock hold.
const BUDGET: ScanBudget = ScanBudget {
    max_rows: 1024,
    max_time: Duration::from_millis(1),
};

pub struct KeysSource {
    pattern: Vec<u8>,
    no_scan: bool,
    read_value: bool,
    cursor: Option<ScanCursor>,
    done: bool,
    /// The keyspace event that triggered this read (registrations).
    event: Option<Vec<u8>>,
    /// What the last batch held: the next one is sized so up front.
    sizes: BuilderSizes,
    tsc: ThreadSafeContext<DetachedFromClient>,
}

impl KeysSource {
    pub fn new(pattern: Vec<u8>, no_scan: bool, read_value: bool) -> Self {
        KeysSource {
            pattern,
            no_scan,
            read_value,
            cursor: None,
            done: false,
            event: None,
            sizes: BuilderSizes::default(),
            tsc: ThreadSafeContext::new(),
        }
    }

    /// Reads one key for a registration triggered by `event` on it.
    pub fn for_event(key: Vec<u8>, event: Vec<u8>, read_value: bool) -> Self {
        let mut s = Self::new(key, true, read_value);
        s.event = Some(event);
        s
    }
}

impl Source for KeysSource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        while !self.done {
            let mut cols = KeyBuilder::sized(self.read_value, &self.sizes);
            {
                let guard = self.tsc.lock();
                // Resolved per lock hold: a user handle is valid only while the lock is.
                let gate = KeyGate::for_thread().map_err(EngineError::Execution)?;
                if self.no_scan {
                    if gate.may_read(&self.pattern) {
                        read_key(&guard, &self.pattern, &mut cols, self.read_value);
                        if let Some(e) = &self.event {
                            cols.push_event(e);
                        }
                    }
                    self.done = true;
                } else {
                    let cursor = self.cursor.get_or_insert_with(ScanCursor::new);
                    self.done = !scan_some(&guard, cursor, &self.pattern, &gate, &mut cols, BUDGET);
                }
            }
            if !cols.is_empty() {
                self.sizes = cols.sizes();
                return Ok(Some(Batch::new(BatchData::Keys(cols.finish()?))));
            }
        }
        // Free the cursor (and its Redis allocation) as soon as the scan ends.
        if let Some(c) = self.cursor.take() {
            let _guard = self.tsc.lock();
            drop(c);
        }
        Ok(None)
    }
}
