//! Distributed runs (REFERENCE §7): the initiator ships the run to every shard, each shard
//! runs it on its own keys, `collect`/`repartition` move records over the bus, and the
//! initiator finishes once every shard reported its part done (bounded by
//! `ExecutionMaxIdleTime`: a silent shard ends the run with 1.2's max-idle error).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use engine::exec::ExecutionOutput;
use engine::shuffle::{ShuffleCtx, SlotMap};
use gearpy::nested::depth::AtDepth;
use gearpy::{ControlledRuntime, ExecControl};

use super::bus::{self, Message, RunOrder};
use super::transport::{self, BusTransport};
use crate::model::executions::Entry;
use crate::model::topology::Topology;
use crate::redis::access::{self, AsUser, RunAs, Scope};

/// The channel key of execution `id` on every shard (FNV-1a: stable across processes).
pub fn exec_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn shuffle_ctx(
    id: &str,
    me: usize,
    initiator: usize,
    peers: Vec<String>,
    slots: Arc<SlotMap>,
) -> ShuffleCtx {
    let peers = Arc::new(peers);
    ShuffleCtx {
        me,
        shards: peers.len(),
        initiator,
        exec_id: exec_key(id),
        transport: Arc::new(BusTransport { me, peers }),
        slots,
        idle_timeout: crate::model::state::wait_bound(),
        pool: Arc::clone(engine::pool::global()),
        foreign: Some(Arc::new(gearpy::PyColumnDecoder)),
        credit_window: credit_window(),
    }
}

/// `ShuffleCreditWindow`: bundles in flight per destination (0: unlimited).
fn credit_window() -> usize {
    crate::model::state::get().map_or(0, |s| {
        usize::try_from(s.config.int("ShuffleCreditWindow")).unwrap_or(0)
    })
}

/// This shard's parts that are running, with the other shards of each: while a part
/// runs, the sweeper tells them so (`Alive`) every third of the idle bound, so a slow but
/// working part is never taken for a lost one.
fn live() -> std::sync::MutexGuard<'static, HashMap<String, Vec<String>>> {
    static L: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    L.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn part_started(id: &str, shards: &[String], me: usize) {
    let peers = shards
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, s)| s.clone())
        .collect();
    live().insert(id.to_owned(), peers);
    super::sweeper::every_tick(check);
}

fn part_ended(id: &str) {
    live().remove(id);
}

/// Whether running parts send heartbeats and silent shards are asked before a run ends
/// (`ExecutionHeartbeats`, default on). Off: 1.2's rule, a run ends when no shard message
/// arrives within `ExecutionMaxIdleTime`.
fn heartbeats() -> bool {
    crate::model::state::get().is_none_or(|s| s.config.int("ExecutionHeartbeats") != 0)
}

/// Sends `Alive` for every running part (called by the sweeper).
fn send_heartbeats() {
    if !heartbeats() {
        return;
    }
    let parts: Vec<(String, Vec<String>)> =
        live().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (id, peers) in parts {
        let m = Message::Alive { id };
        for p in &peers {
            bus::send(Some(p), &m);
        }
    }
}

/// Another shard's part of `id` is alive (main thread): its channels see progress from
/// that shard (`sender`, a node id); one unknown to the topology counts for no shard.
pub fn on_alive(id: &str, sender: &str) {
    let from = crate::model::topology::current()
        .and_then(|t| t.shards.iter().position(|s| s.id == sender))
        .unwrap_or(usize::MAX);
    transport::touch(exec_key(id), from);
}

/// Completes a run once every shard is done.
pub type Complete = Box<dyn FnOnce(ExecutionOutput) + Send>;

/// A run this shard initiated, until every shard reported its part done.
#[derive(Default)]
struct Pending {
    /// Other shards still to report.
    remaining: usize,
    /// Set when the local part ended: its output, how to complete, and the deadline.
    local: Option<(ExecutionOutput, Complete, Instant)>,
    /// Errors of shards whose part could not start.
    errors: Vec<String>,
    /// Past its deadline: the silent shards are being asked whether they still run.
    probing: bool,
    /// The run's nesting depth: it completes on that depth's pool (`run::pools`).
    depth: u32,
}

fn pending() -> std::sync::MutexGuard<'static, HashMap<String, Pending>> {
    static P: OnceLock<Mutex<HashMap<String, Pending>>> = OnceLock::new();
    P.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Ships run `id` (running as `run_as` everywhere) to every other shard and returns this
