//! Differential tests: random, type-correct plans over random inputs must give the same
//! output on both executors — the pipelined one (`testing::run_pipelined`, on 2- and
//! 3-thread `WorkerPool`s, at batch sizes 1, 2, 7, 64 and 1000) and the inline one
//! (`inline::run_inline`) — as the oracle in `common::oracle`.
//!
//! The oracle is written plainly over `Vec<Datum>`, one function per step, sharing no code
//! with `engine::ops`: a wrong native operator (limit, count, countby...) fails here as
//! surely as a wrong executor.
//!
//! Shaped after DataFusion's `core/tests/fuzz_cases/join_fuzz.rs`: a seeded generator
//! builds each case (input and plan), every batch size runs it, and a mismatch reports
//! the case seed and the plan so the case can be replayed on its own.
//!
//! Each case also runs once with capacity-1 queues, so the executor's "output full, wait
//! for the consumer's wake-up" path is as well covered as the common one.
//!
//! Ordering: on one shard both executors keep record order (stages are FIFO and a stage
//! handles one batch at a time), and groups come out in first-seen key order, so results
//! are compared exactly; that is also what makes `limit` comparable. Multi-shard runs,
//! which have no order, are compared as sorted multisets in `shards.rs`.
//!
//! Type-correctness: the generator tracks the type of the records flowing at each point
//! ([`Ty`]) and only appends steps valid for it, e.g. `SumInts` only over ints and
//! `CountBy` only over strings, so every failure is an executor or operator disagreement,
//! not a plan that could never run.

mod common;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use engine::exec::{ExecConfig, ExecutionOutput, WorkerPool};
use engine::inline::run_inline;
use engine::plan::{Plan, StepSpec};
use engine::testing::{run_pipelined, TestFn, TestUdf, VecSource};
use engine::Datum;
use std::sync::Arc;

/// Base seed; case `i` uses `SEED + i`, so a failing case is replayed by its seed alone.
const SEED: u64 = 0x6765_6172_7368_6966;
/// Random cases per test; each runs once on the oracle, once inline and once per batch size.
const CASES: u64 = 400;
const BATCH_SIZES: [usize; 5] = [1, 2, 7, 64, 1000];

/// What the records are at some point of a generated plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Str,
    /// `{'key': k, 'value': n}` maps, as `CountBy` emits them.
    Rec,
}

/// One generated plan step (sometimes two specs, e.g. extract-key then repartition).
struct GenStep {
    specs: Vec<StepSpec>,
    desc: String,
    out: Ty,
}

/// A generated case: the input, the plan and a readable description of the plan.
struct Case {
    input: Vec<Datum>,
    plan: Plan,
    desc: Vec<String>,
}

fn int(d: &Datum) -> i64 {
    match d {
        Datum::Int(i) => *i,
        // Panics only on a generator bug; the oracle and the inline executor run first, on
        // the test thread, so such a bug fails fast instead of hanging a worker.
        other => panic!("generator bug: expected an int, got {other:?}"),
    }
}

fn text(d: &Datum) -> &str {
    match d {
        Datum::Str(s) => s,
        other => panic!("generator bug: expected a str, got {other:?}"),
    }
}

fn rec_value(d: &Datum) -> i64 {
    match d {
        Datum::Map(items) => items
            .iter()
            .find(|(k, _)| k == "value")
            .map(|(_, v)| int(v))
            .unwrap_or(0),
        other => panic!("generator bug: expected a countby record, got {other:?}"),
    }
}

fn step(spec: StepSpec, desc: String, out: Ty) -> GenStep {
    GenStep {
        specs: vec![spec],
        desc,
        out,
    }
}

fn map(desc: String, out: Ty, f: impl Fn(&Datum) -> Datum + Send + Sync + 'static) -> GenStep {
    step(TestFn::Map(Arc::new(f)).step("map"), desc, out)
}

fn filter(desc: String, ty: Ty, f: impl Fn(&Datum) -> bool + Send + Sync + 'static) -> GenStep {
    step(TestFn::Filter(Arc::new(f)).step("filter"), desc, ty)
}

fn flat_map(
    desc: String,
    out: Ty,
    f: impl Fn(&Datum) -> Vec<Datum> + Send + Sync + 'static,
) -> GenStep {
    step(TestFn::FlatMap(Arc::new(f)).step("flatmap"), desc, out)
}

/// Steps valid over any record type.
fn any_step(rng: &mut StdRng, ty: Ty) -> GenStep {
    match rng.random_range(0..5) {
        0 | 1 => {
            let (offset, len) = (rng.random_range(0..5), rng.random_range(0..40));
            step(
                StepSpec::Limit { offset, len },
                format!("limit({offset}, {len})"),
                ty,
            )
        }
        2 => step(StepSpec::Count, "count".into(), Ty::Int),
        // Without a shuffle context both shuffles pass records through; they still change
        // how the plan is cut into stages.
        3 => step(StepSpec::Collect, "collect".into(), ty),
        _ => {
            let key = TestFn::ExtractKey(Arc::new(|d: &Datum| d.py_repr())).step("extractkey");
            GenStep {
                specs: vec![key, StepSpec::Repartition],
                desc: "repartition(repr)".into(),
                out: ty,
            }
        }
    }
}

