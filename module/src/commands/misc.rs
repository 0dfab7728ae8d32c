//! Small commands: RG.INFOCLUSTER (standalone), RG.DUMPPLUGINS, legacy stubs.

use redis_module::{Context, RedisResult, RedisString};

use super::respond;
use crate::ffi::guard;
use crate::ffi::replies::Reply;

/// `RG.INFOCLUSTER` on a standalone server.
pub fn infocluster(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| respond(ctx, Reply::Bulk(b"no cluster mode".to_vec())))
}

/// `RG.DUMPPLUGINS`: the Python plugin, as clients probe it.
pub fn dumpplugins(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let plugin = Reply::Array(vec![
            Reply::Bulk(b"GearsPythonPlugin".to_vec()),
            Reply::Int(10000),
        ]);
        respond(ctx, Reply::Array(vec![plugin]))
    })
}

/// `RG.PYEXECUTEREMOTE` (legacy).
pub fn pyexecuteremote(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        respond(
            ctx,
            Reply::Bulk(b"Execute remote is not longer supported".to_vec()),
        )
    })
}

/// `RG.PYFREEINTERPRETER` (legacy).
pub fn pyfreeinterpreter(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        respond(
            ctx,
            Reply::Bulk(b"Free interpreter is not longer supported".to_vec()),
        )
    })
}