/// shard's shuffle context.
pub fn launch(id: &str, topo: &Topology, wire: Vec<u8>, run_as: &RunAs, depth: u32) -> ShuffleCtx {
    let m = Message::Run(RunOrder {
        id: id.to_owned(),
        initiator: topo.me as u32,
        shards: topo.ids(),
        ranges: ranges_of(topo),
        wire,
        run_as: run_as.clone(),
        depth,
    });
    launch_with(id, topo, &m)
}

/// The topology's slot ranges as a run order carries them.
pub(super) fn ranges_of(topo: &Topology) -> Vec<(u16, u16, u32)> {
    topo.ranges()
        .into_iter()
        .map(|(a, b, i)| (a, b, i as u32))
        .collect()
}

/// Sends the run order `m` of run `id` to every other shard, and waits for their parts
/// (`local_done`); returns this shard's shuffle context.
pub(super) fn launch_with(id: &str, topo: &Topology, m: &Message) -> ShuffleCtx {
    let depth = match m {
        Message::Run(order) => order.depth,
        _ => 0,
    };
    pending().insert(
        id.to_owned(),
        Pending {
            remaining: topo.shards.len() - 1,
            local: None,
            errors: Vec::new(),
            probing: false,
            depth,
        },
    );
    let ids = topo.ids();
    for (i, s) in topo.shards.iter().enumerate() {
        if i != topo.me && !bus::send(Some(&s.id), m) {
            crate::redis::ffi::log::warning(&format!(
                "Gearshift: could not send execution {id} to shard {}",
                s.id
            ));
        }
    }
    part_started(id, &ids, topo.me);
    shuffle_ctx(id, topo.me, topo.me, ids, Arc::clone(&topo.slots))
}

/// The initiator's own part of `id` ended: completes the run now if every other shard
/// already reported, else when the last one does, or with 1.2's max-idle error when one
/// stays silent for `ExecutionMaxIdleTime`. Never blocks the calling worker.
pub fn local_done(id: &str, mut out: ExecutionOutput, complete: Complete) {
    part_ended(id);
    count_shard(id, false);
    let mut p = pending();
    match p.get_mut(id) {
        Some(run) if run.remaining > 0 => {
            run.local = Some((
                out,
                complete,
                Instant::now() + crate::model::state::wait_bound(),
            ));
            drop(p);
            super::sweeper::every_tick(check);
        }
        _ => {
            out.errors
                .extend(p.remove(id).map(|r| r.errors).unwrap_or_default());
            drop(p);
            transport::forget(exec_key(id));
            complete(out);
        }
    }
}

/// Removes run `id` once its local part ended: its output (with the errors of shards that
/// could not run their part) and how to complete it.
fn take_finished(
    p: &mut HashMap<String, Pending>,
    id: &str,
) -> Option<(ExecutionOutput, Complete)> {
    let run = p.remove(id)?;
    let (mut out, complete, _) = run.local?;
    out.errors.extend(run.errors);
    Some((out, complete))
}

/// Forgets run `id` whose local part never started.
pub fn abandon(id: &str) {
    part_ended(id);
    pending().remove(id);
    transport::forget(exec_key(id));
}

/// A shard reported its part of `id` done (main thread): the last report completes the
/// run, on a worker.
pub fn on_done(id: &str, _sender: &str) {
    if pending().contains_key(id) {
        count_shard(id, true);
    }
    let mut p = pending();
    let Some(run) = p.get_mut(id) else { return };
    run.remaining = run.remaining.saturating_sub(1);
    if let Some(local) = run.local.as_mut() {
        // A shard's message is progress: the idle period starts again.
        local.2 = Instant::now() + crate::model::state::wait_bound();
    }
    if run.remaining > 0 || run.local.is_none() {
        return;
    }
    let depth = run.depth;
    let Some((out, complete)) = take_finished(&mut p, id) else {
        return;
    };
    drop(p);
    transport::forget(exec_key(id));
    if let Some(state) = crate::model::state::get() {
        on_pool(state, depth, move || complete(out));
    }
}

/// RG.GETEXECUTION's counters on the initiator's entry of run `id`: a part finished
/// (`shards_completed`), and if it is another shard's, its report was received
/// (`shards_received`).
fn count_shard(id: &str, other: bool) {
    let Some(e) = crate::model::state::get().and_then(|s| s.registry.get(id)) else {
        return;
    };
    if other {
        e.shards_received
            .fetch_add(1, engine::sync::Ordering::Relaxed);
    }
    e.shards_completed
        .fetch_add(1, engine::sync::Ordering::Relaxed);
}

