//! Distributed runs (REFERENCE §7): the initiator ships the run to every shard, each shard
//! runs it on its own keys, `collect`/`repartition` move records over the bus, and the
//! initiator finishes once every shard reported its part done (bounded by
//! `ExecutionMaxIdleTime`: a silent shard ends the run with 1.2's max-idle error).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
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

fn idle_timeout() -> Duration {
    let ms = crate::state::get()
        .map(|s| s.config.int("ExecutionMaxIdleTime"))
        .unwrap_or(5000);
    Duration::from_millis(ms.max(1) as u64)
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
        idle_timeout: idle_timeout(),
        pool: frame_pool(),
        foreign: Some(Arc::new(gearpy::PyColumnDecoder)),
    }
}

/// Shards still to report for each run this shard initiated.
struct Waiting {
    remaining: Mutex<HashMap<String, usize>>,
    changed: Condvar,
}

fn waiting() -> &'static Waiting {
    static W: OnceLock<Waiting> = OnceLock::new();
    W.get_or_init(|| Waiting {
        remaining: Mutex::new(HashMap::new()),
        changed: Condvar::new(),
    })
}

/// Ships run `id` to every other shard and returns this shard's shuffle context.
pub fn launch(id: &str, topo: &Topology, wire: Vec<u8>) -> ShuffleCtx {
    let others = topo.shards.len() - 1;
    if let Ok(mut w) = waiting().remaining.lock() {
        w.insert(id.to_owned(), others);
    }
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

/// Waits until every other shard finished its part of `id` (bounded); adds 1.2's max-idle
/// error when one stays silent. Called once the initiator's own part is done.
pub fn await_peers(id: &str, out: &mut ExecutionOutput) {
    let w = waiting();
    let deadline = Instant::now() + idle_timeout();
    let mut map = w.remaining.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let left = map.get(id).copied().unwrap_or(0);
        if left == 0 {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            out.errors.push("Execution max idle reached".into());
            break;
        }
        map = w
            .changed
            .wait_timeout(map, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    map.remove(id);
    drop(map);
    transport::forget(exec_key(id));
}

/// A shard reported its part of `id` done (main thread).
pub fn on_done(id: &str, _sender: &str) {
    let w = waiting();
    if let Ok(mut map) = w.remaining.lock() {
        if let Some(n) = map.get_mut(id) {
            *n = n.saturating_sub(1);
        }
    }
    w.changed.notify_all();
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
