//! Multi-shard tests: the same plan on 1, 2 and 3 in-process shards
//! (`shuffle::InProcessNetwork`), each shard on its own `WorkerPool` with its share of the
//! input, must give the initiator the output a single-shard run gives (order aside).
//!
//! Covered edges (after Timely's pacts, STYLE.md 2.3): `collect` (everything to the
//! initiator, errors included), `repartition` (each record to the owner of its key's hash
//! slot, and record counts conserved across the edge), and a missing shard, which must end
//! the execution with `Execution max idle reached` within the idle bound. With a credit
//! window of 1 and 2 bundles the results are the same and the window bounds the bundles
//! in flight.

mod common;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{ints, sorted_reprs};
use engine::exec::{ExecConfig, ExecutionOutput, WorkerPool};
use engine::plan::{Plan, StepSpec};
use engine::pool::BufferPool;
use engine::shuffle::{
    Bundle, ChannelId, InProcessNetwork, Partitioner, ShuffleCtx, SlotMap, Transport,
};
use engine::testing::{run_pipelined, TestFn, TestUdf, VecSource};
use engine::Datum;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const SEED: u64 = 0x5348_4152_4453; // "SHARDS"
const BATCH_SIZES: [usize; 4] = [1, 7, 64, 1000];
/// Generous: only a hung shard (a bug) gets near it.
const IDLE: Duration = Duration::from_secs(5);
const EXEC_ID: u64 = 42;

/// One `ShuffleCtx` per shard of a fresh `n`-shard network; shard 0 initiates.
fn cluster(n: usize, idle_timeout: Duration) -> Vec<ShuffleCtx> {
    let slots = Arc::new(SlotMap::even(n));
    InProcessNetwork::new(n)
        .into_iter()
        .enumerate()
        .map(|(me, transport)| ShuffleCtx {
            me,
            shards: n,
            initiator: 0,
            exec_id: EXEC_ID,
            transport,
            slots: Arc::clone(&slots),
            idle_timeout,
            pool: BufferPool::new(8, 1 << 20),
            foreign: None,
            credit_window: 0,
        })
        .collect()
}

/// Shard `me`'s share of the input: round-robin, as keys spread over a cluster.
fn share(input: &[Datum], me: usize, n: usize) -> Vec<Datum> {
    input.iter().skip(me).step_by(n).cloned().collect()
}

/// Runs `plan` on an `n`-shard cluster where only the shards in `running` start; returns
/// their outputs in `running` order. Every shard gets its own pool, as every Redis does.
fn run_shards(
    plan: &Plan,
    input: &[Datum],
    n: usize,
    bs: usize,
    running: &[usize],
    idle: Duration,
) -> Vec<ExecutionOutput> {
    let ctxs = cluster(n, idle);
    let pools: Vec<WorkerPool> = running
        .iter()
        .map(|i| WorkerPool::new(2, &format!("shard{i}")))
        .collect();
    let started: Vec<_> = running
        .iter()
        .zip(&pools)
        .map(|(&me, pool)| {
            let source = VecSource::datums(&share(input, me, n), bs);
            common::start(source, plan, Some(&ctxs[me]), pool, &ExecConfig::default())
        })
        .collect();
    started.iter().map(|(_, rx)| common::wait(rx)).collect()
}

/// All `n` shards run; index `i` of the result is shard `i`'s output.
fn run_all(plan: &Plan, input: &[Datum], n: usize, bs: usize) -> Vec<ExecutionOutput> {
    let all: Vec<usize> = (0..n).collect();
    run_shards(plan, input, n, bs, &all, IDLE)
}

fn single_shard(plan: &Plan, input: &[Datum]) -> ExecutionOutput {
    let pool = WorkerPool::new(2, "single");
    run_pipelined(VecSource::datums(input, 64), plan, &TestUdf, None, &pool)
        .expect("single-shard run")
}

/// The partition key (and, after mapping, the countby key) of an int record.
fn bucket(d: &Datum) -> String {
    match d {
        Datum::Int(i) => format!("k{}", i.rem_euclid(17)),
        other => panic!("expected an int, got {other:?}"),
    }
}

fn extract_bucket() -> StepSpec {
    TestFn::ExtractKey(Arc::new(bucket)).step("extractkey")
}

fn to_bucket() -> StepSpec {
    TestFn::Map(Arc::new(|d: &Datum| Datum::Str(bucket(d)))).step("map")
}