/// The sweeper's check for runs: silent shards are probed, and heartbeats go out every
/// third of the idle bound.
fn check(now: Instant) {
    static LAST_BEAT: Mutex<Option<Instant>> = Mutex::new(None);
    sweep(now);
    let mut last = LAST_BEAT.lock().unwrap_or_else(|e| e.into_inner());
    let last_beat = *last.get_or_insert(now);
    if now.duration_since(last_beat) >= crate::model::state::wait_bound() / 3 {
        *last = Some(now);
        drop(last);
        send_heartbeats();
    }
}

/// Runs whose deadline passed: the shards still out are asked whether their part is
/// still running. If one is, the run is progressing and gets another idle period (a part
/// may run long after the initiator's own ended, e.g. `run(collect=False)`); if none is,
/// the run ends with 1.2's max-idle error. With `ExecutionHeartbeats 0` nobody is asked:
/// the run ends at once, as in 1.2.
fn sweep(now: Instant) {
    let due: Vec<String> = {
        let mut p = pending();
        p.iter_mut()
            .filter(|(_, r)| !r.probing && r.local.as_ref().is_some_and(|l| l.2 <= now))
            .map(|(id, r)| {
                r.probing = true;
                id.clone()
            })
            .collect()
    };
    let probe = heartbeats();
    for id in due {
        if !probe {
            // 1.2: silence for the idle time ends the run, working parts or not.
            after_probe(&id, false);
            continue;
        }
        let probe_id = id.clone();
        super::ask::ask_others(
            super::ask::Query::IsRunning(probe_id),
            crate::model::state::wait_bound(),
            Box::new(move |answers| {
                let running = answers
                    .iter()
                    .any(|(_, r)| matches!(r, crate::redis::ffi::replies::Reply::Int(1)));
                after_probe(&id, running);
            }),
        );
    }
}

/// A probe of run `id`'s silent shards came back.
fn after_probe(id: &str, running: bool) {
    let mut p = pending();
    if running {
        if let Some(run) = p.get_mut(id) {
            run.probing = false;
            if let Some(local) = run.local.as_mut() {
                local.2 = Instant::now() + crate::model::state::wait_bound();
            }
        }
        return;
    }
    let Some((mut out, complete)) = take_finished(&mut p, id) else {
        return;
    };
    drop(p);
    transport::forget(exec_key(id));
    const IDLE: &str = "Execution max idle reached";
    if !out.errors.iter().any(|e| e == IDLE) {
        out.errors.push(IDLE.into());
    }
    complete(out);
}

/// Whether this shard's part of `id` is still running (answer to another shard's probe).
pub fn is_running(id: &str) -> bool {
    crate::model::state::get()
        .and_then(|s| s.registry.get(id))
        .is_some_and(|e| {
            matches!(
                e.status(),
                crate::model::executions::Status::Running
                    | crate::model::executions::Status::Created
            )
        })
}

/// A blocking run replied: its parts on the other shards are dropped too (1.2 keeps no
/// trace of a blocking run). Each part finished before it reported done, so none is still
/// running there; an unknown id is fine.
pub fn drop_parts(id: &str) {
    super::ask::ask_others(
        super::ask::Query::DropExecution(id.to_owned()),
        crate::model::state::wait_bound(),
        Box::new(|_| {}),
    );
}

/// Another shard asks this one to run its part of an execution (main thread: hand it to
/// a worker).
pub fn on_run(order: RunOrder) {
    let Some(state) = crate::model::state::get() else {
        return;
    };
    on_pool(state, order.depth, move || {
        crate::redis::ffi::trampoline::callback("a remote execution", (), || run_part(order))
    });
}

/// Runs `f` on the pool of runs at `depth`: a nested run's work never queues behind
/// workers that wait for it (`run::pools`).
fn on_pool(
    state: &'static crate::model::state::ModuleState,
    depth: u32,
    f: impl FnOnce() + Send + 'static,
) {
    crate::run::pools::for_depth(state, depth)
        .unwrap_or(&state.pool)
        .spawn_fn(f);
}

fn run_part(order: RunOrder) {
    let part = Part {
        id: &order.id,
        shards: &order.shards,
        ranges: &order.ranges,
        initiator: order.initiator,
        depth: order.depth,
    };
    run_remote(&part, |me| start_part(&order, me));
}

/// Another shard's run, as its order describes it.
pub(super) struct Part<'a> {
    pub id: &'a str,
    pub shards: &'a [String],
    pub ranges: &'a [(u16, u16, u32)],
    pub initiator: u32,
    /// The run's nesting depth: the part runs on that depth's pool (`run::pools`).
    pub depth: u32,
}

