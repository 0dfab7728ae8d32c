//! A source holding one batch that was read already (sync registrations read the key on
//! the main thread, under the lock they already hold).

use engine::batch::{Batch, BatchData, KeyBuilder};
use engine::exec::Source;
use engine::Result;

pub struct ReadySource(Option<Batch>);

impl ReadySource {
    pub fn new(b: Batch) -> Self {
        ReadySource(Some(b))
    }

    /// The batch of an event's key rows (an error record if they cannot make one).
    pub fn keys(rows: KeyBuilder) -> Self {
        Self::new(match rows.finish() {
            Ok(k) => Batch::new(BatchData::Keys(k)),
            Err(e) => Batch::errors_only(vec![e.to_string()]),
        })
    }

    /// A source that yields nothing.
    pub fn empty() -> Self {
        ReadySource(None)
    }
}

impl Source for ReadySource {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        Ok(self.0.take())
    }
}