/// The initiator's results equal a single-shard run's (as multisets) and the other
/// shards produced nothing: `collect` moved everything.
fn assert_collected(outs: &[ExecutionOutput], want: &ExecutionOutput, what: &str) {
    assert!(outs[0].errors.is_empty(), "{what}: {:?}", outs[0].errors);
    assert_eq!(
        sorted_reprs(&outs[0].results),
        sorted_reprs(&want.results),
        "{what}"
    );
    for (i, o) in outs.iter().enumerate().skip(1) {
        assert!(
            o.results.is_empty() && o.errors.is_empty(),
            "{what}: shard {i} kept {o:?}"
        );
    }
}

/// `plan` on 1, 2 and 3 shards, at every batch size, collects exactly `want`.
fn assert_every_layout(plan: &Plan, input: &[Datum], want: &ExecutionOutput) {
    for n in 1..=3 {
        for bs in BATCH_SIZES {
            assert_collected(
                &run_all(plan, input, n, bs),
                want,
                &format!("{n} shards, batch {bs}"),
            );
        }
    }
}

#[test]
fn count_collect_sum_matches_one_shard() {
    let plan = Plan::new(vec![StepSpec::Count, StepSpec::Collect, StepSpec::SumInts]);
    let input = ints(0..1000);
    let want = single_shard(&plan, &input);
    assert_eq!(want.results, vec![Datum::Int(1000)]);
    assert_every_layout(&plan, &input, &want);
}

#[test]
fn map_filter_collect_matches_one_shard() {
    let plan = Plan::new(vec![
        TestFn::Map(Arc::new(|d: &Datum| Datum::Str(format!("v{}", d.py_str())))).step("map"),
        TestFn::Filter(Arc::new(|d: &Datum| !d.py_str().ends_with('3'))).step("filter"),
        StepSpec::Collect,
    ]);
    let input = ints(0..500);
    let want = single_shard(&plan, &input);
    assert_every_layout(&plan, &input, &want);
}

#[test]
fn repartition_then_countby_matches_one_shard() {
    let plan = Plan::new(vec![
        extract_bucket(),
        StepSpec::Repartition,
        to_bucket(),
        StepSpec::CountBy,
        StepSpec::Collect,
    ]);
    let input = ints(0..700);
    let want = single_shard(&plan, &input);
    assert_eq!(want.results.len(), 17, "one count per bucket");
    assert_every_layout(&plan, &input, &want);
}

/// Without a final collect, each shard counts exactly the buckets whose slot it owns, and
/// together the shards give the single-shard counts.
#[test]
fn repartition_sends_each_key_to_its_slot_owner() {
    let plan = Plan::new(vec![
        extract_bucket(),
        StepSpec::Repartition,
        to_bucket(),
        StepSpec::CountBy,
    ]);
    let input = ints(0..700);
    let want = single_shard(&plan, &input);
    for n in 2..=3 {
        let outs = run_all(&plan, &input, n, 7);
        let busy = outs.iter().filter(|o| !o.results.is_empty()).count();
        assert!(
            busy > 1,
            "{n} shards: the buckets should spread over several shards"
        );
        let slots = SlotMap::even(n);
        for (shard, out) in outs.iter().enumerate() {
            for r in &out.results {
                let Datum::Map(items) = r else {
                    panic!("countby record expected, got {r:?}")
                };
                let key = items[0].1.py_str();
                assert_eq!(
                    slots.shard_of(key.as_bytes()),
                    shard,
                    "{key} counted on shard {shard} of {n}"
                );
            }
        }
        let union: Vec<Datum> = outs.into_iter().flat_map(|o| o.results).collect();
        assert_eq!(
            sorted_reprs(&union),
            sorted_reprs(&want.results),
            "{n} shards"
        );
    }
}

/// Record-count conservation across a repartition edge (Timely's pact invariant): the
/// records leaving all shards are exactly the records that entered, each on the shard
/// owning its key, for random inputs, shard counts and batch sizes.
#[test]
fn repartition_conserves_records() {
    let key = TestFn::ExtractKey(Arc::new(|d: &Datum| d.py_repr())).step("extractkey");
    let plan = Plan::new(vec![key, StepSpec::Repartition]);
    let counted = Plan::new(vec![
        plan.steps[0].clone(),
        StepSpec::Repartition,
        StepSpec::Count,
        StepSpec::Collect,
        StepSpec::SumInts,
    ]);
    let mut rng = StdRng::seed_from_u64(SEED);
    for _ in 0..20 {
        let input: Vec<Datum> = (0..rng.random_range(0..600))
            .map(|_| Datum::Int(rng.random_range(-1000..1000)))
            .collect();
        let (n, bs) = (
            rng.random_range(1..=3),
            BATCH_SIZES[rng.random_range(0..BATCH_SIZES.len())],
        );
        let outs = run_all(&plan, &input, n, bs);
        let slots = SlotMap::even(n);
        for (shard, out) in outs.iter().enumerate() {
            assert!(out
                .results
                .iter()
                .all(|d| slots.shard_of(d.py_repr().as_bytes()) == shard));
        }
        let out_count: usize = outs.iter().map(|o| o.results.len()).sum();
        assert_eq!(
            out_count,
            input.len(),
            "{n} shards, batch {bs}: count in != count out"
        );
        let union: Vec<Datum> = outs.into_iter().flat_map(|o| o.results).collect();
        assert_eq!(
            sorted_reprs(&union),
            sorted_reprs(&input),
            "{n} shards, batch {bs}"
        );
        let total = run_all(&counted, &input, n, bs).swap_remove(0);
        let want: Vec<Datum> = if input.is_empty() {
            vec![]
        } else {
            vec![Datum::Int(input.len() as i64)]
        };
        assert_eq!(total.results, want, "{n} shards, batch {bs}: global count");
    }
}