fn int_step(rng: &mut StdRng) -> GenStep {
    match rng.random_range(0..9) {
        0 => {
            let (a, b) = (rng.random_range(-3..=3), rng.random_range(-10..=10));
            map(format!("map x*{a}+{b} %1000"), Ty::Int, move |d| {
                Datum::Int((int(d) * a + b) % 1000)
            })
        }
        1 => {
            let m = rng.random_range(1..=12);
            map(format!("map 'k'+str(x%{m})"), Ty::Str, move |d| {
                Datum::Str(format!("k{}", int(d).rem_euclid(m)))
            })
        }
        2 => {
            let (m, r) = (rng.random_range(2..=5), rng.random_range(0..2));
            filter(format!("filter x%{m}!={r}"), Ty::Int, move |d| {
                int(d).rem_euclid(m) != r
            })
        }
        // 0, 1 or 2 outputs per record: plans grow at most linearly on average.
        3 => flat_map("flatmap x..x+(x%3)".into(), Ty::Int, |d| {
            let x = int(d);
            (0..x.rem_euclid(3)).map(|i| Datum::Int(x + i)).collect()
        }),
        4 => step(TestFn::Sum.step("accumulate"), "sum (host)".into(), Ty::Int),
        5 => step(StepSpec::SumInts, "sumints".into(), Ty::Int),
        _ => any_step(rng, Ty::Int),
    }
}

fn str_step(rng: &mut StdRng) -> GenStep {
    match rng.random_range(0..8) {
        0 => {
            let c = char::from(b'a' + rng.random_range(0..5u8));
            // Keep at most the last 4 chars so strings (and flat-mapped chars) stay small.
            map(format!("map (s+'{c}')[-4:]"), Ty::Str, move |d| {
                let s: Vec<char> = format!("{}{c}", text(d)).chars().collect();
                Datum::Str(s[s.len().saturating_sub(4)..].iter().collect())
            })
        }
        1 => map("map len(s)".into(), Ty::Int, |d| {
            Datum::Int(text(d).len() as i64)
        }),
        2 => {
            let r = rng.random_range(0..2);
            filter(format!("filter len(s)%2=={r}"), Ty::Str, move |d| {
                text(d).len() % 2 == r
            })
        }
        3 => flat_map("flatmap list(s)".into(), Ty::Str, |d| {
            text(d).chars().map(|c| Datum::Str(c.into())).collect()
        }),
        4 | 5 => step(StepSpec::CountBy, "countby".into(), Ty::Rec),
        _ => any_step(rng, Ty::Str),
    }
}

fn rec_step(rng: &mut StdRng) -> GenStep {
    match rng.random_range(0..6) {
        0 => map("map str(r)".into(), Ty::Str, |d| Datum::Str(d.py_str())),
        1 => map("map r['value']".into(), Ty::Int, |d| {
            Datum::Int(rec_value(d))
        }),
        2 => {
            let r = rng.random_range(0..2);
            filter(format!("filter r['value']%2=={r}"), Ty::Rec, move |d| {
                rec_value(d) % 2 == r
            })
        }
        3 => step(StepSpec::SumByKey, "sumbykey".into(), Ty::Rec),
        _ => any_step(rng, Ty::Rec),
    }
}

fn gen_input(rng: &mut StdRng) -> (Vec<Datum>, Ty) {
    // Empty inputs are a case of their own (aggregates emit nothing), so give them weight.
    let len = if rng.random_range(0..10) == 0 {
        0
    } else {
        rng.random_range(1..400)
    };
    if rng.random_bool(0.5) {
        return (
            (0..len)
                .map(|_| Datum::Int(rng.random_range(-100..100)))
                .collect(),
            Ty::Int,
        );
    }
    let word = |rng: &mut StdRng| -> String {
        (0..rng.random_range(0..4))
            .map(|_| char::from(b'a' + rng.random_range(0..5u8)))
            .collect()
    };
    ((0..len).map(|_| Datum::Str(word(rng))).collect(), Ty::Str)
}

fn gen_case(rng: &mut StdRng) -> Case {
    let (input, mut ty) = gen_input(rng);
    let (mut steps, mut desc) = (Vec::new(), Vec::new());
    for _ in 0..rng.random_range(1..=6) {
        let s = match ty {
            Ty::Int => int_step(rng),
            Ty::Str => str_step(rng),
            Ty::Rec => rec_step(rng),
        };
        steps.extend(s.specs);
        desc.push(s.desc);
        ty = s.out;
    }
    Case {
        input,
        plan: Plan::new(steps),
        desc,
    }
}

/// The oracle's output for `plan` over `input`, as an execution output.
fn oracle(input: &[Datum], plan: &Plan) -> ExecutionOutput {
    ExecutionOutput {
        results: common::oracle::run(input, plan),
        ..Default::default()
    }
}

