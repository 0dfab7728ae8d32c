//! Small commands: RG.INFOCLUSTER, RG.REFRESHCLUSTER, RG.DUMPPLUGINS, legacy stubs.

use redis_module::{Context, RedisResult, RedisString};

use super::respond;
use crate::model::state::ModuleState;
use crate::redis::ffi::replies::Reply;

/// `RG.INFOCLUSTER`: `no cluster mode`, or this shard's id and every master (§1.3).
pub fn infocluster(ctx: &Context, _state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let topo = crate::redis::lock::with_lock_held(ctx, crate::model::topology::refresh);
    let Some(t) = topo else {
        return respond(ctx, Reply::Bulk(b"no cluster mode".to_vec()));
    };
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let run_id = crate::model::topology::run_id();
    let shards = t
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
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
                if i == t.me {
                    bulk(&run_id)
                } else {
                    Reply::Null
                },
                bulk("minHslot"),
                Reply::Int(i64::from(min)),
                bulk("maxHslot"),
                Reply::Int(i64::from(max)),
                bulk("pendingMessages"),
                Reply::Int(0),
            ])
        })
        .collect();
    respond(
        ctx,
        Reply::Array(vec![
            bulk("MyId"),
            bulk(&t.my_id),
            bulk("MyRunId"),
            bulk(&run_id),
            Reply::Array(shards),
        ]),
    )
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

/// `RG.PYSTATS`: Python allocator statistics (Gearshift does not route Python's allocator
/// through Redis, so they are zero).
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

/// `RG.PYDUMPREQS`: the 18-element metadata of each installed requirement.
pub fn pydumpreqs(ctx: &Context, state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let path = state.requirements.venv_dir();
    let b = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let rows = state
        .requirements
        .installed()
        .iter()
        .map(|r| {
            Reply::Array(vec![
                b("GearReqVersion"),
                Reply::Int(2),
                b("Name"),
                b(&r.name),
                b("IsDownloaded"),
                b("yes"),
                b("IsInstalled"),
                b("yes"),
                b("CompiledOs"),
                b(std::env::consts::OS),
                b("Wheels"),
                Reply::Array(Vec::new()),
                b("Path"),
                b(&path),
                b("RefCount"),
                Reply::Int(r.sessions as i64),
                b("IsInReqDictionary"),
                b("yes"),
            ])
        })
        .collect();
    respond(ctx, Reply::Array(rows))
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