/// An error record on a non-initiator shard travels with `collect` to the initiator.
#[test]
fn collect_carries_errors_to_the_initiator() {
    let plan = Plan::new(vec![
        TestFn::FailOn(Datum::Int(5)).step("map"),
        StepSpec::Collect,
    ]);
    let outs = run_all(&plan, &ints(0..30), 3, 4);
    assert_eq!(
        outs[0].errors,
        vec!["failed on 5".to_owned()],
        "5 is on shard 2 (round-robin)"
    );
    assert!(outs[1].errors.is_empty() && outs[2].errors.is_empty());
}

/// A shard that never runs: the initiator gives up after the idle timeout and reports it.
#[test]
fn missing_shard_ends_with_max_idle() {
    let idle = Duration::from_millis(300);
    let plans = [
        Plan::new(vec![StepSpec::Count, StepSpec::Collect, StepSpec::SumInts]),
        Plan::new(vec![
            extract_bucket(),
            StepSpec::Repartition,
            StepSpec::Count,
        ]),
    ];
    for plan in &plans {
        let t0 = Instant::now();
        let out = run_shards(plan, &ints(0..100), 2, 7, &[0], idle).swap_remove(0);
        let took = t0.elapsed();
        assert!(
            out.errors.iter().any(|e| e == "Execution max idle reached"),
            "{:?}",
            out.errors
        );
        assert!(took >= idle, "gave up before the idle timeout: {took:?}");
        assert!(
            took < idle + Duration::from_secs(3),
            "took {took:?}, bound is {idle:?}"
        );
    }
}

/// Two repartitioning executions started in opposite orders on two shards whose pools
/// have one thread each. A shuffle that held its worker while waiting would wait for the
/// execution the *other* shard cannot run, and both would give up after the idle timeout;
/// cooperative waits (`try_finish`) let both finish.
#[test]
fn crossing_shuffles_do_not_starve_one_thread_pools() {
    let plan = Plan::new(vec![
        extract_bucket(),
        StepSpec::Repartition,
        StepSpec::Count,
        StepSpec::Collect,
        StepSpec::SumInts,
    ]);
    let idle = Duration::from_millis(500);
    let (e1, e2) = (cluster(2, idle), cluster(2, idle));
    let pools = [WorkerPool::new(1, "s0"), WorkerPool::new(1, "s1")];
    let input = ints(0..100);
    let start = |ctx: &ShuffleCtx| {
        let source = VecSource::datums(&share(&input, ctx.me, 2), 7);
        common::start(
            source,
            &plan,
            Some(ctx),
            &pools[ctx.me],
            &ExecConfig::default(),
        )
    };
    // Shard 0 runs E1 first, shard 1 runs E2 first.
    let runs = [start(&e1[0]), start(&e2[1]), start(&e2[0]), start(&e1[1])];
    let outs: Vec<ExecutionOutput> = runs.iter().map(|(_, rx)| common::wait(rx)).collect();
    for (i, o) in outs.iter().enumerate() {
        assert!(o.errors.is_empty(), "run {i}: {:?}", o.errors);
    }
    // The initiators (shard 0) of E1 and E2 each count every record.
    assert_eq!(outs[0].results, vec![Datum::Int(100)]);
    assert_eq!(outs[2].results, vec![Datum::Int(100)]);
}

/// Native `countby` as the Python layer plans it: local count per key, repartition by the
/// key (CountBy output carries it), sum per key, collect. Every shard counts part of each
/// key; the initiator must get exactly the single-shard totals.
#[test]
fn native_countby_sums_partial_counts_across_shards() {
    let plan = Plan::new(vec![
        to_bucket(),
        StepSpec::CountBy,
        StepSpec::Repartition,
        StepSpec::SumByKey,
        StepSpec::Collect,
    ]);
    let input = ints(0..700);
    let want = single_shard(&plan, &input);
    assert_eq!(want.results.len(), 17, "one count per bucket");
    assert_every_layout(&plan, &input, &want);
}

