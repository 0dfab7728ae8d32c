//! The Gearshift Redis module (`rg`): RedisGears 1.2 commands on top of the engine and the
//! Python layer. This file is the composition root: it registers the commands, loads the
//! module and fills the slots through which lower layers call up. The layers, bottom to
//! top (docs/architecture.md; `scripts/deps.py` enforces that no file imports a layer above
//! its own and that no files import each other in a cycle):
//!
//! - `redis`: raw FFI (`redis::ffi`, the crate's only `unsafe`, and the panic trampoline),
//!   the Redis lock and calls, ACL identities, timers, limits, the configuration.
//! - `model`: `ModuleState` and its types (executions and ids, topology, registrations,
//!   sessions, stream registrations, requirements) and 1.2's reply rules.
//! - `run`: running flows on this shard (readers, events, hooks, linked commands, streams,
//!   time events, the one inline run).
//! - `cluster`: the bus protocol, asking and answering other shards, distributed runs,
//!   forwarding; the app is reached through `cluster::handler::ShardHandler`.
//! - `app`: loading, scripts, installing sessions, persistence, the local halves of
//!   cluster-wide commands, the Python layer's services, INFO.
//! - `commands`: one file per group of RG.* commands.
#![deny(unsafe_code)]

pub mod app;
pub mod cluster;
pub mod commands;
pub mod model;
pub mod redis;
pub mod run;

#[cfg(not(test))]
mod registration {
    use redis_module::{redis_module, Context, RedisString, Status};

