//! This shard's half of the commands that act on every shard (RG.GETEXECUTION,
//! RG.DROPEXECUTION, RG.ABORTEXECUTION, RG.PAUSEREGISTRATIONS, RG.CLEARREGISTRATIONSSTATS,
//! unregistering, installing another shard's sessions): called by the command handlers and,
//! through `LocalShard` (the cluster layer's `ShardHandler`), for other shards' questions.
//! Depends on `run`, `model` and `redis`.

use redis_module::Context;

use crate::app::persist;
use crate::model::executions::{Entry, Status};
use crate::model::queued_ids::{number_of, NotWaiting};
use crate::model::state::ModuleState;
use crate::redis::ffi::replies::{bulk, Blocked, Reply};

/// RG.ABORTEXECUTION's text for an unknown id.
const NO_SUCH_EXECUTION: &str = "execution does not exist";

/// RG.GETEXECUTION's text for an unknown id.
pub const NO_SUCH_PLAN: &str = "execution plan does not exist";

/// Drops `id` on this shard for another shard's RG.DROPEXECUTION (unknown is fine).
pub fn drop_local(state: &ModuleState, id: &str) -> Result<Reply, String> {
    state.trim_queued();
    if let Some(e) = state.registry.get(id) {
        if matches!(e.status(), Status::Running | Status::Created) {
            return Err("can not drop a not yet finished execution, abort it first.".into());
        }
        state.registry.remove(id);
    }
    Ok(Reply::Status("OK".into()))
}

/// Aborts `id` on this shard (OK for a finished one, as 1.2).
pub fn abort_local(state: &ModuleState, id: &str) -> Result<Reply, String> {
    state.trim_queued();
    match state.registry.get(id) {
        Some(e) => {
            e.abort(&state.scripts);
        }
        None => {
            let in_flight = |state: &ModuleState| {
                let regs = state.registrations.all();
                regs.iter().any(|r| r.in_flight.abort(id))
            };
            // A queued event that starts meanwhile is stopped as a running one.
            if !in_flight(state) && !abort_queued(state, id) && !in_flight(state) {
                return Err(NO_SUCH_EXECUTION.to_owned());
            }
        }
    }
    Ok(Reply::Status("OK".into()))
}

/// Aborts the queued (`created`) keyspace event `id`: it is kept as an `aborted`
/// execution, counted in its registration's `numAborted`, and never runs.
fn abort_queued(state: &ModuleState, id: &str) -> bool {
    let Some(n) = number_of(id) else { return false };
    let regs = state.registrations.all();
    let Some((reg, clients)) = regs
        .iter()
        .find_map(|r| r.queued_ids.abort(n).map(|c| (r, c)))
    else {
        return false;
    };
    let entry = Entry::new_registered(id.to_owned(), &reg.shape);
    entry.finish(engine::exec::ExecutionOutput {
        aborted: true,
        ..Default::default()
    });
    reg.stats().aborted += 1;
    state.keep_registered(&**reg, &entry);
    for client in clients {
        entry.reply_when_done(client);
    }
    true
}

/// This shard's entry of RG.GETEXECUTION for `id` (a queued event: a `created` one).
pub fn local_plan(state: &ModuleState, id: &str) -> Result<Reply, String> {
    state.trim_queued();
    let e = match state.registry.get(id) {
        Some(e) => e,
        None => queued_entry(state, id).ok_or_else(|| NO_SUCH_PLAN.to_owned())?,
    };
    let shown = Shown {
        profile: state.config.int("ProfileExecutions") != 0,
        progress: state.config.int("ExecutionProgress") != 0,
    };
    Ok(shard_plan(&e, shown))
}

/// Whether `id` is a keyspace event of this shard queued, running or finished in a batch
/// not recorded yet (it has no entry yet).
pub fn event_pending(state: &ModuleState, id: &str) -> bool {
    let Some(n) = number_of(id) else { return false };
    let regs = state.registrations.all();
    regs.iter()
        .any(|r| r.queued_ids.pending(n) || r.in_flight.id().as_deref() == Some(id))
}