/// Bundles sent and not yet given credit back, per (step, sender, receiver), and the most
/// ever outstanding (each shuffle step has its own window).
type Flight = Arc<Mutex<(HashMap<(u32, usize, usize), i64>, i64)>>;

/// A transport that records the bundles in flight (`Flight`).
struct Counted {
    inner: Arc<dyn Transport>,
    me: usize,
    flight: Flight,
}

impl Transport for Counted {
    fn send(&self, to: usize, ch: ChannelId, bundle: Bundle) -> engine::Result<()> {
        {
            let mut f = self.flight.lock().unwrap();
            let n = f.0.entry((ch.step, self.me, to)).or_default();
            *n += 1;
            let n = *n;
            f.1 = f.1.max(n);
        }
        self.inner.send(to, ch, bundle)
    }
    fn recv(&self, ch: ChannelId, t: Duration) -> engine::Result<Option<(usize, Bundle)>> {
        self.inner.recv(ch, t)
    }
    fn on_arrival(&self, ch: ChannelId, waker: engine::ops::Waker) {
        self.inner.on_arrival(ch, waker)
    }
    fn grant(&self, to: usize, ch: ChannelId, n: u32) -> engine::Result<()> {
        *self
            .flight
            .lock()
            .unwrap()
            .0
            .entry((ch.step, to, self.me))
            .or_default() -= i64::from(n);
        self.inner.grant(to, ch, n)
    }
    fn take_credits(&self, ch: ChannelId) -> Vec<(usize, u32)> {
        self.inner.take_credits(ch)
    }
}

/// Runs `plan` on 3 shards with credit window `window`; returns the outputs and the most
/// bundles one shard ever had in flight to another.
fn run_windowed(plan: &Plan, input: &[Datum], window: usize) -> (Vec<ExecutionOutput>, i64) {
    let n = 3;
    let slots = Arc::new(SlotMap::even(n));
    let flight: Flight = Arc::new(Mutex::new((HashMap::new(), 0)));
    let ctxs: Vec<ShuffleCtx> = InProcessNetwork::new(n)
        .into_iter()
        .enumerate()
        .map(|(me, inner)| ShuffleCtx {
            me,
            shards: n,
            initiator: 0,
            exec_id: EXEC_ID,
            transport: Arc::new(Counted {
                inner,
                me,
                flight: Arc::clone(&flight),
            }),
            slots: Arc::clone(&slots),
            idle_timeout: IDLE,
            pool: BufferPool::new(8, 4096),
            foreign: None,
            credit_window: window,
        })
        .collect();
    let pools: Vec<WorkerPool> = (0..n)
        .map(|i| WorkerPool::new(2, &format!("w{i}")))
        .collect();
    let started: Vec<_> = (0..n)
        .map(|me| {
            let source = VecSource::datums(&share(input, me, n), 256);
            common::start(
                source,
                plan,
                Some(&ctxs[me]),
                &pools[me],
                &ExecConfig::default(),
            )
        })
        .collect();
    let outs = started.iter().map(|(_, rx)| common::wait(rx)).collect();
    let most = flight.lock().unwrap().1;
    (outs, most)
}

/// With a credit window of 1 and 2 bundles, shuffles of many 64 KiB bundles per
/// destination (most of them wait for credit) give the single-shard results, and no shard
/// ever has more than the window in flight to another.
#[test]
fn a_credit_window_bounds_bundles_in_flight_and_changes_no_result() {
    let pad = TestFn::Map(Arc::new(|d: &Datum| {
        Datum::Str(format!("{:0>120}", d.py_str()))
    }))
    .step("map");
    let by_value = TestFn::ExtractKey(Arc::new(|d: &Datum| d.py_str())).step("extractkey");
    let collect = Plan::new(vec![pad.clone(), StepSpec::Collect]);
    let repartition = Plan::new(vec![
        pad,
        by_value,
        StepSpec::Repartition,
        StepSpec::Count,
        StepSpec::Collect,
        StepSpec::SumInts,
    ]);
    // About 125 bytes a record: each shard sends ~1.2 MB, ~20 bundles, to the initiator.
    let input = ints(0..30_000);
    for plan in [&collect, &repartition] {
        let want = single_shard(plan, &input);
        for window in [1, 2] {
            let (outs, most) = run_windowed(plan, &input, window);
            assert_collected(&outs, &want, &format!("window {window}"));
            assert!(most >= 1, "window {window}: something was shuffled");
            assert!(
                most <= window as i64,
                "window {window}: {most} bundles in flight"
            );
        }
    }
}
