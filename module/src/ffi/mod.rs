//! Everything that touches Redis through raw pointers, and the one trampoline every entry
//! from Redis goes through: a panic becomes an error reply (or a failed load), never an
//! abort of redis-server. This is the module's named `unsafe` area.
#![allow(unsafe_code)]

pub mod acl;
pub mod cluster;
pub mod configs;
pub mod filter;
pub mod rdb;
pub mod replies;
pub mod scan;
pub mod timeev;

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{Context, RedisError, RedisResult, Status};

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs a command body; a panic becomes an error reply.
pub fn guard(f: impl FnOnce() -> RedisResult) -> RedisResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(RedisError::String(format!(
            "Gearshift internal error: {}",
            panic_text(p)
        )))
    })
}

/// Runs module initialisation; an error or panic is logged and fails the load.
pub fn guard_status(ctx: &Context, f: impl FnOnce() -> Result<(), String>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(e)) => {
            ctx.log_warning(&format!("Gearshift failed to load: {e}"));
            Status::Err
        }
        Err(p) => {
            ctx.log_warning(&format!(
                "Gearshift failed to load (panic): {}",
                panic_text(p)
            ));
            Status::Err
        }
    }
}

/// Runs a closure on a worker thread; a panic is contained (and reported by `on_panic`).
pub fn guard_worker(f: impl FnOnce(), on_panic: impl FnOnce(String)) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        on_panic(panic_text(p));
    }
}
