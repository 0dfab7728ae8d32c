//! The single owner of module-wide state: configuration and the worker pool. Set once at
//! load; never `static mut`.

use std::sync::{Arc, OnceLock};

use engine::exec::WorkerPool;
use redis_module::{Context, RedisString};

use crate::model::executions::Registry;
use crate::model::registrations::Registrations;
use crate::model::requirements::Requirements;
use crate::model::sessions::Sessions;
use crate::model::streams::StreamRegistrations;
use crate::redis::config::Config;
use crate::redis::lock::RedisHost;

/// Module-wide state.
#[derive(Debug)]
pub struct ModuleState {
    pub config: Arc<Config>,
    /// Runs scripts and execution stages (`ExecutionThreads` threads).
    pub pool: WorkerPool,
    /// Kept executions and the id counter.
    pub registry: Registry,
    /// register() flows of this shard.
    pub registrations: Registrations,
    /// Sessions that own registrations.
    pub sessions: Sessions,
    /// StreamReader registrations.
    pub streams: StreamRegistrations,
    /// Packages installed with REQUIREMENTS.
    pub requirements: Requirements,
}

static STATE: OnceLock<ModuleState> = OnceLock::new();

/// Loads configuration, starts Python and the worker pool.
pub fn init(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy()).collect();
    let config = Arc::new(Config::from_args(&args)?);
    crate::redis::config::set_global(Arc::clone(&config));
    // Before the pool starts, so `CONFIG rg.execution-threads` given at load applies.
    crate::redis::ffi::configs::register(ctx)?;
    // 1.2's OverridePythonAllocators: Python's memory is Redis's, visible to used_memory
    // and bounded by maxmemory and ExecutionMemoryLimit.
    let allocator = if config.int("OverridePythonAllocators") != 0 {
        crate::redis::ffi::memory::python_allocator()
    } else {
        None
    };
    gearpy::init(
        config.python_home.as_deref(),
        Arc::new(RedisHost::new(Arc::clone(&config))),
        allocator,
    )?;
    let threads = config.int("ExecutionThreads").max(1) as usize;
    let pool = WorkerPool::with_task_end(
        threads,
        "gearshift",
        crate::redis::lock::release_leaked_lock,
    );
    STATE
        .set(ModuleState {
            config,
            pool,
            registry: Registry::default(),
            registrations: Registrations::default(),
            sessions: Sessions::default(),
            streams: StreamRegistrations::default(),
            requirements: Requirements::default(),
        })
        .map_err(|_| "Gearshift is already loaded".to_owned())
}

/// The state; `None` only before a successful load.
pub fn get() -> Option<&'static ModuleState> {
    STATE.get()
}
