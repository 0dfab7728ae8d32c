//! A source holding one batch that was read already (sync registrations read the key on
//! the main thread, under the lock they already hold).

use engine::batch::Batch;
use engine::exec::Source;
use engine::Result;

pub struct ReadySource(Option<Batch>);

impl ReadySource {
    pub fn new(b: Batch) -> Self {
        ReadySource(Some(b))
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