/// Parks `client` until the queued (or running, not yet recorded) keyspace event `id` of
/// this shard is recorded, aborted or discarded (`QueuedIds::wait`).
pub fn wait_for_event(
    state: &ModuleState,
    id: &str,
    client: Blocked,
) -> Result<(), NotWaiting<Blocked>> {
    let Some(n) = number_of(id) else {
        return Err(NotWaiting::NotPending(client));
    };
    let mut client = client;
    for r in state.registrations.all() {
        match r.queued_ids.wait(n, client) {
            Err(NotWaiting::NotPending(c)) => client = c,
            other => return other,
        }
    }
    Err(NotWaiting::NotPending(client))
}

/// A `created` entry for the queued event `id` (not kept: it only shows it).
fn queued_entry(state: &ModuleState, id: &str) -> Option<std::sync::Arc<Entry>> {
    let n = number_of(id)?;
    let regs = state.registrations.all();
    let reg = regs.iter().find(|r| r.queued_ids.has(n))?;
    Some(Entry::new_registered(id.to_owned(), &reg.shape))
}

/// Drops registration `id` on this shard, silently if unknown (replicas, other shards).
pub fn unregister_local(state: &ModuleState, id: &str, abort_pending: bool) {
    state.unregister(id, abort_pending);
}

/// Installs sessions another shard sent; the error is the reply text for that shard.
/// What was installed also goes to this shard's replicas and AOF (as the initiating shard
/// does for its own), so a restart from the AOF, or a promoted replica, still has it.
pub fn install_blob(ctx: &Context, state: &ModuleState, blob: &[u8]) -> Result<(), String> {
    let loaded = persist::load_strict(ctx, state, blob);
    if loaded.is_ok() {
        crate::redis::call::replicate_on(ctx, "RG.INNERREGISTER", &[blob]);
    }
    loaded
}

/// Clears this shard's registration stats.
pub fn clear_stats_local(state: &ModuleState) -> Result<Reply, String> {
    for r in state.streams.all() {
        r.clear_stats();
    }
    for r in state.registrations.all() {
        let mut s = r.stats();
        let in_flight = s.triggered.saturating_sub(s.finished());
        *s = crate::model::registrations::Stats {
            triggered: in_flight,
            ..Default::default()
        };
    }
    Ok(Reply::Status("OK".into()))
}

/// Pauses (or unpauses) registration `id` on this shard.
pub fn pause_local(state: &ModuleState, id: &str, pause: bool) -> Result<Reply, String> {
    if let Some(r) = state.streams.get(id) {
        if pause {
            r.set_status(crate::model::streams::Status::Paused);
            state.abort_stream_pending(&r);
        } else {
            crate::run::streams::unpause(r);
        }
        return Ok(Reply::Status("OK".into()));
    }
    let verb = if pause { "pause" } else { "unpause" };
    Err(match state.registrations.get(id) {
        Some(r) => format!("Reader {} does not support {verb}", r.reader()),
        None => format!(
            "Execution {id} does not exists on shard {}",
            crate::model::topology::shard_id()
        ),
    })
}

/// What RG.GETEXECUTION adds to 1.2's always-present fields: real per-step durations
/// (`ProfileExecutions`) and Gearshift's progress fields (`ExecutionProgress`).
#[derive(Clone, Copy)]
struct Shown {
    profile: bool,
    progress: bool,
}

