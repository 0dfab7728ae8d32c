//! [`AtDepth`]: an engine source, operator or runtime whose Python code runs at a given
//! nesting depth (`caller::DepthScope` around every call), so a `run()` inside it knows
//! how deep it nests. The host wraps a nested run's source and runtime in it.
//!
//! Depends on `caller` only.

use engine::exec::Source;
use engine::ops::{Emit, Finish, Operator, Waker};
use engine::plan::UdfStep;
use engine::udf::UdfRuntime;
use engine::{Batch, Result};

use crate::caller::DepthScope;

/// `inner`, run at nesting depth `depth`.
pub struct AtDepth<T> {
    inner: T,
    depth: u32,
}

impl<T> AtDepth<T> {
    pub fn new(inner: T, depth: u32) -> Self {
        AtDepth { inner, depth }
    }

    fn scope(&self) -> DepthScope {
        DepthScope::enter(self.depth)
    }
}

impl Source for AtDepth<Box<dyn Source>> {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let _d = self.scope();
        self.inner.next_batch()
    }
}

impl Operator for AtDepth<Box<dyn Operator>> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        let _d = self.scope();
        self.inner.process(input, out)
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        let _d = self.scope();
        self.inner.finish(out)
    }

    fn try_finish(&mut self, out: &mut Emit) -> Result<Finish> {
        let _d = self.scope();
        self.inner.try_finish(out)
    }

    fn try_resume(&mut self, out: &mut Emit) -> Result<Finish> {
        let _d = self.scope();
        self.inner.try_resume(out)
    }

    fn set_waker(&mut self, waker: Waker) {
        self.inner.set_waker(waker)
    }

    fn handles_errors(&self) -> bool {
        self.inner.handles_errors()
    }
}

impl<H: UdfRuntime> UdfRuntime for AtDepth<H> {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        let op = self.inner.build_stage(steps)?;
        Ok(Box::new(AtDepth::new(op, self.depth)))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(AtDepth::new(self.inner.finalizer(), self.depth))
    }
}

/// A source whose Python code runs at `depth`.
pub fn source(inner: Box<dyn Source>, depth: u32) -> Box<dyn Source> {
    Box::new(AtDepth::new(inner, depth))
}
