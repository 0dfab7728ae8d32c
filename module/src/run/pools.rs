//! The worker pools executions run on, by nesting depth: depth 0 (every top-level run,
//! registration, trigger and cluster part of one) is the module's pool
//! (`ModuleState::pool`); a run a `run()` nested at depth `d` starts (REFERENCE §12.3) runs
//! on a pool of its own for `d`, `ExecutionThreads` threads, started the first time that
//! depth is used, on every shard it runs on. An awaiting step usually parks (its worker is
//! free while the nested run goes on); where one still waits on its worker (a wave of
//! several `async def` records, steps at the end of input), it waits only on a deeper
//! pool, never on its own, and the Python layer bounds the depth
//! (`gearpy::nested::MAX_DEPTH`), so waiting for nested runs cannot deadlock.
//! Depends on `model` and `redis`.

use std::sync::OnceLock;

use engine::exec::WorkerPool;
use gearpy::nested::MAX_DEPTH;

use crate::model::state::ModuleState;

/// The pools of nested runs, one per depth (index `depth - 1`).
static NESTED: [OnceLock<WorkerPool>; MAX_DEPTH as usize] =
    [const { OnceLock::new() }; MAX_DEPTH as usize];

/// The pool of runs at `depth`; an error past the deepest depth allowed.
pub fn for_depth(state: &'static ModuleState, depth: u32) -> Result<&'static WorkerPool, String> {
    if depth == 0 {
        return Ok(&state.pool);
    }
    let slot = NESTED
        .get(depth as usize - 1)
        .ok_or_else(|| format!("Can not run: nesting depth {depth} is out of range"))?;
    Ok(slot.get_or_init(|| {
        let threads = state.config.int("ExecutionThreads").max(1) as usize;
        WorkerPool::with_task_end(
            threads,
            &format!("gearshift-nested{depth}"),
            crate::redis::lock::release_leaked_lock,
        )
    }))
}