    use crate::commands::{
        config, executions, internal, misc, pyexecute, registrations, requirements, sessions,
        trigger,
    };
    use crate::redis::ffi::rdb::{GEARSHIFT_AUX, GEARSHIFT_REQ_AUX};
    use crate::redis::ffi::timeev::TIME_EVENT_TYPE;

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        crate::redis::ffi::trampoline::status(|| {
            crate::redis::lock::mark_main_thread();
            crate::app::load::load(ctx, args)?;
            fill_slots(ctx)?;
            crate::cluster::startup::learn_topology(ctx);
            crate::redis::limits::start(ctx);
            // Replaces the crate's default INFO callback with ours.
            redis_module::raw::register_info_function(
                ctx.ctx,
                Some(crate::app::info::info_callback),
            );
            Ok(())
        })
    }

    /// Fills the slots through which the lower layers call up (docs/architecture.md): bus
    /// receive, call forwarding, the cluster's questions, RDB aux data, loaded time events,
    /// the command filter and the ACL mode.
    fn fill_slots(ctx: &Context) -> Result<(), String> {
        use crate::model::state;
        crate::redis::access::set_superuser_probe(|| {
            state::get().is_some_and(|s| s.config.int(crate::redis::access::SUPERUSER_KEY) != 0)
        });
        crate::redis::call::set_forwarder(crate::cluster::forward::forwarder());
        crate::cluster::handler::install(Box::new(crate::app::local::LocalShard));
        crate::redis::ffi::rdb::set_persistence(crate::app::persist::persistence());
        crate::redis::ffi::rdb::handle_io_errors(ctx);
        crate::redis::ffi::timeev::set_on_load(crate::run::time_events::schedule);
        crate::run::distribute::install(crate::run::distribute::Distributor {
            launch: crate::cluster::registered::launch,
            local_done: crate::cluster::dist::local_done,
            abandon: crate::cluster::dist::abandon,
            drop_parts: crate::cluster::dist::drop_parts,
        });
        crate::redis::ffi::filter::install(
            ctx,
            crate::redis::ffi::filter::Hooks {
                any: || state::get().is_some_and(|s| s.registrations.any_hooks()),
                hooked: |name| {
                    state::get().is_some_and(|s| {
                        !s.registrations.hooks_of(name).is_empty()
                            || s.registrations.commanded(name)
                    })
                },
            },
        )?;
        crate::redis::ffi::cluster::install(ctx, crate::cluster::dispatch::on_message)
    }

    /// A handler wrapped in the command trampoline (`ffi::command::run`): every reply and
    /// error goes through the module's own reply path, never the crate's.
    macro_rules! command {
        ($handler:path) => {
            |ctx: &Context, args: Vec<RedisString>| {
                crate::redis::ffi::command::run(ctx, args, crate::model::state::get(), $handler)
            }
        };
    }

    /// A handler that runs user code: refused when the caller's ACL rules take it away by
    /// category (`ffi::command::run_code`; Redis 7.0 gives module commands none).
    macro_rules! code {
        ($handler:path) => {
            |ctx: &Context, args: Vec<RedisString>| {
                crate::redis::ffi::command::run_code(
                    ctx,
                    args,
                    crate::model::state::get(),
                    $handler,
                )
            }
        };
    }

    /// An internal command's handler: run only for the master's replication stream or the
    /// AOF (`ffi::command::run_internal`); any other caller sees an unknown command.
    macro_rules! internal {
        ($handler:path) => {
            |ctx: &Context, args: Vec<RedisString>| {
                crate::redis::ffi::command::run_internal(
                    ctx,
                    args,
                    crate::model::state::get(),
                    $handler,
                )
            }
        };
    }

    /// One registration, instantiated with the allocator chosen at build time.
    macro_rules! gearshift_module {
        ($alloc:expr, $alloc_ty:ty) => {
            redis_module! {
                name: "rg",
                version: 10213,
                allocator: ($alloc_ty, $alloc),
                data_types: [GEARSHIFT_AUX, GEARSHIFT_REQ_AUX, TIME_EVENT_TYPE],
                init: init,
                // Flags (docs/security.md): `write` where a command changes data or state
                // that replicates (refused on read-only replicas); `may-replicate` for
                // RG.TRIGGER*, which also carries every hooked command (the filter rewrites
                // `GET k` into `RG.TRIGGER GET k`), so a hooked read still runs on a replica;
                // `admin` for operator commands; `allow-busy` so a runaway run can be found and
                // aborted (and `allow-loading`: a session re-run while loading may be the one).
                // The 8th field (ACL categories) applies on Redis >= 7.2 only: 7.0 has no
                // RedisModule_SetCommandACLCategories and gives module commands no category.
                commands: [
                    ["rg.pyexecute", code!(pyexecute::command), "write deny-oom", 0, 0, 0, "", "dangerous scripting"],
                    ["rg.getresults", command!(executions::getresults), "readonly", 0, 0, 0, ""],
                    ["rg.getresultsblocking", command!(executions::getresultsblocking), "readonly", 0, 0, 0, ""],
                    ["rg.dumpexecutions", command!(executions::dumpexecutions), "readonly allow-busy", 0, 0, 0, ""],
                    ["rg.dropexecution", command!(executions::dropexecution), "", 0, 0, 0, ""],
                    ["rg.abortexecution", command!(executions::abortexecution), "allow-busy allow-loading", 0, 0, 0, ""],
                    ["rg.getexecution", command!(executions::getexecution), "readonly", 0, 0, 0, ""],
                    ["rg.configget", command!(config::configget), "readonly", 0, 0, 0, ""],
                    ["rg.configset", command!(config::configset), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.infocluster", command!(misc::infocluster), "readonly", 0, 0, 0, ""],
                    ["rg.refreshcluster", command!(misc::refreshcluster), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.networktest", command!(misc::networktest), "readonly", 0, 0, 0, ""],
                    ["rg.dumpplugins", command!(misc::dumpplugins), "readonly", 0, 0, 0, ""],
                    ["rg.pyexecuteremote", code!(misc::pyexecuteremote), "readonly", 0, 0, 0, "", "dangerous scripting"],
                    ["rg.pyfreeinterpreter", command!(misc::pyfreeinterpreter), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.dumpregistrations", command!(registrations::dumpregistrations), "readonly", 0, 0, 0, ""],
                    ["rg.unregister", command!(registrations::unregister), "write", 0, 0, 0, ""],
                    ["rg.pydumpsessions", command!(sessions::pydumpsessions), "readonly", 0, 0, 0, ""],
                    ["rg.pyprofile", command!(sessions::pyprofile), "readonly", 0, 0, 0, ""],
                    ["rg.trigger", command!(trigger::trigger), "may-replicate", 0, 0, 0, "", "scripting"],
                    ["rg.triggeronkey", command!(trigger::trigger), "may-replicate", 2, 2, 1, "", "scripting"],
                    ["rg.clearregistrationsstats", command!(registrations::clearregistrationsstats), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.pauseregistrations", command!(registrations::pauseregistrations), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.unpauseregistrations", command!(registrations::unpauseregistrations), "admin", 0, 0, 0, "", "admin dangerous"],
                    ["rg.pystats", command!(misc::pystats), "readonly", 0, 0, 0, ""],
                    ["rg.pydumpreqs", command!(requirements::pydumpreqs), "readonly", 0, 0, 0, ""],
                    ["rg.pyexportreq", command!(requirements::pyexportreq), "readonly", 0, 0, 0, ""],
                    ["rg.pyimportreq", code!(requirements::pyimportreq), "write deny-oom", 0, 0, 0, "", "dangerous scripting"],
                    ["rg.pyimportretinternal", internal!(requirements::pyimportretinternal), "write deny-oom", 0, 0, 0, ""],
                    ["rg.innerregister", internal!(internal::innerregister), "write", 0, 0, 0, ""],
                    ["rg.innerunregister", internal!(internal::innerunregister), "write", 0, 0, 0, ""],
                    ["rg.innertimeevent", internal!(internal::innertimeevent), "write deny-oom", 1, 1, 1, ""],
                ],
                event_handlers: [
                    [@ALL @MISSED: crate::run::events::on_keyspace_event],
                    [@STREAM: crate::run::streams::on_stream_event],
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
