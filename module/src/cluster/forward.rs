//! A flow's `execute()` on a key another shard owns runs on that shard.
//!
//! In a cluster, Redis refuses commands on keys this shard does not own ("Attempted to
//! access a non local key"), which 1.2 returns as the error. Gearshift forwards such a
//! command to the owner over the bus and waits (bounded by `ExecutionMaxIdleTime`) for its
//! reply, so flows such as the walkthrough's event-driven maximum work on a cluster. The
//! command runs there as the same ACL user (`crate::redis::access`). Only
//! threads that took the Redis lock for this call can wait: where the lock is already held
//! (sync runs, `atomic()` blocks) the error is returned, as in 1.2.

use std::sync::mpsc;
use std::time::Duration;

use engine::shuffle::key_hash_slot;
use gearpy::services::CallReply;
use redis_module::Context;

use super::ask::{self, Query};
use crate::redis::access::RunAs;

const NON_LOCAL: &str = "Attempted to access a non local key in a cluster node";

/// Whether `r` is Redis's refusal of a key owned by another shard.
pub fn is_non_local(r: &CallReply) -> bool {
    matches!(r, CallReply::Error(e) if e.contains(NON_LOCAL))
}

/// The node owning the first key of command `args` (asked with `COMMAND GETKEYS` on
/// `ctx`, whose lock the caller holds), if another shard owns it.
pub fn owner(ctx: &Context, args: &[Vec<u8>]) -> Option<String> {
    let topo = crate::model::topology::current()?;
    let mut argv: Vec<&[u8]> = vec![b"GETKEYS"];
    argv.extend(args.iter().map(|a| a.as_slice()));
    let keys = crate::redis::ffi::acl::own_call(|| ctx.call("COMMAND", argv.as_slice())).ok()?;
    let redis_module::RedisValue::Array(keys) = keys else {
        return None;
    };
    let first = match keys.first()? {
        redis_module::RedisValue::SimpleString(s) | redis_module::RedisValue::BulkString(s) => {
            s.as_bytes().to_vec()
        }
        redis_module::RedisValue::StringBuffer(b) => b.clone(),
        redis_module::RedisValue::BulkRedisString(s) => s.as_slice().to_vec(),
        _ => return None,
    };
    let owner = topo.slots.owner_of_slot(key_hash_slot(&first));
    (owner != topo.me).then(|| topo.shards[owner].id.clone())
}

/// Runs `args` on shard `owner` as `run_as` and waits for its reply (the caller holds no
/// lock).
pub fn forward(owner: String, run_as: RunAs, args: &[Vec<u8>], timeout: Duration) -> CallReply {
    let (tx, rx) = mpsc::channel();
    ask::ask(
        vec![owner.clone()],
        Query::Call(run_as, args.to_vec()),
        timeout,
        Box::new(move |answers| {
            let _ = tx.send(answers);
        }),
    );
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(answers) => answers
            .into_iter()
            .next()
            .map(|(_, r)| crate::model::reply::to_call_reply(r))
            .unwrap_or_else(|| CallReply::Error(format!("ERR shard {owner} did not answer"))),
        Err(_) => CallReply::Error(format!("ERR shard {owner} did not answer")),
    }
}

/// The slot `redis::call` forwards through (installed at load by `lib.rs`).
pub fn forwarder() -> crate::redis::call::Forwarder {
    crate::redis::call::Forwarder {
        owner: |ctx, reply, args| {
            if is_non_local(reply) {
                owner(ctx, args)
            } else {
                None
            }
        },
        forward: |owner, run_as, args| {
            forward(owner, run_as, args, crate::model::state::wait_bound())
        },
    }
}
