//! `Chain`: several native operators run back to back inside one stage.

use super::{Emit, Operator};
use crate::batch::Batch;
use crate::error::Result;

/// Runs operators in sequence; errors lanes are routed past each one.
pub struct Chain {
    ops: Vec<Box<dyn Operator>>,
}

impl Chain {
    pub fn new(ops: Vec<Box<dyn Operator>>) -> Self {
        Chain { ops }
    }

    fn run_from(&mut self, first: usize, input: Vec<Batch>, out: &mut Emit) -> Result<()> {
        let mut current = input;
        for op in &mut self.ops[first..] {
            let mut next = Emit::new();
            for mut b in current {
                let errors = std::mem::take(&mut b.errors);
                op.process(b, &mut next)?;
                if !errors.is_empty() {
                    next.push(Batch::errors_only(errors));
                }
            }
            if next.wants_stop() {
                out.stop_upstream();
            }
            current = next.drain().collect();
        }
        for b in current {
            out.push(b);
        }
        Ok(())
    }
}

impl Operator for Chain {
    fn name(&self) -> &'static str {
        self.ops.first().map(|o| o.name()).unwrap_or("chain")
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        self.run_from(0, vec![input], out)
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        for i in 0..self.ops.len() {
            let mut flushed = Emit::new();
            self.ops[i].finish(&mut flushed)?;
            let batches: Vec<Batch> = flushed.drain().collect();
            self.run_from(i + 1, batches, out)?;
        }
        Ok(())
    }
}
