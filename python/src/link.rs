//! The link between a command that triggered executions (KeysReader `commands=[…]`) and
//! those executions: `override_reply(v)` sets the command's reply, `get_command()` reads
//! its argv. The module implements the link; this crate only carries it to Python code.
//!
//! Bottom layer, a leaf: depends on `engine` (`Datum`) only.

use std::cell::RefCell;
use std::sync::Arc;

use engine::Datum;

/// The command an execution is linked to.
pub trait CommandLink: Send + Sync {
    /// Replaces the command's reply; 1.2's error when it was replaced already.
    fn override_reply(&self, value: Datum) -> Result<(), String>;
    /// The command's argv.
    fn argv(&self) -> Vec<Vec<u8>>;
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn CommandLink>>> = const { RefCell::new(None) };
}

/// Runs `f` with `link` as this thread's current link (restored afterwards).
pub fn with_link<R>(link: Option<Arc<dyn CommandLink>>, f: impl FnOnce() -> R) -> R {
    let prev = CURRENT.with(|c| c.replace(link));
    let r = f();
    CURRENT.with(|c| *c.borrow_mut() = prev);
    r
}

pub(crate) fn current() -> Option<Arc<dyn CommandLink>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Sets the current link until dropped (for stages running on pool threads).
pub(crate) struct Scope(Option<Option<Arc<dyn CommandLink>>>);

impl Scope {
    pub(crate) fn enter(link: Option<Arc<dyn CommandLink>>) -> Scope {
        match link {
            None => Scope(None),
            Some(l) => Scope(Some(CURRENT.with(|c| c.replace(Some(l))))),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
}
