//! What the cluster layer asks of the application when another shard asks this one
//! something (a `Query`) or tells it to drop a registration: a trait the app layer
//! implements (`app::local::LocalShard`) and installs once at load, so the cluster layer
//! never names a command or an application function. Depends on `redis` only.

use std::sync::OnceLock;

use redis_module::Context;

use crate::redis::ffi::replies::Reply;

/// This shard's answers to other shards (main thread unless noted).
pub trait ShardHandler: Send + Sync {
    /// RG.GETEXECUTION's entry of this shard for execution `id`.
    fn execution_plan(&self, id: &str) -> Result<Reply, String>;
    /// Drops finished execution `id`.
    fn drop_execution(&self, id: &str) -> Result<Reply, String>;
    /// Aborts execution `id`.
    fn abort_execution(&self, id: &str) -> Result<Reply, String>;
    /// Installs sessions another shard sent (lock held through `ctx`).
    fn install_sessions(&self, ctx: &Context, blob: &[u8]) -> Result<Reply, String>;
    /// Pauses or unpauses registration `id`.
    fn pause(&self, id: &str, pause: bool) -> Result<Reply, String>;
    /// Clears registration stats.
    fn clear_stats(&self) -> Result<Reply, String>;
    /// Drops registration `id`, silently if unknown.
    fn unregister(&self, ctx: &Context, id: &str, abort_pending: bool);
    /// Installs requirement packages another shard sent (on a worker: unpacks wheels).
    fn import_requirements(&self, blob: &[u8]) -> Reply;
}

static HANDLER: OnceLock<Box<dyn ShardHandler>> = OnceLock::new();

/// Installs the handler (once, at load).
pub fn install(h: Box<dyn ShardHandler>) {
    let _ = HANDLER.set(h);
}

/// The installed handler; `None` before load.
pub fn get() -> Option<&'static dyn ShardHandler> {
    HANDLER.get().map(|b| b.as_ref())
}
