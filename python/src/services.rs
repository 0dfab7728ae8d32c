//! `HostServices`: what Python code may ask of the Redis server, implemented by the module
//! crate (this crate never sees redis-module), and the one installed instance ([`get`]).
//! Installed once at start-up.
//!
//! Bottom layer: depends on `caller` (the `RunAs` type) only.

use std::sync::{Arc, OnceLock};

/// An owned reply of a Redis command, converted while the Redis lock was held.
#[derive(Debug, Clone, PartialEq)]
pub enum CallReply {
    Nil,
    Int(i64),
    Double(f64),
    Bulk(Vec<u8>),
    Status(String),
    Error(String),
    Array(Vec<CallReply>),
}

/// Services of the hosting Redis server.
pub trait HostServices: Send + Sync {
    /// Runs a Redis command as `caller` (the identity of the code calling, `None` when
    /// no execution set one). Called with the GIL released; the implementation takes the
    /// Redis lock unless the current thread already holds it.
    fn call(&self, caller: Option<&crate::caller::RunAs>, args: &[Vec<u8>]) -> CallReply;
    /// Writes a line to the Redis log (`level`: debug, verbose, notice, warning).
    fn log(&self, level: &str, msg: &str);
    /// A value from the extra config dictionary (module args / RG.CONFIGSET of unknown keys).
    fn config_get(&self, key: &str) -> Option<String>;
    /// Whether errors carry Python tracebacks (`PythonAttemptTraceback`).
    fn attempt_traceback(&self) -> bool;
    /// Takes the Redis lock for this thread until `unlock_redis` (for `atomic()`); a no-op
    /// returning `false` when the thread already holds it. Called with the GIL released.
    fn lock_redis(&self) -> bool;
    /// Releases a lock taken by `lock_redis`.
    fn unlock_redis(&self);
    /// The most Python memory one execution may hold, in bytes (0: unlimited).
    fn execution_memory_limit(&self) -> i64 {
        0
    }
    /// Reserves the id of a registration `register()` is preparing (what it returns); None
    /// where ids come from elsewhere (sessions re-run while loading keep their saved ids).
    fn reserve_registration_id(&self) -> Option<String> {
        None
    }
    /// Lets Redis serve clients (answering `-BUSY`) while Python that holds the Redis lock
    /// on the main thread runs long. Called there, with the GIL. False when Redis cannot
    /// serve clients from there (the callback runs inside a Lua script or MULTI/EXEC).
    fn yield_to_clients(&self) -> bool {
        true
    }
    /// Whether Python stages profile their callbacks (`ProfileExecutions`).
    fn profile_executions(&self) -> bool {
        false
    }
    /// `call_next(*args)` inside a command hook: the next hook or the real command.
    /// `None` when the current thread runs no hook. Called with the GIL released.
    fn call_next(&self, _args: &[Vec<u8>]) -> Option<CallReply> {
        None
    }
    /// The argv of the command a hook execution runs for (`get_command()`).
    fn hooked_command(&self) -> Option<Vec<Vec<u8>>> {
        None
    }
    /// True when this thread holds the Redis lock (main thread, sync runs, `atomic()`).
    fn holds_redis_lock(&self) -> bool {
        false
    }
    /// Calls `tick` on Redis's main thread every `period`, until it returns false.
    /// Called with the GIL released.
    fn start_timer(&self, period: std::time::Duration, tick: Box<dyn FnMut() -> bool + Send>);
    /// Stores a time event in a new key `key` (module type `rg_timeev`: `period`, the
    /// callback's cloudpickled bytes and `run_as`, who it runs as) and starts it with
    /// `tick`; `Ok(false)` if the key exists. Called with the GIL released.
    fn create_time_event(
        &self,
        _key: &[u8],
        _period: std::time::Duration,
        _pickled: Vec<u8>,
        _run_as: Option<crate::caller::RunAs>,
        _tick: Box<dyn FnMut() -> bool + Send>,
    ) -> Result<bool, String> {
        Err("time events with a key name are not supported by this host".into())
    }
}

static SERVICES: OnceLock<Arc<dyn HostServices>> = OnceLock::new();

/// Installs the services; later calls are ignored.
pub fn install(h: Arc<dyn HostServices>) {
    let _ = SERVICES.set(h);
}

/// The installed services (`None` before start-up, e.g. in unit tests).
pub(crate) fn get() -> Option<&'static Arc<dyn HostServices>> {
    SERVICES.get()
}
