//! The trampoline every RG.* command runs in (`command!` in lib.rs's table wraps each
//! handler), and the one place where a handler's `RedisError` becomes a reply.
//!
//! Why not let redis-module reply: its `Context::reply` turns an error's text into bytes with
//! `c as u8`, so U+0100 becomes NUL and `CString::new(..).unwrap()` panics outside any
//! `catch_unwind` (redis-server aborts), and every other non-ASCII char is garbled. Here every
//! reply and error is written by `replies::write` (UTF-8 intact); the crate only ever sees
//! `NoReply`, or `WrongArity` so Redis writes its own "wrong number of arguments" text.
//! `scripts/test.sh` fails if `RedisError::String`/`Str` is named anywhere else in the module.

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::panic_text;
use super::replies::{write, Reply};

/// A command handler as the command table registers it.
pub type Handler = fn(&Context, Vec<RedisString>) -> RedisResult;

/// An error reply with `text` (any UTF-8), for a handler to return.
pub fn error(text: impl Into<String>) -> RedisError {
    RedisError::String(text.into())
}

/// The text an error reply carries (1.2's texts have no `ERR` prefix; Redis takes the first
/// word as the error code, as it does for the crate's replies).
pub fn error_text(e: RedisError) -> String {
    match e {
        RedisError::Str(s) => s.to_owned(),
        RedisError::String(s) => s,
        other => other.to_string(),
    }
}

/// Runs handler `h` for one command call: a panic becomes an error reply, an `Err` or a value
/// is written through `replies::write`. Returns what the crate may still reply itself.
pub fn run(ctx: &Context, args: Vec<RedisString>, h: Handler) -> RedisResult {
    let out = catch_unwind(AssertUnwindSafe(|| h(ctx, args))).unwrap_or_else(|p| {
        Err(error(format!(
            "Gearshift internal error: {}",
            panic_text(p)
        )))
    });
    match out {
        Ok(RedisValue::NoReply) => {}
        Ok(v) => write(ctx, &value_reply(v)),
        // Redis's own text (and the crate skips it for COMMAND GETKEYS probes).
        Err(RedisError::WrongArity) => return Err(RedisError::WrongArity),
        Err(e) => write(ctx, &Reply::Error(error_text(e))),
    }
    Ok(RedisValue::NoReply)
}

/// The few `RedisValue`s a handler might return, as our replies (handlers normally write
/// their reply with `respond` and return `NoReply`).
fn value_reply(v: RedisValue) -> Reply {
    match v {
        RedisValue::Null | RedisValue::NoReply => Reply::Null,
        RedisValue::Integer(i) => Reply::Int(i),
        RedisValue::Bool(b) => Reply::Int(i64::from(b)),
        RedisValue::SimpleStringStatic(s) => Reply::Status(s.to_owned()),
        RedisValue::SimpleString(s) => Reply::Status(s),
        RedisValue::BulkString(s) => Reply::Bulk(s.into_bytes()),
        RedisValue::StringBuffer(b) => Reply::Bulk(b),
        RedisValue::BulkRedisString(s) => Reply::Bulk(s.as_slice().to_vec()),
        RedisValue::StaticError(e) => Reply::Error(e.to_owned()),
        RedisValue::Array(items) => Reply::Array(items.into_iter().map(value_reply).collect()),
        other => Reply::Error(format!(
            "Gearshift internal error: unsupported reply {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_keeps_any_utf8() {
        assert_eq!(error_text(error("Unknown option 一")), "Unknown option 一");
        assert_eq!(error_text(RedisError::Str("Ā")), "Ā");
    }

    #[test]
    fn values_become_our_replies() {
        assert_eq!(
            value_reply(RedisValue::Array(vec![
                RedisValue::SimpleString("Ā".into()),
                RedisValue::Integer(3)
            ])),
            Reply::Array(vec![Reply::Status("Ā".into()), Reply::Int(3)])
        );
    }
}
