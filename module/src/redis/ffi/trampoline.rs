//! The one panic trampoline: every entry from Redis (commands, keyspace and stream
//! notifications, timers, the command filter, RDB and INFO callbacks, bus messages) and every
//! thread of ours that runs module code goes through `callback` (or `status` at load), so a
//! panic is logged and contained, never unwound into Redis. Commands use `command::run`,
//! which builds on `panic_text` to reply with the panic instead. Depends on `ffi::log` only.

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::Status;

use super::log;

/// The message of a panic payload.
pub(crate) fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Runs `f` for a callback (`what` names it in the log); a panic is logged as
/// `Gearshift: <what> panicked: <message>` and `fallback` is returned.
pub fn callback<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        log::warning(&format!("Gearshift: {what} panicked: {}", panic_text(p)));
        fallback
    })
}

/// Runs module initialisation; an error or panic is logged and fails the load.
pub fn status(f: impl FnOnce() -> Result<(), String>) -> Status {
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
