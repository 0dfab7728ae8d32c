//! Small commands: RG.INFOCLUSTER, RG.REFRESHCLUSTER, RG.DUMPPLUGINS, legacy stubs.

use std::collections::HashMap;
use std::time::Duration;

use redis_module::{Context, RedisResult, RedisString, RedisValue};

use super::respond;
use crate::cluster::ask::{self, Query};
use crate::model::state::ModuleState;
use crate::model::topology::Topology;
use crate::redis::ffi::replies::{block, bulk, reply_blocked, Reply};

/// `RG.INFOCLUSTER`: `no cluster mode`, or this shard's id and every master (§1.3), each
/// with its run id. The other shards' run ids are asked over the bus (the client blocks for
/// at most a second); a shard that does not answer, or a caller that cannot block (MULTI,
/// Lua), shows `runid` null, as 1.2 does for a shard it has not reached yet.
pub fn infocluster(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let topo = crate::redis::lock::with_lock_held(ctx, crate::model::topology::refresh);
    let Some(t) = topo else {
        return respond(ctx, Reply::Bulk(b"no cluster mode".to_vec()));
    };
    let mine = HashMap::from([(t.my_id.clone(), crate::model::topology::run_id())]);
    if super::cannot_block(ctx) || t.shards.len() < 2 {
        return respond(ctx, infocluster_reply(&t, &mine));
    }
    let bc = block(ctx);
    let bound = crate::model::state::wait_bound().min(Duration::from_secs(1));
    crate::redis::lock::with_lock_held(ctx, || {
        ask::ask_others(
            Query::RunId,
            bound,
            Box::new(move |answers| {
                let mut run_ids = mine;
                for (node, reply) in answers {
                    if let Reply::Bulk(id) = reply {
                        run_ids.insert(node, String::from_utf8_lossy(&id).into_owned());
                    }
                }
                reply_blocked(bc, &infocluster_reply(&t, &run_ids));
            }),
        )
    });
    Ok(RedisValue::NoReply)
}

/// RG.INFOCLUSTER's reply for topology `t`, with the run ids known (by node id).
fn infocluster_reply(t: &Topology, run_ids: &HashMap<String, String>) -> Reply {
    let shards = t
        .shards
        .iter()
        .map(|s| {
            let min = s.ranges.iter().map(|r| r.0).min().unwrap_or(0);
            let max = s.ranges.iter().map(|r| r.1).max().unwrap_or(0);
            Reply::Array(vec![
                bulk("id"),
                bulk(&s.id),
                bulk("ip"),
                bulk(&s.ip),
                bulk("port"),
                Reply::Int(s.port),
                bulk("unixSocket"),
                bulk("None"),
                bulk("runid"),
                run_ids.get(&s.id).map_or(Reply::Null, |r| bulk(r)),
                bulk("minHslot"),
                Reply::Int(i64::from(min)),
                bulk("maxHslot"),
                Reply::Int(i64::from(max)),
                bulk("pendingMessages"),
                Reply::Int(0),
            ])
        })
        .collect();
    Reply::Array(vec![
        bulk("MyId"),
        bulk(&t.my_id),
        bulk("MyRunId"),
        bulk(&crate::model::topology::run_id()),
        Reply::Array(shards),
    ])
}

/// `RG.DUMPPLUGINS`: the Python plugin, as clients probe it.
pub fn dumpplugins(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let plugin = Reply::Array(vec![
        Reply::Bulk(b"GearsPythonPlugin".to_vec()),
        Reply::Int(10000),
    ]);
    respond(ctx, Reply::Array(vec![plugin]))
}

/// `RG.PYEXECUTEREMOTE` (legacy).
pub fn pyexecuteremote(
    ctx: &Context,
    _state: &ModuleState,
    _args: Vec<RedisString>,
) -> RedisResult {
    respond(
        ctx,
        Reply::Bulk(b"Execute remote is not longer supported".to_vec()),
    )
}

/// `RG.PYFREEINTERPRETER` (legacy).
pub fn pyfreeinterpreter(
    ctx: &Context,
    _state: &ModuleState,
    _args: Vec<RedisString>,
) -> RedisResult {
    respond(
        ctx,
        Reply::Bulk(b"Free interpreter is not longer supported".to_vec()),
    )
}

/// `RG.PYSTATS`: Python allocator statistics (Python allocates through Redis, as in 1.2's
/// `OverridePythonAllocators 1`).
pub fn pystats(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let f = |k: &str| Reply::Bulk(k.as_bytes().to_vec());
    let (total, peak, current) = gearpy::pymem::stats();
    respond(
        ctx,
        Reply::Array(vec![
            f("TotalAllocated"),
            Reply::Int(total),
            f("PeakAllocated"),
            Reply::Int(peak),
            f("CurrAllocated"),
            Reply::Int(current),
        ]),
    )
}

/// `RG.REFRESHCLUSTER`: re-reads the topology (`CLUSTER SLOTS`, `CLUSTER MYID`); `OK` as 1.2.
pub fn refreshcluster(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    crate::redis::lock::with_lock_held(ctx, crate::model::topology::refresh);
    respond(ctx, Reply::Status("OK".into()))
}

/// `RG.NETWORKTEST`: `OK`, as 1.2.
pub fn networktest(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    respond(ctx, Reply::Status("OK".into()))
}
