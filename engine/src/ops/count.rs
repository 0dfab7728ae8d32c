//! Native counting: `count()`'s local and global halves and `countby` over plain values.
//! None of them touch the host: a count needs only row counts.

use super::{Emit, GroupTable, Operator};
use crate::batch::{Batch, BatchData};
use crate::datum::Datum;
use crate::error::{EngineError, Result};

/// Counts records of any shape; emits `Int(n)` at the end, nothing if `n == 0`.
#[derive(Debug, Default)]
pub struct CountOp {
    n: i64,
}

impl Operator for CountOp {
    fn name(&self) -> &'static str {
        "accumulate"
    }

    fn process(&mut self, input: Batch, _out: &mut Emit) -> Result<()> {
        self.n += input.len() as i64;
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        if self.n > 0 {
            out.push(Batch::datums(vec![Datum::Int(self.n)]));
        }
        Ok(())
    }
}

/// Sums `Int` records (partial counts from shards); nothing if there were none.
#[derive(Debug, Default)]
pub struct SumIntsOp {
    sum: Option<i64>,
}

impl Operator for SumIntsOp {
    fn name(&self) -> &'static str {
        "accumulate"
    }

    fn process(&mut self, input: Batch, _out: &mut Emit) -> Result<()> {
        let BatchData::Datums(values) = input.data else {
            return Err(EngineError::Internal("sum over non-native records".into()));
        };
        for v in values {
            match v {
                Datum::Int(i) => *self.sum.get_or_insert(0) += i,
                other => return Err(EngineError::Internal(format!("sum over {other:?}"))),
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        if let Some(s) = self.sum.take() {
            out.push(Batch::datums(vec![Datum::Int(s)]));
        }
        Ok(())
    }
}

/// Counts records per plain value; emits `{'key': k, 'value': n}` maps.
#[derive(Debug, Default)]
pub struct CountByOp {
    table: GroupTable<i64>,
}

impl Operator for CountByOp {
    fn name(&self) -> &'static str {
        "accumulatebykey"
    }

    fn process(&mut self, input: Batch, _out: &mut Emit) -> Result<()> {
        let BatchData::Datums(values) = input.data else {
            return Err(EngineError::Internal(
                "countby over non-native records".into(),
            ));
        };
        for v in values {
            let key = match v {
                Datum::Str(s) => s,
                other => other.py_repr(),
            };
            *self.table.entry(key.as_bytes(), || 0) += 1;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        let rows: Vec<Datum> = self
            .table
            .drain()
            .into_iter()
            .map(|(k, n)| {
                Datum::Map(vec![
                    (
                        "key".into(),
                        Datum::Str(String::from_utf8_lossy(&k).into_owned()),
                    ),
                    ("value".into(), Datum::Int(n)),
                ])
            })
            .collect();
        out.push(Batch::datums(rows));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: &mut dyn Operator, inputs: Vec<Batch>) -> Vec<Datum> {
        let mut out = Emit::new();
        for b in inputs {
            op.process(b, &mut out).unwrap();
        }
        op.finish(&mut out).unwrap();
        out.drain()
            .flat_map(|b| match b.data {
                BatchData::Datums(d) => d,
                _ => vec![],
            })
            .collect()
    }

    #[test]
    fn count_of_nothing_is_nothing() {
        assert!(run(&mut CountOp::default(), vec![]).is_empty());
        assert!(run(&mut SumIntsOp::default(), vec![]).is_empty());
    }

    #[test]
    fn count_then_sum() {
        let b = || Batch::datums(vec![Datum::Null; 3]);
        assert_eq!(
            run(&mut CountOp::default(), vec![b(), b()]),
            vec![Datum::Int(6)]
        );
        let parts = Batch::datums(vec![Datum::Int(6), Datum::Int(4)]);
        assert_eq!(
            run(&mut SumIntsOp::default(), vec![parts]),
            vec![Datum::Int(10)]
        );
    }

    #[test]
    fn countby_counts_per_value() {
        let b = Batch::datums(
            ["a", "b", "a"]
                .iter()
                .map(|s| Datum::Str(s.to_string()))
                .collect(),
        );
        let got = run(&mut CountByOp::default(), vec![b]);
        assert_eq!(got[0].py_str(), "{'key': 'a', 'value': 2}");
        assert_eq!(got.len(), 2);
    }
}