/// Runs `start` with this shard's index in `part`; if it fails, the other shards are
/// told (`fail_part`), so none waits for this part.
pub(super) fn run_remote(part: &Part<'_>, start: impl FnOnce(usize) -> Result<(), String>) {
    // A shard that has not run a script yet may not know the topology.
    if crate::model::topology::current().is_none() {
        crate::model::topology::refresh();
    }
    let my_id = crate::model::topology::shard_id();
    let me = part.shards.iter().position(|s| *s == my_id);
    if let Err(e) = me
        .ok_or_else(|| format!("execution names shards without this one ({my_id})"))
        .and_then(start)
    {
        fail_part(part, me, e);
    }
}

/// Starts this shard's part; on `Err` nothing was started.
fn start_part(order: &RunOrder, me: usize) -> Result<(), String> {
    // Unpickling may run the initiator's code: as the run's user, like the rest.
    let req = {
        let _as = Scope::enter(order.run_as.clone());
        gearpy::cluster::run_from_wire(&order.wire)?
    };
    let entry = Entry::new(order.id.clone(), &req.plan);
    // A nested run's part reads at its depth (a PythonReader may `run()` too).
    let source = crate::run::start::source_for(req.reader, &req.plan);
    let source = access::source(
        gearpy::nested::depth::source(source, order.depth),
        &order.run_as,
    );
    let part = Part {
        id: &order.id,
        shards: &order.shards,
        ranges: &order.ranges,
        initiator: order.initiator,
        depth: order.depth,
    };
    start_local_part(&part, me, entry, source, &req.plan, &order.run_as)
}

/// Starts this shard's part of another shard's run `part`: `source` through `plan` as
/// `run_as`, listed as `entry`; the initiator is told when it is done.
pub(super) fn start_local_part(
    part: &Part<'_>,
    me: usize,
    entry: Arc<Entry>,
    source: Box<dyn engine::exec::Source>,
    plan: &engine::plan::Plan,
    run_as: &RunAs,
) -> Result<(), String> {
    let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
    let ranges: Vec<(u16, u16, usize)> = part
        .ranges
        .iter()
        .map(|&(a, b, i)| (a, b, i as usize))
        .collect();
    let initiator = part.initiator as usize;
    let to = part
        .shards
        .get(initiator)
        .ok_or("execution names no initiator")?
        .clone();
    let ctx = shuffle_ctx(
        part.id,
        me,
        initiator,
        part.shards.to_vec(),
        Arc::new(SlotMap::from_ranges(&ranges)),
    );
    let control = ExecControl::new();
    let host = AsUser::new(
        AtDepth::new(ControlledRuntime(Arc::clone(&control)), part.depth),
        run_as.clone(),
    );
    let on_done = {
        let entry = Arc::clone(&entry);
        let id = part.id.to_owned();
        Box::new(move |out: ExecutionOutput| {
            part_ended(&id);
            entry.finish(out);
            transport::forget(exec_key(&id));
            bus::send(Some(&to), &Message::Done { id });
        })
    };
    // A nested run's part runs on its depth's pool (`run::pools`).
    let pool = crate::run::pools::for_depth(state, part.depth)?;
    part_started(part.id, part.shards, me);
    let handle =
        crate::run::start::start_execution_on(pool, source, plan, &host, Some(&ctx), on_done)
            .map_err(|e| {
                part_ended(part.id);
                e.to_string()
            })?;
    entry.started(handle, Some(control));
    state
        .registry
        .keep(entry, state.config.int("MaxExecutions"));
    Ok(())
}

/// This shard's part could not start: every shard that waits for its records is told (so
/// none waits for the idle bound), and the initiator reports `error`.
fn fail_part(part: &Part<'_>, me: Option<usize>, error: String) {
    crate::redis::ffi::log::warning(&format!(
        "Gearshift: part of execution {} failed here: {error}",
        part.id
    ));
    let failed = Message::PartFailed {
        id: part.id.to_owned(),
        from: me.unwrap_or(usize::MAX) as u32,
        error,
    };
    for (i, shard) in part.shards.iter().enumerate() {
        if Some(i) != me {
            bus::send(Some(shard), &failed);
        }
    }
    transport::forget(exec_key(part.id));
    if let Some(to) = part.shards.get(part.initiator as usize) {
        bus::send(
            Some(to),
            &Message::Done {
                id: part.id.to_owned(),
            },
        );
    }
}

/// Shard `from` could not run its part of `id` (main thread): shuffles stop waiting for it,
/// and if this shard initiated the run, the error is reported with its results.
pub fn on_part_failed(id: &str, from: usize, error: String) {
    transport::fail_shard(exec_key(id), from);
    if let Some(run) = pending().get_mut(id) {
        run.errors.push(error);
    }
}
