//! The engine's one error enum, grouped by who is at fault.
//!
//! Converted to RedisGears reply texts only in the module crate. A failure inside a user
//! callback is data ([`EngineError::Callback`]), never a panic. Depends on nothing.

use std::fmt;

/// Every failure the engine or its host can report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The plan itself is invalid (bad step arguments, unknown reader...).
    Plan(String),
    /// A user callback failed; `msg` is the text users see (traceback or flat message).
    Callback { msg: String },
    /// The execution failed while running (shuffle peer lost, idle timeout...).
    Execution(String),
    /// A bounded resource ran out (queue, pool, memory).
    ResourcesExhausted(String),
    /// The execution was aborted.
    Cancelled,
    /// A bug: an invariant of the engine did not hold.
    Internal(String),
}

/// Engine result with [`EngineError`] as the default error.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// The text a user sees for this error.
    pub fn message(&self) -> &str {
        match self {
            Self::Plan(m)
            | Self::Execution(m)
            | Self::ResourcesExhausted(m)
            | Self::Internal(m)
            | Self::Callback { msg: m } => m,
            Self::Cancelled => "Execution was aborted",
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for EngineError {}
