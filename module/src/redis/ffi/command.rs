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

use redis_module::{raw, Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use super::replies::{write, write_error_bytes, Reply};
use super::trampoline::panic_text;

/// A command handler: it gets the module state (`S`, the composition root's `ModuleState`)
/// from the wrapper, so no handler looks it up or checks that the module loaded.
pub type Handler<S> = fn(&Context, &'static S, Vec<RedisString>) -> RedisResult;

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
pub fn run<S>(
    ctx: &Context,
    args: Vec<RedisString>,
    state: Option<&'static S>,
    h: Handler<S>,
) -> RedisResult {
    let Some(state) = state else {
        write(ctx, &Reply::Error("Gearshift is not initialised".into()));
        return Ok(RedisValue::NoReply);
    };
    let out = catch_unwind(AssertUnwindSafe(|| h(ctx, state, args))).unwrap_or_else(|p| {
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

/// Runs `h`, a command that runs user code (`code!` in the command table), unless the
/// caller's ACL rules take it away by category: on Redis 7.0 module commands have none,
/// so `-@dangerous` / `-@scripting` are applied here (`acl_categories`).
pub fn run_code<S>(
    ctx: &Context,
    args: Vec<RedisString>,
    state: Option<&'static S>,
    h: Handler<S>,
) -> RedisResult {
    // SAFETY: reading a function pointer Redis filled in at load.
    let native = unsafe { raw::RedisModule_SetCommandACLCategories }.is_some();
    let name = args
        .first()
        .map(|a| a.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let categories = crate::redis::acl_categories::RUNS_CODE;
    if let Some(refusal) = crate::redis::acl_categories::refusal(ctx, &name, categories, native) {
        write(ctx, &Reply::Error(refusal));
        return Ok(RedisValue::NoReply);
    }
    run(ctx, args, state, h)
}

/// Runs internal command `h` (`internal!` in the command table) only for the master's
/// replication stream or while the AOF loads: they install code on the main thread
/// (`RG.INNERREGISTER`) or drop registrations, so any other caller (a client, MULTI, Lua)
/// gets exactly the reply Redis gives for an unknown command and nothing runs.
pub fn run_internal<S>(
    ctx: &Context,
    args: Vec<RedisString>,
    state: Option<&'static S>,
    h: Handler<S>,
) -> RedisResult {
    if ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
    {
        return run(ctx, args, state, h);
    }
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
    write_error_bytes(ctx, &unknown_command_text(&argv));
    Ok(RedisValue::NoReply)
}

/// Redis 7's text for an unknown command: the name as sent (at most 128 bytes), then each
/// argument quoted, until the argument list reaches 128 bytes (each one cut to what is left).
fn unknown_command_text(argv: &[&[u8]]) -> Vec<u8> {
    // Redis prints these with `%s`: a NUL ends each one.
    let c_str = |a: &[u8]| -> Vec<u8> { a.iter().copied().take_while(|&b| b != 0).collect() };
    let mut name = argv.first().map(|n| c_str(n)).unwrap_or_default();
    name.truncate(128);
    let mut tail = Vec::new();
    for a in argv.iter().skip(1) {
        if tail.len() >= 128 {
            break;
        }
        let mut a = c_str(a);
        a.truncate(128 - tail.len());
        tail.push(b'\'');
        tail.extend_from_slice(&a);
        tail.extend_from_slice(b"' ");
    }
    let mut out = b"ERR unknown command '".to_vec();
    out.extend_from_slice(&name);
    out.extend_from_slice(b"', with args beginning with: ");
    out.extend_from_slice(&tail);
    out
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
    fn unknown_command_text_is_redis_own() {
        let t = |argv: &[&[u8]]| String::from_utf8(unknown_command_text(argv)).unwrap();
        assert_eq!(
            t(&[b"RG.X", b"a", b"b\0c"]),
            "ERR unknown command 'RG.X', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            t(&[b"rg.x"]),
            "ERR unknown command 'rg.x', with args beginning with: "
        );
        let long = [b'a'; 200];
        let text = t(&[b"X", &long, b"more"]);
        assert!(text.ends_with(&format!("'{}' ", "a".repeat(128))));
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
