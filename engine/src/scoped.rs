//! [`Scoped`]: an operator, source or UDF runtime whose every call runs inside a scope the
//! host sets up on the calling thread (the ACL user, the nesting depth, the running hook).
//! Written once, so that every wrapper forwards every `Operator` method: a wrapper that
//! missed one (`try_resume`) lost a parked step's records.
//!
//! Depends on `ops`, `exec` (`Source`), `udf`, `plan`.

use crate::error::Result;
use crate::exec::Source;
use crate::ops::{Emit, Finish, Operator, Waker};
use crate::plan::UdfStep;
use crate::udf::UdfRuntime;
use crate::Batch;

/// What a [`Scoped`] sets up around each call: `enter` starts it, dropping the guard ends it.
pub trait CallScope: Clone + Send + Sync + 'static {
    type Guard;
    fn enter(&self) -> Self::Guard;
}

/// `inner`, every call of which runs inside `scope`.
pub struct Scoped<S, T> {
    inner: T,
    scope: S,
}

impl<S, T> Scoped<S, T> {
    pub fn new(inner: T, scope: impl Into<S>) -> Self {
        Scoped {
            inner,
            scope: scope.into(),
        }
    }
}

impl<S: CallScope> Source for Scoped<S, Box<dyn Source>> {
    fn next_batch(&mut self) -> Result<Option<Batch>> {
        let _in = self.scope.enter();
        self.inner.next_batch()
    }
}

impl<S: CallScope> Operator for Scoped<S, Box<dyn Operator>> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        let _in = self.scope.enter();
        self.inner.process(input, out)
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        let _in = self.scope.enter();
        self.inner.finish(out)
    }

    fn try_finish(&mut self, out: &mut Emit) -> Result<Finish> {
        let _in = self.scope.enter();
        self.inner.try_finish(out)
    }

    fn try_resume(&mut self, out: &mut Emit) -> Result<Finish> {
        let _in = self.scope.enter();
        self.inner.try_resume(out)
    }

    fn set_waker(&mut self, waker: Waker) {
        self.inner.set_waker(waker)
    }

    fn handles_errors(&self) -> bool {
        self.inner.handles_errors()
    }

    fn is_parked(&self) -> bool {
        self.inner.is_parked()
    }
}

/// A runtime whose stages and finalizer run inside `scope`.
impl<S: CallScope, H: UdfRuntime> UdfRuntime for Scoped<S, H> {
    fn build_stage(&self, steps: &[UdfStep]) -> Result<Box<dyn Operator>> {
        let op = self.inner.build_stage(steps)?;
        Ok(Box::new(Scoped::<S, _>::new(op, self.scope.clone())))
    }

    fn finalizer(&self) -> Box<dyn Operator> {
        Box::new(Scoped::<S, _>::new(
            self.inner.finalizer(),
            self.scope.clone(),
        ))
    }
}
