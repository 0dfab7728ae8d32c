//! The Gearshift Redis module (`rg`): RedisGears 1.2 commands on top of the engine and the
//! Python layer. This file only registers the module; everything else lives in:
//!
//! - `ffi`: the one panic trampoline, raw scan and reply helpers (the crate's `unsafe`).
//! - `state`: the single owner of module-wide state (worker pool, config).
//! - `config`: module arguments and the extra config dictionary.
//! - `host`: `HostServices` for the Python layer (execute, log, config).
//! - `commands`: one file per RG.* command.
//! - `readers`: engine sources that read Redis (KeysReader).
//! - `reply`: engine results → RESP replies, with 1.2's rules.
#![deny(unsafe_code)]

pub mod commands;
pub mod config;
pub mod ffi;
pub mod host;
pub mod readers;
pub mod reply;
pub mod state;

#[cfg(not(test))]
mod registration {
    use redis_module::{redis_module, Context, RedisString, Status};

    use crate::commands::pyexecute;

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        crate::ffi::guard_status(ctx, || crate::state::init(ctx, args))
    }

    #[cfg(not(feature = "mimalloc"))]
    redis_module! {
        name: "rg",
        version: 10213,
        allocator: (redis_module::alloc::RedisAlloc, redis_module::alloc::RedisAlloc),
        data_types: [],
        init: init,
        commands: [
            ["rg.pyexecute", pyexecute::command, "readonly", 0, 0, 0, ""],
        ],
    }

    #[cfg(feature = "mimalloc")]
    redis_module! {
        name: "rg",
        version: 10213,
        allocator: (mimalloc::MiMalloc, mimalloc::MiMalloc),
        data_types: [],
        init: init,
        commands: [
            ["rg.pyexecute", pyexecute::command, "readonly", 0, 0, 0, ""],
        ],
    }
}