fn shard_plan(e: &Entry, shown: Shown) -> Reply {
    let (results, errors, total_ms) = e.summary();
    // Total and read durations are always measured; per-step ones only when profiling.
    let (read_ms, step_ms) = e.durations();
    let (records_read, counts) = e.progress();
    // Steps are listed last step first; durations are 0 unless ProfileExecutions.
    // Gearshift's progress fields come after 1.2's, and only with `ExecutionProgress 1`:
    // redgrease maps every field to a name of its own and fails on any extra one.
    let steps = e
        .steps()
        .iter()
        .zip(step_ms)
        .zip(counts)
        .rev()
        .map(|((s, ms), c)| {
            let mut step = vec![
                bulk("type"),
                bulk(&s.kind),
                bulk("duration"),
                Reply::Int(if shown.profile { ms as i64 } else { 0 }),
                bulk("name"),
                bulk(&s.name),
                bulk("arg"),
                bulk(&s.arg),
            ];
            if shown.progress {
                step.extend([
                    bulk("records_in"),
                    Reply::Int(c.records_in as i64),
                    bulk("records_out"),
                    Reply::Int(c.records_out as i64),
                ]);
            }
            Reply::Array(step)
        })
        .collect();
    let count =
        |a: &engine::sync::AtomicU64| Reply::Int(a.load(engine::sync::Ordering::Relaxed) as i64);
    let mut plan = vec![
        bulk("status"),
        bulk(e.status().name()),
        bulk("shards_received"),
        count(&e.shards_received),
        bulk("shards_completed"),
        count(&e.shards_completed),
        bulk("results"),
        Reply::Int(results),
        bulk("errors"),
        Reply::Array(errors.iter().map(|x| bulk(x)).collect()),
        bulk("total_duration"),
        Reply::Int(total_ms as i64),
        bulk("read_duration"),
        Reply::Int(read_ms as i64),
        bulk("steps"),
        Reply::Array(steps),
    ];
    if shown.progress {
        plan.extend([bulk("records_read"), Reply::Int(records_read as i64)]);
    }
    Reply::Array(vec![
        bulk("shard_id"),
        bulk(&crate::model::topology::shard_id()),
        bulk("execution_plan"),
        Reply::Array(plan),
    ])
}

/// This shard's answers to the others' questions (`cluster::handler`), on the module state.
pub struct LocalShard;

impl LocalShard {
    fn state() -> Result<&'static ModuleState, String> {
        crate::model::state::get().ok_or_else(|| "Gearshift is not initialised".to_owned())
    }
}

impl crate::cluster::handler::ShardHandler for LocalShard {
    fn execution_plan(&self, id: &str) -> Result<Reply, String> {
        local_plan(Self::state()?, id)
    }

    fn drop_execution(&self, id: &str) -> Result<Reply, String> {
        drop_local(Self::state()?, id)
    }

    fn abort_execution(&self, id: &str) -> Result<Reply, String> {
        // Another shard aborts a distributed run it knows: this shard's part may not have
        // started yet or may be done and dropped already; neither is an error there.
        match abort_local(Self::state()?, id) {
            Err(e) if e == NO_SUCH_EXECUTION => Ok(Reply::Status("OK".into())),
            other => other,
        }
    }

    fn install_sessions(&self, ctx: &Context, blob: &[u8]) -> Result<Reply, String> {
        install_blob(ctx, Self::state()?, blob).map(|()| Reply::Status("OK".into()))
    }

    fn pause(&self, id: &str, pause: bool) -> Result<Reply, String> {
        pause_local(Self::state()?, id, pause)
    }

    fn clear_stats(&self) -> Result<Reply, String> {
        clear_stats_local(Self::state()?)
    }

    fn unregister(&self, ctx: &Context, id: &str, abort_pending: bool) {
        if let Ok(state) = Self::state() {
            unregister_local(state, id, abort_pending);
            // Replicas and the AOF drop it too, or a restart would bring it back.
            let id = id.as_bytes();
            if abort_pending {
                crate::redis::call::replicate_on(ctx, "RG.INNERUNREGISTER", &[id, b"abortpending"]);
            } else {
                crate::redis::call::replicate_on(ctx, "RG.INNERUNREGISTER", &[id]);
            }
        }
    }

    fn import_requirements(&self, blob: &[u8]) -> Reply {
        match Self::state() {
            Ok(state) => crate::app::requirements::import_blob(state, blob),
            Err(e) => Reply::Error(e),
        }
    }
}
