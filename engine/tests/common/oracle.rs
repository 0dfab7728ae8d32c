//! The differential tests' oracle: what a plan means, written plainly over `Vec<Datum>`.
//!
//! Each step takes the whole record list and returns the next one: no batches, operators,
//! queues or stop signals, and nothing from `engine::ops`, `engine::exec` or
//! `engine::testing`'s stage. So a bug in a native operator (or in how an executor drives
//! it) shows up as a disagreement instead of being copied into the expectation. Only the
//! plan's types are shared: `StepSpec`, and the `TestFn` closures inside host steps.
//!
//! Scope: one shard (`Collect` and `Repartition` move nothing, and partition keys set by
//! `ExtractKey` only matter to them), and plans that raise no errors — `FailOn`/`PanicOn`
//! steps and type-incorrect records panic here, as generator bugs.

use engine::plan::{Plan, StepSpec, UdfStep};
use engine::testing::TestFn;
use engine::Datum;

/// The output of `plan` over `input` on one shard.
pub fn run(input: &[Datum], plan: &Plan) -> Vec<Datum> {
    plan.steps
        .iter()
        .fold(input.to_vec(), |records, s| apply(s, records))
}

fn apply(s: &StepSpec, records: Vec<Datum>) -> Vec<Datum> {
    match s {
        StepSpec::Udf(h) => host_step(h, records),
        StepSpec::Limit { offset, len } => records.into_iter().skip(*offset).take(*len).collect(),
        StepSpec::Count => nonempty(&records, |r| Datum::Int(r.len() as i64)),
        StepSpec::SumInts => nonempty(&records, |r| Datum::Int(r.iter().map(int).sum())),
        StepSpec::CountBy => {
            let keyed = records.iter().map(|d| match d {
                Datum::Str(s) => (s.clone(), 1),
                other => (other.py_repr(), 1),
            });
            sum_per_key(keyed)
        }
        StepSpec::SumByKey => sum_per_key(records.iter().map(key_and_value)),
        StepSpec::Collect | StepSpec::Repartition => records,
    }
}

fn host_step(h: &UdfStep, records: Vec<Datum>) -> Vec<Datum> {
    let f = h
        .payload
        .downcast_ref::<TestFn>()
        .expect("the oracle runs TestFn steps only");
    match f {
        TestFn::Map(f) => records.iter().map(|d| f(d)).collect(),
        TestFn::Filter(f) => records.into_iter().filter(|d| f(d)).collect(),
        TestFn::FlatMap(f) => records.iter().flat_map(|d| f(d)).collect(),
        TestFn::ExtractKey(_) => records,
        TestFn::Sum => nonempty(&records, |r| Datum::Int(r.iter().map(int).sum())),
        TestFn::FailOn(_) | TestFn::PanicOn(_) => {
            panic!("the oracle models error-free plans only")
        }
    }
}

/// `[f(records)]`, or nothing when there are no records (aggregates over nothing emit
/// nothing, as in RedisGears 1.2).
fn nonempty(records: &[Datum], f: impl FnOnce(&[Datum]) -> Datum) -> Vec<Datum> {
    if records.is_empty() {
        Vec::new()
    } else {
        vec![f(records)]
    }
}

/// `{'key': k, 'value': n}` per distinct `k`, summing `n`, in first-seen order of `k`.
fn sum_per_key(pairs: impl Iterator<Item = (String, i64)>) -> Vec<Datum> {
    let mut groups: Vec<(String, i64)> = Vec::new();
    for (k, n) in pairs {
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, total)) => *total += n,
            None => groups.push((k, n)),
        }
    }
    groups
        .into_iter()
        .map(|(k, n)| {
            Datum::Map(vec![
                ("key".into(), Datum::Str(k)),
                ("value".into(), Datum::Int(n)),
            ])
        })
        .collect()
}

fn int(d: &Datum) -> i64 {
    match d {
        Datum::Int(i) => *i,
        other => panic!("generator bug: expected an int, got {other:?}"),
    }
}

fn key_and_value(d: &Datum) -> (String, i64) {
    let Datum::Map(items) = d else {
        panic!("generator bug: expected a countby record, got {d:?}")
    };
    let field = |name: &str| items.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    match (field("key"), field("value")) {
        (Some(Datum::Str(k)), Some(Datum::Int(n))) => (k.clone(), *n),
        _ => panic!("generator bug: expected a countby record, got {d:?}"),
    }
}
