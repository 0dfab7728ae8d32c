//! [`AtDepth`]: an engine source, operator or runtime whose Python code runs at a given
//! nesting depth (`caller::DepthScope` around every call, through `engine::scoped`), so a
//! `run()` inside it knows how deep it nests. The host wraps a nested run's source and
//! runtime in it.
//!
//! Depends on `caller` only.

use engine::exec::Source;
use engine::scoped::{CallScope, Scoped};

use crate::caller::DepthScope;

/// A nesting depth as the scope of a [`Scoped`].
#[derive(Debug, Clone, Copy)]
pub struct Depth(u32);

impl From<u32> for Depth {
    fn from(depth: u32) -> Depth {
        Depth(depth)
    }
}

impl CallScope for Depth {
    type Guard = DepthScope;

    fn enter(&self) -> DepthScope {
        DepthScope::enter(self.0)
    }
}

/// `inner`, run at a nesting depth: `AtDepth::new(inner, depth)`.
pub type AtDepth<T> = Scoped<Depth, T>;

/// A source whose Python code runs at `depth`.
pub fn source(inner: Box<dyn Source>, depth: u32) -> Box<dyn Source> {
    Box::new(AtDepth::new(inner, depth))
}
