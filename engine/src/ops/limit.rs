//! `LimitOp`: skip `offset` records, keep `len`, then ask upstream to stop.

use super::{Emit, Operator};
use crate::batch::Batch;
use crate::error::Result;

#[derive(Debug)]
pub struct LimitOp {
    to_skip: usize,
    to_keep: usize,
}

impl LimitOp {
    pub fn new(offset: usize, len: usize) -> Self {
        LimitOp {
            to_skip: offset,
            to_keep: len,
        }
    }
}

impl Operator for LimitOp {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn process(&mut self, input: Batch, out: &mut Emit) -> Result<()> {
        let n = input.len();
        let skip = self.to_skip.min(n);
        self.to_skip -= skip;
        let keep = self.to_keep.min(n - skip);
        self.to_keep -= keep;
        if keep > 0 {
            out.push(input.slice(skip, keep));
        }
        if self.to_keep == 0 {
            out.stop_upstream();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Datum;

    fn ints(r: std::ops::Range<i64>) -> Batch {
        Batch::datums(r.map(Datum::Int).collect())
    }

    #[test]
    fn limit_spans_batches() {
        let mut op = LimitOp::new(3, 4);
        let mut out = Emit::new();
        op.process(ints(0..2), &mut out).unwrap();
        op.process(ints(2..5), &mut out).unwrap();
        assert!(!out.wants_stop());
        op.process(ints(5..10), &mut out).unwrap();
        assert!(out.wants_stop());
        let got: Vec<Datum> = out
            .drain()
            .flat_map(|b| match b.data {
                crate::batch::BatchData::Datums(d) => d,
                _ => vec![],
            })
            .collect();
        assert_eq!(got, (3..7).map(Datum::Int).collect::<Vec<_>>());
    }
}
