//! RG.CONFIGGET / RG.CONFIGSET (REFERENCE §1.1, §6): one reply element per key; failures
//! are `(error) …` elements as 1.2 prints them, never a failed command.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::{respond, text_args};
use crate::model::state::ModuleState;
use crate::redis::config::{SetOutcome, Value};
use crate::redis::ffi::replies::Reply;

fn value_reply(v: Value) -> Reply {
    match v {
        Value::Int(i) => Reply::Int(i),
        Value::Str(s) => Reply::Bulk(s.into_bytes()),
        Value::List(l) => {
            Reply::Array(l.into_iter().map(|s| Reply::Bulk(s.into_bytes())).collect())
        }
    }
}

/// `RG.CONFIGGET <key> ...`.
pub fn configget(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let keys = text_args(&args);
    if keys.is_empty() {
        return Err(RedisError::WrongArity);
    }
    let cfg = &state.config;
    let items = keys
        .iter()
        .map(|k| match cfg.get(k) {
            Some(v) => value_reply(v),
            None => Reply::Status(format!("(error) Unsupported config parameter: {k}")),
        })
        .collect();
    respond(ctx, Reply::Array(items))
}

/// `RG.CONFIGSET <key> <value> ...`.
pub fn configset(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.is_empty() {
        return Err(RedisError::WrongArity);
    }
    let cfg = &state.config;
    let items = a
        .chunks(2)
        .map(|kv| match kv {
            [k, v] => match cfg.set(k, v) {
                SetOutcome::Ok => Reply::Status("OK".into()),
                SetOutcome::SavedInExtra => {
                    Reply::Status("OK - value was saved in extra config dictionary".into())
                }
                SetOutcome::Error(e) => Reply::Status(format!("(error) {e}")),
            },
            [k] => Reply::Status(format!("(error) Value was not given to {k}")),
            _ => Reply::Null,
        })
        .collect();
    respond(ctx, Reply::Array(items))
}
