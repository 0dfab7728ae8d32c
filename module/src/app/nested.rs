//! Nested runs (REFERENCE §4.1, §12.3): a `run()` called from a step, a coroutine or a
//! `registerTE` callback starts here, at once, without waiting, and tells the Python layer
//! its output when it ends (the `GearsFuture` `run()` returned).
//!
//! Deadlock: a step awaiting a nested run is a continuation — its stage parks, freeing the
//! worker, and resumes when the run's future is set (`gearpy` `stage::park`). Where an
//! await still waits on its worker (a wave of several `async def` records, steps run at
//! the end of input), the run must not need that worker's pool: so it runs on the pool
//! for its depth (`run::pools`), on every shard, and depth is bounded (`MAX_DEPTH`, a
//! clear error past it).
//!
//! A nested run is listed (`RG.DUMPEXECUTIONS`, abortable) while it runs, and dropped when
//! done, like a blocking RG.PYEXECUTE run (1.2). It runs as its parent's ACL user, on every
//! shard in cluster mode unless `mode='async_local'`. Depends on `run`, `cluster`, `model`
//! and `redis`.

use std::sync::{Arc, Mutex};

use engine::exec::ExecutionOutput;
use gearpy::nested::{NestedRun, NestedRuns};
use gearpy::ExecControl;

use crate::model::executions::Entry;
use crate::model::state::ModuleState;
use crate::redis::access::{self, AsUser, RunAs};

/// The module's side of `gearpy::nested`.
pub struct ModuleNestedRuns;

impl NestedRuns for ModuleNestedRuns {
    fn start_nested(&self, caller: Option<RunAs>, run: NestedRun) -> Result<(), String> {
        let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
        // Code without an identity is refused, as `execute()` refuses it.
        let run_as = caller.unwrap_or_else(|| RunAs::user(access::NO_USER));
        start(state, run, &run_as)
    }
}

/// Starts `run` as `run_as`; its request's `on_done` gets the output.
fn start(state: &'static ModuleState, run: NestedRun, run_as: &RunAs) -> Result<(), String> {
    let depth = run.depth;
    let pool = crate::run::pools::for_depth(state, depth)?;
    let control = ExecControl::new();
    let (mut req, runtime) = run.into_parts(Arc::clone(&control));
    let notify = req.on_done.take();
    let source = crate::run::start::source_for(req.reader, &req.plan);
    let source = access::source(gearpy::nested::depth::source(source, depth), run_as);
    let entry = Entry::new(state.registry.next_id(), &req.plan);
    let cluster = req
        .wire
        .take()
        .and_then(|w| crate::model::topology::current().map(|t| (w, t)));
    let shuffle = cluster
        .map(|(wire, topo)| crate::cluster::dist::launch(&entry.id, &topo, wire, run_as, depth));
    let distributed = shuffle.is_some();
    // Set once the run ended: it is then no longer kept (ordered by this lock).
    let ended = Arc::new(Mutex::new(false));
    let on_done = {
        let (entry, ended) = (Arc::clone(&entry), Arc::clone(&ended));
        Box::new(move |out: ExecutionOutput| {
            let id = entry.id.clone();
            let complete = move |out: ExecutionOutput| {
                *lock(&ended) = true;
                state.registry.remove(&entry.id);
                if distributed {
                    crate::cluster::dist::drop_parts(&entry.id);
                }
                if let Some(n) = notify {
                    n(&out);
                }
                entry.finish(out);
            };
            if distributed {
                crate::cluster::dist::local_done(&id, out, Box::new(complete));
            } else {
                complete(out);
            }
        })
    };
    let host = AsUser::new(runtime, run_as.clone());
    match crate::run::start::start_execution_on(
        pool,
        source,
        &req.plan,
        &host,
        shuffle.as_ref(),
        on_done,
    ) {
        Ok(handle) => {
            entry.started(handle, Some(control));
            let ended = lock(&ended);
            if !*ended {
                state.keep(&entry);
            }
            Ok(())
        }
        Err(e) => {
            if distributed {
                crate::cluster::dist::abandon(&entry.id);
            }
            Err(e)
        }
    }
}

fn lock(m: &Mutex<bool>) -> std::sync::MutexGuard<'_, bool> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
