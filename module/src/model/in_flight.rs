//! The event a registration's batched drain is running now, so that it is listed by
//! RG.DUMPEXECUTIONS (`running`) and stopped by RG.ABORTEXECUTION like any execution,
//! although batched events get their execution entries only once the batch is done.
//!
//! The drain numbers each event as it starts (the number its entry gets afterwards) and
//! binds its thread to the registration's control; abort raises `gears.forcestopped` in
//! that thread. Depends on `executions` ids only.

use std::sync::Arc;

use engine::sync::{AtomicU64, Ordering};
use gearpy::ExecControl;

/// One registration's running event.
#[derive(Debug)]
pub struct InFlight {
    /// Execution number + 1 of the running event (0: none).
    number: AtomicU64,
    control: Arc<ExecControl>,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            number: AtomicU64::new(0),
            control: ExecControl::new(),
        }
    }
}

impl InFlight {
    /// The event numbered `n` starts on this thread (its Python runs here, GIL held).
    pub fn start(&self, n: u64) {
        self.control.claim_thread();
        self.number.store(n + 1, Ordering::Release);
    }

    /// No event runs any more (GIL held, on the thread that ran it).
    pub fn stop(&self) {
        self.number.store(0, Ordering::Release);
        self.control.release_thread();
    }

    /// The running event's execution id, if one runs.
    pub fn id(&self) -> Option<String> {
        match self.number.load(Ordering::Acquire) {
            0 => None,
            n => Some(crate::model::topology::numbered_id(n - 1)),
        }
    }

    /// Stops the running event if its id is `id`; true if it was asked to.
    pub fn abort(&self, id: &str) -> bool {
        if self.id().as_deref() != Some(id) {
            return false;
        }
        self.control.interrupt_thread();
        true
    }
}
