//! Loading the module: configuration from the module arguments, Redis's CONFIG entries,
//! the Python interpreter with its services, the worker pool, and the module state.
//! Depends on `model` and `redis` (and `app::services`).

use std::sync::Arc;

use engine::exec::WorkerPool;
use redis_module::{Context, RedisString};

use crate::app::services::RedisServices;
use crate::model::executions::Registry;
use crate::model::registration_table::Registrations;
use crate::model::requirements::Requirements;
use crate::model::sessions::Sessions;
use crate::model::state::{self, ModuleState};
use crate::model::streams::StreamRegistrations;
use crate::redis::config::Config;

/// Loads configuration, starts Python and the worker pool.
pub fn load(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    let config = Arc::new(Config::from_args(&args)?);
    // Before the pool starts, so `CONFIG rg.execution-threads` given at load applies.
    crate::redis::ffi::configs::register(ctx, Arc::clone(&config))?;
    // 1.2's OverridePythonAllocators: Python's memory is Redis's, visible to used_memory
    // and bounded by maxmemory and ExecutionMemoryLimit.
    let allocator = if config.int("OverridePythonAllocators") != 0 {
        crate::redis::ffi::memory::python_allocator()
    } else {
        None
    };
    gearpy::init(
        config.python_home.as_deref(),
        Arc::new(RedisServices::new(Arc::clone(&config))),
        allocator,
    )?;
    gearpy::register::set_step_registrar(crate::app::step_register::install_from_step);
    gearpy::nested::install(Box::new(crate::app::nested::ModuleNestedRuns));
    let threads = config.int("ExecutionThreads").max(1) as usize;
    let pool = WorkerPool::with_task_end(
        threads,
        "gearshift",
        crate::redis::lock::release_leaked_lock,
    );
    let scripts = WorkerPool::elastic(
        state::SCRIPT_THREADS,
        state::MAX_SCRIPT_THREADS,
        "gearshift-script",
        crate::redis::lock::release_leaked_lock,
    );
    state::install(ModuleState {
        config,
        pool,
        scripts,
        registry: Registry::default(),
        registrations: Registrations::default(),
        sessions: Sessions::default(),
        streams: StreamRegistrations::default(),
        requirements: Requirements::default(),
    })
}
