//! Distributed runs of registrations (REFERENCE §7, §12.8): a registration's plan that
//! crosses shards (`run::distribute`) runs on every shard under the firing shard's
//! execution id. The order names the registration (installed on every shard under one id)
//! and the record each shard's reader yields: a CommandReader trigger's arguments, or
//! nothing for a KeysReader event, whose key is read on the firing shard only. Waiting for
//! the parts, heartbeats and the idle bound are `dist`'s. Depends on `dist`, `run`,
//! `model` and `redis`.

use engine::batch::Batch;
use engine::shuffle::ShuffleCtx;
use engine::Datum;

use super::bus::Message;
use super::dist::{self, Part};
use crate::model::executions::Entry;
use crate::model::registrations::Registration;
use crate::redis::access;
use crate::run::readers::ready::ReadySource;
pub use engine::wire::bus::RegisteredOrder;

/// Ships run `id` of `reg` to every other shard (their readers yield `record`, or nothing)
/// and returns this shard's shuffle context; `None` outside a cluster.
pub fn launch(id: &str, reg: &Registration, record: Option<Vec<Vec<u8>>>) -> Option<ShuffleCtx> {
    let topo = crate::model::topology::current()?;
    if topo.shards.len() < 2 {
        return None;
    }
    let m = Message::RunRegistered(RegisteredOrder {
        id: id.to_owned(),
        initiator: topo.me as u32,
        shards: topo.ids(),
        ranges: dist::ranges_of(&topo),
        registration: reg.id.clone(),
        record,
    });
    Some(dist::launch_with(id, &topo, &m))
}

/// Another shard asks this one to run its part of a registration's run (main thread:
/// hand it to a worker).
pub fn on_run(order: RegisteredOrder) {
    let Some(state) = crate::model::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || {
        crate::redis::ffi::trampoline::callback("a remote registered execution", (), || {
            let part = Part {
                id: &order.id,
                shards: &order.shards,
                ranges: &order.ranges,
                initiator: order.initiator,
                // A registration's run is never nested.
                depth: 0,
            };
            dist::run_remote(&part, |me| start(&order, &part, me));
        })
    });
}

/// The reader of this shard's part: the order's record, or nothing.
fn source_of(record: &Option<Vec<Vec<u8>>>) -> ReadySource {
    match record {
        Some(items) => {
            let items = items
                .iter()
                .map(|a| Datum::text_or_bytes(a.clone()))
                .collect();
            ReadySource::new(Batch::datums(vec![Datum::List(items)]))
        }
        None => ReadySource::empty(),
    }
}

fn start(order: &RegisteredOrder, part: &Part<'_>, me: usize) -> Result<(), String> {
    let state = crate::model::state::get().ok_or("Gearshift is not initialised")?;
    let reg = state
        .registrations
        .get(&order.registration)
        .ok_or_else(|| {
            format!(
                "registration {} does not exist on this shard",
                order.registration
            )
        })?;
    let entry = Entry::new_registered(order.id.clone(), &reg.shape);
    let source = access::source(Box::new(source_of(&order.record)), &reg.run_as);
    dist::start_local_part(part, me, entry, source, &reg.plan, &reg.run_as)
}
