//! Native counting: `count()`'s local and global halves, and `countby`'s local count per
//! key and global sum per key. None of them touch the host: a count needs only row counts
//! and the (already extracted) keys.

use super::{Emit, GroupTable, Operator};
use crate::batch::{Batch, BatchData, BinaryColumn};
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

/// Counts records per plain value; emits `{'key': k, 'value': n}` maps, keyed by `k` for
/// a following repartition.
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
        out.push(key_value_batch(self.table.drain()));
        Ok(())
    }
}

/// Sums the `Int` values of `{'key': k, 'value': n}` maps per `k` (the partial counts of
/// `countby` from every shard); emits the same shape, keyed by `k`.
#[derive(Debug, Default)]
pub struct SumByKeyOp {
    table: GroupTable<i64>,
}

impl Operator for SumByKeyOp {
    fn name(&self) -> &'static str {
        "accumulatebykey"
    }

    fn process(&mut self, input: Batch, _out: &mut Emit) -> Result<()> {
        let BatchData::Datums(values) = input.data else {
            return Err(EngineError::Internal(
                "sum by key over non-native records".into(),
            ));
        };
        for v in values {
            let (key, n) = key_and_count(&v)
                .ok_or_else(|| EngineError::Internal(format!("sum by key over {v:?}")))?;
            let slot = self.table.entry(key.as_bytes(), || 0);
            *slot = slot
                .checked_add(n)
                .ok_or_else(|| EngineError::Execution("count overflow".into()))?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emit) -> Result<()> {
        out.push(key_value_batch(self.table.drain()));
        Ok(())
    }
}

/// The `key` text and `Int` `value` of a `{'key', 'value'}` map.
fn key_and_count(d: &Datum) -> Option<(&str, i64)> {
    let Datum::Map(items) = d else { return None };
    let mut key = None;
    let mut value = None;
    for (k, v) in items {
        match (k.as_str(), v) {
            ("key", Datum::Str(s)) => key = Some(s.as_str()),
            ("value", Datum::Int(n)) => value = Some(*n),
            _ => {}
        }
    }
    Some((key?, value?))
}

/// `{'key': k, 'value': n}` records with `k` as their partition keys.
fn key_value_batch(groups: Vec<(Vec<u8>, i64)>) -> Batch {
    let keys: BinaryColumn = groups.iter().map(|(k, _)| k.as_slice()).collect();
    let rows: Vec<Datum> = groups
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
    let mut b = Batch::datums(rows);
    b.partition_keys = Some(keys);
    b
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

    #[test]
    fn countby_output_is_keyed_for_repartition() {
        let mut op = CountByOp::default();
        let mut out = Emit::new();
        let b = Batch::datums(vec![Datum::Str("x".into()), Datum::Str("y".into())]);
        op.process(b, &mut out).unwrap();
        op.finish(&mut out).unwrap();
        let b = out.drain().next().unwrap();
        let keys: Vec<&[u8]> = b.partition_keys.as_ref().unwrap().iter().collect();
        assert_eq!(keys, vec![&b"x"[..], b"y"]);
    }

    #[test]
    fn sum_by_key_adds_partial_counts() {
        let part = |k: &str, n: i64| {
            Datum::Map(vec![
                ("key".into(), Datum::Str(k.into())),
                ("value".into(), Datum::Int(n)),
            ])
        };
        let a = Batch::datums(vec![part("Smith", 2), part("Sanchez", 1)]);
        let b = Batch::datums(vec![part("Smith", 1)]);
        let got = run(&mut SumByKeyOp::default(), vec![a, b]);
        let text: Vec<String> = got.iter().map(Datum::py_str).collect();
        assert_eq!(
            text,
            vec![
                "{'key': 'Smith', 'value': 3}",
                "{'key': 'Sanchez', 'value': 1}"
            ]
        );
        assert!(run(&mut SumByKeyOp::default(), vec![]).is_empty());
        let bad = Batch::datums(vec![Datum::Int(1)]);
        assert!(SumByKeyOp::default()
            .process(bad, &mut Emit::new())
            .is_err());
    }
}
