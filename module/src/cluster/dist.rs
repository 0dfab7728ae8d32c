//! Distributed runs (REFERENCE §7): the initiator ships the run to every shard, each shard
//! runs it on its own keys, `collect`/`repartition` move records over the bus, and the
//! initiator finishes once every shard reported its part done (bounded by
//! `ExecutionMaxIdleTime`: a silent shard ends the run with 1.2's max-idle error).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use engine::exec::{ExecConfig, Execution, ExecutionOutput};
use engine::pool::BufferPool;
use engine::shuffle::{ShuffleCtx, SlotMap};
use gearpy::{ControlledRuntime, ExecControl};

use super::bus::{self, Message, RunOrder};
use super::transport::{self, BusTransport};
use super::Topology;
use crate::executions::Entry;

/// The channel key of execution `id` on every shard (FNV-1a: stable across processes).
pub fn exec_key(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn frame_pool() -> Arc<BufferPool> {
    static POOL: OnceLock<Arc<BufferPool>> = OnceLock::new();
    Arc::clone(POOL.get_or_init(|| BufferPool::new(16, 64 * 1024)))
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
        idle_timeout: super::wait_bound(),
        pool: frame_pool(),
        foreign: Some(Arc::new(gearpy::PyColumnDecoder)),
    }
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
}

fn pending() -> std::sync::MutexGuard<'static, HashMap<String, Pending>> {
    static P: OnceLock<Mutex<HashMap<String, Pending>>> = OnceLock::new();
    P.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Ships run `id` to every other shard and returns this shard's shuffle context.
pub fn launch(id: &str, topo: &Topology, wire: Vec<u8>) -> ShuffleCtx {
    pending().insert(
        id.to_owned(),
        Pending {
            remaining: topo.shards.len() - 1,
            local: None,
        },
    );
    let m = Message::Run(RunOrder {
        id: id.to_owned(),
        initiator: topo.me as u32,
        shards: topo.ids(),
        ranges: topo
            .ranges()
            .into_iter()
            .map(|(a, b, i)| (a, b, i as u32))
            .collect(),
        wire,
    });
    for (i, s) in topo.shards.iter().enumerate() {
        if i != topo.me && !bus::send(Some(&s.id), &m) {
            redis_module::logging::log_warning(format!(
                "Gearshift: could not send execution {id} to shard {}",
                s.id
            ));
        }
    }
    shuffle_ctx(id, topo.me, topo.me, topo.ids(), Arc::clone(&topo.slots))
}

/// The initiator's own part of `id` ended: completes the run now if every other shard
/// already reported, else when the last one does, or with 1.2's max-idle error when one
/// stays silent for `ExecutionMaxIdleTime`. Never blocks the calling worker.
pub fn local_done(id: &str, out: ExecutionOutput, complete: Complete) {
    let mut p = pending();
    match p.get_mut(id) {
        Some(run) if run.remaining > 0 => {
            run.local = Some((out, complete, Instant::now() + super::wait_bound()));
            drop(p);
            start_sweeper();
        }
        _ => {
            p.remove(id);
            drop(p);
            transport::forget(exec_key(id));
            complete(out);
        }
    }
}

/// Forgets run `id` whose local part never started.
pub fn abandon(id: &str) {
    pending().remove(id);
    transport::forget(exec_key(id));
}

/// A shard reported its part of `id` done (main thread): the last report completes the
/// run, on a worker.
pub fn on_done(id: &str, _sender: &str) {
    let mut p = pending();
    let Some(run) = p.get_mut(id) else { return };
    run.remaining = run.remaining.saturating_sub(1);
    if run.remaining > 0 || run.local.is_none() {
        return;
    }
    let Some((out, complete, _)) = p.remove(id).and_then(|r| r.local) else {
        return;
    };
    drop(p);
    transport::forget(exec_key(id));
    if let Some(state) = crate::state::get() {
        state.pool.spawn_fn(move || complete(out));
    }
}

/// One thread completes runs and questions whose shards stayed silent past their deadline.
pub(crate) fn start_sweeper() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("gearshift-sweep".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(50));
                sweep(Instant::now());
                super::ask::sweep(Instant::now());
            });
        if let Err(e) = spawned {
            redis_module::logging::log_warning(format!("Gearshift: no sweeper thread: {e}"));
        }
    });
}

fn sweep(now: Instant) {
    let expired: Vec<(String, ExecutionOutput, Complete)> = {
        let mut p = pending();
        let ids: Vec<String> = p
            .iter()
            .filter(|(_, r)| r.local.as_ref().is_some_and(|l| l.2 <= now))
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| {
                let (out, complete, _) = p.remove(&id)?.local?;
                Some((id, out, complete))
            })
            .collect()
    };
    for (id, mut out, complete) in expired {
        transport::forget(exec_key(&id));
        const IDLE: &str = "Execution max idle reached";
        if !out.errors.iter().any(|e| e == IDLE) {
            out.errors.push(IDLE.into());
        }
        complete(out);
    }
}

/// Another shard asks this one to run its part of an execution (main thread: hand it to
/// a worker).
pub fn on_run(order: RunOrder) {
    let Some(state) = crate::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || {
        crate::ffi::guard_worker(
            || run_part(order),
            |p| {
                redis_module::logging::log_warning(format!(
                    "Gearshift: remote execution panicked: {p}"
                ))
            },
        )
    });
}

fn run_part(order: RunOrder) {
    let RunOrder {
        id,
        initiator,
        shards,
        ranges,
        wire,
    } = order;
    let initiator = initiator as usize;
    let Some(state) = crate::state::get() else {
        return;
    };
    let initiator_id = shards.get(initiator).cloned().unwrap_or_default();
    let report_done = {
        let (id, to) = (id.clone(), initiator_id.clone());
        move || {
            transport::forget(exec_key(&id));
            bus::send(Some(&to), &Message::Done { id });
        }
    };
    // A shard that has not run a script yet may not know the topology.
    if super::current().is_none() {
        super::refresh();
    }
    let my_id = super::shard_id();
    let Some(me) = shards.iter().position(|s| *s == my_id) else {
        redis_module::logging::log_warning(format!(
            "Gearshift: execution {id} names shards without this one ({my_id})"
        ));
        return report_done();
    };
    let req = match gearpy::cluster::run_from_wire(&wire) {
        Ok(r) => r,
        Err(e) => {
            redis_module::logging::log_warning(format!(
                "Gearshift: could not rebuild execution {id}: {e}"
            ));
            return report_done();
        }
    };
    let ranges: Vec<(u16, u16, usize)> = ranges
        .into_iter()
        .map(|(a, b, i)| (a, b, i as usize))
        .collect();
    let ctx = shuffle_ctx(
        &id,
        me,
        initiator,
        shards,
        Arc::new(SlotMap::from_ranges(&ranges)),
    );
    let entry = Entry::new(id, &req.plan);
    let source = crate::scripts::source_for(req.reader, &req.plan);
    let control = ExecControl::new();
    let host = ControlledRuntime(Arc::clone(&control));
    let on_done = {
        let entry = Arc::clone(&entry);
        Box::new(move |out: ExecutionOutput| {
            entry.finish(out);
            report_done();
        })
    };
    match Execution::start(
        source,
        &req.plan,
        Some(&host),
        Some(&ctx),
        &state.pool,
        &ExecConfig::default(),
        on_done,
    ) {
        Ok(handle) => {
            entry.started(handle, Some(control));
            state
                .registry
                .keep(entry, state.config.int("MaxExecutions"));
        }
        Err(e) => redis_module::logging::log_warning(format!(
            "Gearshift: remote execution failed to start: {e}"
        )),
    }
}
