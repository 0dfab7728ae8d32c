//! Helpers shared by the engine's integration tests (each `tests/*.rs` file is its own
//! crate and pulls this in with `mod common;`).
//!
//! Not every test crate uses every helper, hence the `dead_code` allowance below: without
//! it, each crate would warn about the helpers only the others call.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use engine::exec::{ExecConfig, Execution, ExecutionOutput, Source, WorkerPool};
use engine::plan::Plan;
use engine::shuffle::ShuffleCtx;
use engine::testing::TestHost;
use engine::Datum;

/// How long a test waits for an execution before declaring it hung.
pub const DONE_TIMEOUT: Duration = Duration::from_secs(30);

/// `Int` records for each value of `r`.
pub fn ints(r: std::ops::Range<i64>) -> Vec<Datum> {
    r.map(Datum::Int).collect()
}

/// The results as a sorted multiset of `repr()` strings: `Datum` is not `Ord`, and its
/// Python repr is what users compare anyway.
pub fn sorted_reprs(results: &[Datum]) -> Vec<String> {
    let mut v: Vec<String> = results.iter().map(Datum::py_repr).collect();
    v.sort_unstable();
    v
}

/// Starts `plan` with an explicit config and returns a receiver for its output, so tests
/// can run several executions at once or tune the queues (unlike `run_pipelined`).
pub fn start(
    source: Box<dyn Source>,
    plan: &Plan,
    shuffle: Option<&ShuffleCtx>,
    pool: &WorkerPool,
    config: &ExecConfig,
) -> (Execution, mpsc::Receiver<ExecutionOutput>) {
    let (tx, rx) = mpsc::channel();
    let on_done = Box::new(move |o: ExecutionOutput| {
        let _ = tx.send(o);
    });
    let exec = Execution::start(
        source,
        plan,
        Some(&TestHost),
        shuffle,
        pool,
        config,
        on_done,
    )
    .expect("plan builds");
    (exec, rx)
}

/// Waits (bounded) for an execution's output.
pub fn wait(rx: &mpsc::Receiver<ExecutionOutput>) -> ExecutionOutput {
    rx.recv_timeout(DONE_TIMEOUT)
        .expect("execution finished in time")
}

/// Polls `cond` until it holds or `within` passes; returns whether it held.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}
