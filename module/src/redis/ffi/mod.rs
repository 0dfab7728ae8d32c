//! Everything that touches Redis through raw pointers, and the one trampoline every entry
//! from Redis goes through: a panic becomes an error reply (or a failed load), never an
//! abort of redis-server. This is the module's named `unsafe` area.
#![allow(unsafe_code)]

pub mod acl;
pub mod busy;
pub mod cluster;
pub mod command;
pub mod configs;
pub mod filter;
pub mod log;
pub mod memory;
pub mod rdb;
pub mod replies;
pub mod scan;
pub mod timeev;

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{RedisResult, Status};

pub(crate) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs a command body; a panic becomes an error. (`command::run`, which wraps every
/// handler in the command table, is the boundary that writes replies; this inner catch only
/// keeps a handler's panic message close to it.)
pub fn guard(f: impl FnOnce() -> RedisResult) -> RedisResult {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(command::error(format!(
            "Gearshift internal error: {}",
            panic_text(p)
        )))
    })
}

/// Runs module initialisation; an error or panic is logged and fails the load.
pub fn guard_status(f: impl FnOnce() -> Result<(), String>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(e)) => {
            log::warning(&format!("Gearshift failed to load: {e}"));
            Status::Err
        }
        Err(p) => {
            log::warning(&format!(
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
