//! Helpers shared by the engine's integration tests (each `tests/*.rs` file is its own
//! crate and pulls this in with `mod common;`).
//!
//! Not every test crate uses every helper, hence the `dead_code` allowance below: without
//! it, each crate would warn about the helpers only the others call.
#![allow(dead_code)]

pub mod keys;
pub mod oracle;

use std::sync::mpsc;

use rand::rngs::StdRng;
use rand::Rng;
use std::time::{Duration, Instant};

use engine::exec::{ExecConfig, Execution, ExecutionOutput, Source, WorkerPool};
use engine::plan::Plan;
use engine::shuffle::ShuffleCtx;
use engine::testing::TestUdf;
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
    let exec = Execution::start(source, plan, Some(&TestUdf), shuffle, pool, config, on_done)
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

/// Up to `max` random bytes (for decoder property tests).
pub fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    (0..rng.random_range(0..=max))
        .map(|_| rng.random())
        .collect()
}

/// One to three random edits: bit flips, truncation, insertion, and small little-endian
/// u32s written over the bytes (to hit length and count fields with plausible values).
pub fn mutate(rng: &mut StdRng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=3) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..5) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, rng.random()),
            3 if at + 4 <= bytes.len() => {
                bytes[at..at + 4].copy_from_slice(&rng.random_range(0u32..16).to_le_bytes());
            }
            _ if at < bytes.len() => bytes[at] = rng.random(),
            _ => bytes.push(rng.random()),
        }
    }
    bytes
}
