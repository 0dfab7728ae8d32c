//! The Gearshift Redis module (`rg`): RedisGears 1.2 commands on top of the engine and the
//! Python layer. This file only registers the module; everything else lives in:
//!
//! - `ffi`: the one panic trampoline, raw scan, reply and ACL helpers (the crate's `unsafe`).
//! - `acl`: who user code runs as (the client's ACL user) and what it may read.
//! - `cluster`: the topology, bus messages between shards and distributed runs.
//! - `state`: the single owner of module-wide state (worker pool, config).
//! - `config`: module arguments and the extra config dictionary.
//! - `executions`: the registry of kept executions (ids, statuses, results).
//! - `streams`: StreamReader registrations (consumer group batches, failure policies).
//! - `timers`: registerTE time events on the main thread.
//! - `hooks`: CommandReader command hooks (`hook=`, `call_next`).
//! - `linked`: KeysReader `commands=` runs linked to the command (`override_reply`).
//! - `info`: INFO rg sections and Gearshift's counters.
//! - `host`: `HostServices` for the Python layer (execute, log, config).
//! - `commands`: one file per RG.* command.
//! - `readers`: engine sources that read Redis (KeysReader).
//! - `registrations`, `events`: register() flows and the keyspace events that run them.
//! - `reply`: engine results → RESP replies, with 1.2's rules.
//! - `requirements`: REQUIREMENTS installed with pip into a per-server venv.
//! - `persist`: sessions through RDB, AOF and replication (as source, not bytecode).
//! - `scripts`, `sessions`: running RG.PYEXECUTE scripts; sessions owning registrations.
#![deny(unsafe_code)]

pub mod acl;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod events;
pub mod executions;
pub mod ffi;
pub mod hooks;
pub mod host;
pub mod info;
pub mod linked;
pub mod persist;
pub mod readers;
pub mod registrations;
pub mod reply;
pub mod requirements;
pub mod scripts;
pub mod sessions;
pub mod state;
pub mod streams;
pub mod time_events;
pub mod timers;

#[cfg(not(test))]
mod registration {
    use redis_module::{redis_module, Context, RedisString, Status};

    use crate::commands::{
        config, executions, internal, misc, pyexecute, registrations, sessions, trigger,
    };
    use crate::ffi::rdb::GEARSHIFT_AUX;
    use crate::ffi::timeev::TIME_EVENT_TYPE;

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        crate::ffi::guard_status(ctx, || {
            crate::state::init(ctx, args)?;
            crate::ffi::filter::install(ctx)?;
            crate::ffi::cluster::install(ctx)?;
            // Replaces the crate's default INFO callback with ours.
            redis_module::raw::register_info_function(ctx.ctx, Some(crate::info::info_callback));
            Ok(())
        })
    }

    /// One registration, instantiated with the allocator chosen at build time.
    macro_rules! gearshift_module {
        ($alloc:expr, $alloc_ty:ty) => {
            redis_module! {
                name: "rg",
                version: 10213,
                allocator: ($alloc_ty, $alloc),
                data_types: [GEARSHIFT_AUX, TIME_EVENT_TYPE],
                init: init,
                commands: [
                    ["rg.pyexecute", pyexecute::command, "readonly", 0, 0, 0, ""],
                    ["rg.getresults", executions::getresults, "readonly", 0, 0, 0, ""],
                    ["rg.getresultsblocking", executions::getresultsblocking, "readonly", 0, 0, 0, ""],
                    ["rg.dumpexecutions", executions::dumpexecutions, "readonly", 0, 0, 0, ""],
                    ["rg.dropexecution", executions::dropexecution, "readonly", 0, 0, 0, ""],
                    ["rg.abortexecution", executions::abortexecution, "readonly", 0, 0, 0, ""],
                    ["rg.getexecution", executions::getexecution, "readonly", 0, 0, 0, ""],
                    ["rg.configget", config::configget, "readonly", 0, 0, 0, ""],
                    ["rg.configset", config::configset, "readonly", 0, 0, 0, ""],
                    ["rg.infocluster", misc::infocluster, "readonly", 0, 0, 0, ""],
                    ["rg.refreshcluster", misc::refreshcluster, "readonly", 0, 0, 0, ""],
                    ["rg.networktest", misc::networktest, "readonly", 0, 0, 0, ""],
                    ["rg.dumpplugins", misc::dumpplugins, "readonly", 0, 0, 0, ""],
                    ["rg.pyexecuteremote", misc::pyexecuteremote, "readonly", 0, 0, 0, ""],
                    ["rg.pyfreeinterpreter", misc::pyfreeinterpreter, "readonly", 0, 0, 0, ""],
                    ["rg.dumpregistrations", registrations::dumpregistrations, "readonly", 0, 0, 0, ""],
                    ["rg.unregister", registrations::unregister, "readonly", 0, 0, 0, ""],
                    ["rg.pydumpsessions", sessions::pydumpsessions, "readonly", 0, 0, 0, ""],
                    ["rg.pyprofile", sessions::pyprofile, "readonly", 0, 0, 0, ""],
                    ["rg.trigger", trigger::trigger, "readonly", 0, 0, 0, ""],
                    ["rg.triggeronkey", trigger::trigger, "readonly", 2, 2, 1, ""],
                    ["rg.clearregistrationsstats", registrations::clearregistrationsstats, "readonly", 0, 0, 0, ""],
                    ["rg.pauseregistrations", registrations::pauseregistrations, "readonly", 0, 0, 0, ""],
                    ["rg.unpauseregistrations", registrations::unpauseregistrations, "readonly", 0, 0, 0, ""],
                    ["rg.pystats", misc::pystats, "readonly", 0, 0, 0, ""],
                    ["rg.pydumpreqs", misc::pydumpreqs, "readonly", 0, 0, 0, ""],
                    ["rg.innerregister", internal::innerregister, "write", 0, 0, 0, ""],
                    ["rg.innerunregister", internal::innerunregister, "write", 0, 0, 0, ""],
                    ["rg.innertimeevent", internal::innertimeevent, "write deny-oom", 1, 1, 1, ""],
                ],
                event_handlers: [
                    [@ALL @MISSED: crate::events::on_keyspace_event],
                    [@STREAM: crate::streams::on_stream_event],
                ],
            }
        };
    }

    // Redis's allocator by default, so INFO memory and maxmemory see the engine (DESIGN §9).
    #[cfg(not(feature = "mimalloc"))]
    gearshift_module!(
        redis_module::alloc::RedisAlloc,
        redis_module::alloc::RedisAlloc
    );

    #[cfg(feature = "mimalloc")]
    gearshift_module!(mimalloc::MiMalloc, mimalloc::MiMalloc);
}
