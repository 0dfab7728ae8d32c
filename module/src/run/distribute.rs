//! Registrations whose plan crosses shards (REFERENCE §7, §12.8): a run a registration
//! triggers here (a CommandReader trigger or hook, a KeysReader event or hooked command)
//! runs as a distributed execution, started on every shard and collected here. Which runs
//! are distributed is decided here; shipping them is the cluster layer's, reached through
//! the slot `lib.rs` fills at load (`install`). Depends on `model` and `redis`.

use std::sync::OnceLock;

use engine::exec::ExecutionOutput;
use engine::plan::StepSpec;
use engine::shuffle::ShuffleCtx;

use crate::model::registrations::{Mode, Registration};

/// Completes a distributed run once every shard's part ended.
pub type Complete = Box<dyn FnOnce(ExecutionOutput) + Send>;

/// The record every shard's reader yields (`[trigger, args...]`), or none (nothing).
pub type Record = Option<Vec<Vec<u8>>>;

/// What the cluster layer does for distributed registration runs.
pub struct Distributor {
    /// Ships run `id` of the registration to every other shard, whose reader yields
    /// `record` (none: nothing); returns this shard's shuffle context.
    pub launch: fn(&str, &Registration, Record) -> Option<ShuffleCtx>,
    /// This shard's part of run `id` ended: `complete` runs once every shard's did
    /// (bounded by the idle time).
    pub local_done: fn(&str, ExecutionOutput, Complete),
    /// Run `id`'s local part never started.
    pub abandon: fn(&str),
    /// A blocking run replied: its parts on the other shards are dropped.
    pub drop_parts: fn(&str),
}

static SLOT: OnceLock<Distributor> = OnceLock::new();

/// Installs the cluster layer's distributor (once, at load).
pub fn install(d: Distributor) {
    let _ = SLOT.set(d);
}

/// Whether runs of `reg` are distributed: `async` mode in a cluster, with a step that
/// crosses shards. A KeysReader event is read on the shard where it fired only (the other
/// shards' readers yield nothing), so only a repartition changes its result there; a
/// CommandReader trigger or hook is read on every shard, so a collect does too.
pub fn crosses_shards(reg: &Registration) -> bool {
    if reg.mode != Mode::Async || crate::model::topology::current().is_none() {
        return false;
    }
    let every_shard_reads = reg.trigger.is_some() || reg.hook.is_some();
    reg.plan.steps.iter().any(|s| match s {
        StepSpec::Repartition => true,
        StepSpec::Collect => every_shard_reads,
        _ => false,
    })
}

/// A distributed run this shard started.
pub struct Launched {
    id: String,
    pub shuffle: ShuffleCtx,
}

/// Starts distributing run `id` of `reg` when it crosses shards (`crosses_shards`).
pub fn launch(id: &str, reg: &Registration, record: Record) -> Option<Launched> {
    if !crosses_shards(reg) {
        return None;
    }
    let d = SLOT.get()?;
    (d.launch)(id, reg, record).map(|shuffle| Launched {
        id: id.to_owned(),
        shuffle,
    })
}

impl Launched {
    /// The local part ended: `complete` runs when every shard's did.
    pub fn local_done(&self, out: ExecutionOutput, complete: Complete) {
        finish(&self.id, out, complete);
    }

    /// The local part could not start.
    pub fn abandon(&self) {
        if let Some(d) = SLOT.get() {
            (d.abandon)(&self.id);
        }
    }
}

/// The local part of distributed run `id` ended (see `Launched::local_done`).
pub fn finish(id: &str, out: ExecutionOutput, complete: Complete) {
    match SLOT.get() {
        Some(d) => (d.local_done)(id, out, complete),
        None => complete(out),
    }
}

/// Drops the other shards' parts of run `id` (a blocking run replied).
pub fn drop_parts(id: &str) {
    if let Some(d) = SLOT.get() {
        (d.drop_parts)(id);
    }
}
