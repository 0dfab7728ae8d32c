//! Writing to the Redis log. Every module log line goes through here, never through
//! redis-module's `log*` helpers: those pass the message as `RedisModule_Log`'s printf format,
//! so a `%s` in user text (a Python `log()` call, an exception text, a session id) made Redis
//! read varargs that were never passed and crash; they also panic on a NUL byte.

use std::ffi::CString;

use redis_module::raw;

/// Log levels, as Redis names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Verbose,
    Notice,
    Warning,
}

impl Level {
    fn name(self) -> &'static std::ffi::CStr {
        match self {
            Level::Debug => c"debug",
            Level::Verbose => c"verbose",
            Level::Notice => c"notice",
            Level::Warning => c"warning",
        }
    }
}

/// Logs `msg` verbatim at `level` (from any thread; NUL bytes are dropped).
pub fn log(level: Level, msg: &str) {
    let msg = CString::new(msg.replace('\0', "")).unwrap_or_default();
    // SAFETY: the API table is written once at module load, before any caller runs; it is
    // `None` only outside Redis (unit tests). A NULL context is allowed from any thread (no
    // module-name prefix). The format is a literal "%s" with exactly one C-string argument.
    unsafe {
        if let Some(rm_log) = raw::RedisModule_Log {
            rm_log(
                std::ptr::null_mut(),
                level.name().as_ptr(),
                c"%s".as_ptr(),
                msg.as_ptr(),
            );
        }
    }
}

/// Logs `msg` at warning level.
pub fn warning(msg: &str) {
    log(Level::Warning, msg);
}
