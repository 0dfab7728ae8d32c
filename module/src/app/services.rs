//! The services the Python layer gets from Redis (`gearpy::services::HostServices`):
//! commands, logging, config, the Redis lock for `atomic()`, hooks' `call_next`, timers and
//! time events, registration ids. Honours the lock rule (DESIGN.md §5): the Python layer
//! releases the GIL before calling in here. Depends on `run`, `model` and `redis`.

use std::cell::Cell;
use std::sync::Arc;

use gearpy::services::{CallReply as PyReply, HostServices};

use crate::redis::access::RunAs;
use crate::redis::config::Config;
use crate::redis::lock;

thread_local! {
    /// A saved session is being rebuilt on this thread: its registrations keep their
    /// saved ids, so `register()` reserves none.
    static REBUILDING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a saved session's script) with no registration ids reserved.
pub fn rebuilding<R>(f: impl FnOnce() -> R) -> R {
    let prev = REBUILDING.with(|r| r.replace(true));
    let out = f();
    REBUILDING.with(|r| r.set(prev));
    out
}

#[derive(Debug)]
pub struct RedisServices {
    config: Arc<Config>,
}

impl RedisServices {
    pub fn new(config: Arc<Config>) -> Self {
        RedisServices { config }
    }
}

impl HostServices for RedisServices {
    fn call(&self, caller: Option<&RunAs>, args: &[Vec<u8>]) -> PyReply {
        crate::redis::call::call(caller, args)
    }

    fn call_next(&self, args: &[Vec<u8>]) -> Option<PyReply> {
        crate::run::hooks::call_next(args)
    }

    fn hooked_command(&self) -> Option<Vec<Vec<u8>>> {
        crate::run::hooks::current_argv()
    }

    fn log(&self, level: &str, msg: &str) {
        use crate::redis::ffi::log::Level;
        let level = match level {
            "debug" => Level::Debug,
            "verbose" => Level::Verbose,
            "warning" => Level::Warning,
            _ => Level::Notice,
        };
        crate::redis::ffi::log::log(level, msg);
    }

    fn config_get(&self, key: &str) -> Option<String> {
        self.config.extra(key)
    }

    fn attempt_traceback(&self) -> bool {
        self.config.int("PythonAttemptTraceback") != 0
    }

    fn lock_redis(&self) -> bool {
        lock::lock_for_atomic()
    }

    fn reserve_registration_id(&self) -> Option<String> {
        if REBUILDING.with(|r| r.get()) {
            return None;
        }
        crate::model::state::get().map(|s| s.registrations.next_id())
    }

    fn yield_to_clients(&self) -> bool {
        lock::yield_to_clients()
    }

    fn holds_redis_lock(&self) -> bool {
        lock::lock_held()
    }

    fn execution_memory_limit(&self) -> i64 {
        self.config.int("ExecutionMemoryLimit")
    }

    fn profile_executions(&self) -> bool {
        self.config.int("ProfileExecutions") != 0
    }

    fn start_timer(&self, period: std::time::Duration, tick: Box<dyn FnMut() -> bool + Send>) {
        crate::redis::timers::start(period, tick);
    }

    fn create_time_event(
        &self,
        key: &[u8],
        period: std::time::Duration,
        pickled: Vec<u8>,
        run_as: Option<RunAs>,
        tick: Box<dyn FnMut() -> bool + Send>,
    ) -> Result<bool, String> {
        crate::run::time_events::create(key, period, pickled, run_as, tick)
    }

    fn unlock_redis(&self) {
        lock::unlock_atomic();
    }
}