/// Runs one case on the oracle, on the inline executor and at every batch size on the
/// pipelined executor.
fn check_case(seed: u64, pools: &[WorkerPool]) {
    let mut rng = StdRng::seed_from_u64(seed);
    let case = gen_case(&mut rng);
    let expected = oracle(&case.input, &case.plan);
    let bs = BATCH_SIZES[rng.random_range(0..BATCH_SIZES.len())];
    let inline = run_inline(
        VecSource::datums(&case.input, bs),
        &case.plan,
        Some(&TestUdf),
    )
    .unwrap_or_else(|e| panic!("seed {seed}: inline run failed: {e}; plan {:?}", case.desc));
    assert_outputs_equal(&inline, &expected, seed, bs, 0, &case);
    for bs in BATCH_SIZES {
        let pool = &pools[rng.random_range(0..pools.len())];
        let got = run_pipelined(
            VecSource::datums(&case.input, bs),
            &case.plan,
            &TestUdf,
            None,
            pool,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: pipelined run failed: {e}"));
        assert_outputs_equal(&got, &expected, seed, bs, pool.size(), &case);
    }
    check_tight_queues(&mut rng, seed, &case, &expected, &pools[0]);
}

/// One more run with capacity-1 queues, where every stage hits "output full" and relies on
/// its consumer's wake-up: the path default-capacity runs rarely take.
fn check_tight_queues(
    rng: &mut StdRng,
    seed: u64,
    case: &Case,
    expected: &ExecutionOutput,
    pool: &WorkerPool,
) {
    let bs = BATCH_SIZES[rng.random_range(0..2)]; // small batches: many queue hand-offs
    let config = ExecConfig { queue_capacity: 1 };
    let source = VecSource::datums(&case.input, bs);
    let (_exec, rx) = common::start(source, &case.plan, None, pool, &config);
    let got = common::wait(&rx);
    assert_outputs_equal(&got, expected, seed, bs, pool.size(), case);
}

/// `threads` is the pool size, or 0 for the inline executor (the calling thread).
fn assert_outputs_equal(
    got: &ExecutionOutput,
    want: &ExecutionOutput,
    seed: u64,
    bs: usize,
    threads: usize,
    case: &Case,
) {
    let on = match threads {
        0 => "the inline executor".to_string(),
        n => format!("{n} worker threads"),
    };
    assert_eq!(
        got,
        want,
        "seed {seed}, batch size {bs}, {on}\nplan: {:?}\ninput ({} records): {:?}",
        case.desc,
        case.input.len(),
        case.input.iter().map(Datum::py_repr).collect::<Vec<_>>(),
    );
}

fn pools() -> Vec<WorkerPool> {
    vec![WorkerPool::new(2, "diff2"), WorkerPool::new(3, "diff3")]
}

#[test]
fn random_plans_match_the_oracle() {
    let pools = pools();
    for i in 0..CASES {
        check_case(SEED + i, &pools);
    }
}

/// A second, disjoint seed range so the two halves run on parallel test threads.
#[test]
fn more_random_plans_match_the_oracle() {
    let pools = pools();
    for i in CASES..2 * CASES {
        check_case(SEED + i, &pools);
    }
}

/// Hand-picked shapes the generator reaches only by chance: a limit cutting through
/// batches after a flat-map, fused host aggregates, aggregates over nothing, and countby
/// summed by key through both shuffles.
#[test]
fn fixed_shapes_match_the_oracle() {
    let pools = pools();
    let twice = TestFn::FlatMap(Arc::new(|d: &Datum| vec![d.clone(), d.clone()])).step("flatmap");
    let plans = [
        vec![twice.clone(), StepSpec::Limit { offset: 3, len: 11 }],
        vec![
            TestFn::Sum.step("accumulate"),
            twice.clone(),
            TestFn::Sum.step("accumulate"),
        ],
        vec![StepSpec::Count, StepSpec::SumInts, StepSpec::Count],
        vec![StepSpec::Limit { offset: 0, len: 0 }, StepSpec::Count],
        vec![
            StepSpec::CountBy,
            StepSpec::Repartition,
            StepSpec::SumByKey,
            StepSpec::Collect,
            StepSpec::Limit { offset: 1, len: 5 },
        ],
    ];
    for (i, steps) in plans.into_iter().enumerate() {
        let plan = Plan::new(steps);
        for input in [common::ints(0..100), Vec::new()] {
            let want = oracle(&input, &plan);
            let inline =
                run_inline(VecSource::datums(&input, 7), &plan, Some(&TestUdf)).expect("inline");
            assert_eq!(
                inline,
                want,
                "fixed plan {i} inline, {} records",
                input.len()
            );
            for bs in BATCH_SIZES {
                let got = run_pipelined(
                    VecSource::datums(&input, bs),
                    &plan,
                    &TestUdf,
                    None,
                    &pools[i % 2],
                )
                .expect("pipelined");
                assert_eq!(
                    got,
                    want,
                    "fixed plan {i}, batch size {bs}, {} records",
                    input.len()
                );
            }
        }
    }
}
