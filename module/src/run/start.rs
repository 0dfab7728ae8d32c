//! Starting an execution on this shard: the engine source for a run's reader, and the one
//! way every reader (scripts, triggers, events, streams, cluster parts) starts a plan on the
//! module's worker pool. Depends on `run::readers`, `model` and `redis`.

use std::sync::{Arc, Mutex};

use engine::exec::{Execution, Source};
use engine::plan::Plan;
use gearpy::{ExecControl, ReaderSpec};

use crate::model::executions::Entry;
use crate::model::state::ModuleState;
use crate::run::readers::key_names::KeyNamesSource;
use crate::run::readers::keys::KeysSource;

/// The run's source. A plan that starts by counting never looks at values, so the reader
/// skips reading them (same output, much less work under the Redis lock), nor at key
/// names, so KeysOnlyReader leaves them in their key batch.
pub fn source_for(reader: ReaderSpec, plan: &engine::plan::Plan) -> Box<dyn Source> {
    let counts_first = matches!(plan.steps.first(), Some(engine::plan::StepSpec::Count));
    match reader {
        ReaderSpec::Keys {
            pattern,
            no_scan,
            read_value,
        } => Box::new(KeysSource::new(
            pattern,
            no_scan,
            read_value && !counts_first,
        )),
        ReaderSpec::KeyNames { pattern, no_scan } => {
            Box::new(KeyNamesSource::new(pattern, no_scan, counts_first))
        }
        ReaderSpec::Python(g) => Box::new(g),
    }
}

/// Starts `plan` over `source` on the module's worker pool with the default tuning: the
/// one way every reader (scripts, triggers, events, streams, cluster parts) starts one.
pub fn start_execution(
    state: &ModuleState,
    source: Box<dyn engine::exec::Source>,
    plan: &Plan,
    host: &dyn engine::udf::UdfRuntime,
    shuffle: Option<&engine::shuffle::ShuffleCtx>,
    on_done: engine::exec::OnDone,
) -> Result<Execution, String> {
    start_execution_on(&state.pool, source, plan, host, shuffle, on_done)
}

/// As [`start_execution`], on `pool` (a nested `run()`'s pool for its depth).
pub fn start_execution_on(
    pool: &engine::exec::WorkerPool,
    source: Box<dyn engine::exec::Source>,
    plan: &Plan,
    host: &dyn engine::udf::UdfRuntime,
    shuffle: Option<&engine::shuffle::ShuffleCtx>,
    on_done: engine::exec::OnDone,
) -> Result<Execution, String> {
    let cfg = engine::exec::ExecConfig::default();
    Execution::start(source, plan, Some(host), shuffle, pool, &cfg, on_done)
        .map_err(|e| e.to_string())
}

/// Starts (with `start`) a run that a blocked client in `slot` waits for, listed as `entry`.
/// The slot is held while it starts: a run that ends at once takes the client only after
/// `entry` is kept, so a listing never outlives its run. On an error nothing is listed, the
/// slot is free again, and the caller replies.
pub fn start_listed<C>(
    state: &ModuleState,
    entry: &Arc<Entry>,
    slot: &Mutex<Option<C>>,
    control: Arc<ExecControl>,
    start: impl FnOnce() -> Result<Execution, String>,
) -> Result<(), String> {
    let held = slot.lock().unwrap_or_else(|e| e.into_inner());
    let handle = start()?;
    entry.started(handle, Some(control));
    if held.is_some() {
        state.keep(entry);
    }
    Ok(())
}
