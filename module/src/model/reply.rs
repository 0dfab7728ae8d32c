//! Engine results as RESP replies, with RedisGears 1.2's rules (REFERENCE §10): text
//! starting with `+`/`-` (and longer than one char) becomes a status/error, floats are
//! printed `%lf`, lists recurse, other records are `PY RECORD`. A run's reply to its
//! client is written straight from its output (`ExecutionReply`).

use engine::exec::ExecutionOutput;
use engine::Datum;

use redis_module::Context;

use crate::redis::ffi::replies::{write, write_array_len, write_bulk, Reply, WriteReply};
use gearpy::services::CallReply;

/// A reply as a Redis command's result seen from Python (`call_next`, forwarded calls).
pub fn to_call_reply(r: Reply) -> CallReply {
    match r {
        Reply::Null => CallReply::Nil,
        Reply::Int(i) => CallReply::Int(i),
        Reply::Double(d) => CallReply::Double(d),
        Reply::Bulk(b) => CallReply::Bulk(b),
        Reply::Status(s) => CallReply::Status(s),
        Reply::Error(e) => CallReply::Error(e),
        Reply::Array(items) => CallReply::Array(items.into_iter().map(to_call_reply).collect()),
    }
}

/// A command's result as a reply (doubles as their RESP2 text).
pub fn from_call_reply(r: CallReply) -> Reply {
    match r {
        CallReply::Nil => Reply::Null,
        CallReply::Int(i) => Reply::Int(i),
        CallReply::Double(d) => Reply::Bulk(d.to_string().into_bytes()),
        CallReply::Bulk(b) => Reply::Bulk(b),
        CallReply::Status(s) => Reply::Status(s),
        CallReply::Error(e) => Reply::Error(e),
        CallReply::Array(items) => Reply::Array(items.into_iter().map(from_call_reply).collect()),
    }
}

/// `[[results...], [errors...]]`.
pub fn execution_reply(out: &ExecutionOutput) -> Reply {
    let results = out.results.iter().map(datum_reply).collect();
    let errors = out
        .errors
        .iter()
        .map(|e| Reply::Bulk(e.clone().into_bytes()))
        .collect();
    Reply::Array(vec![Reply::Array(results), Reply::Array(errors)])
}

/// `[[results...], [errors...]]` written straight from the output: the same reply as
/// [`execution_reply`]'s, without a copy of every result string into a reply tree first
/// (a 300,000-key `collect` spent more time copying than writing).
pub struct ExecutionReply<'a>(pub &'a ExecutionOutput);

impl WriteReply for ExecutionReply<'_> {
    fn write_to(&self, ctx: &Context) {
        let out = self.0;
        write_array_len(ctx, 2);
        write_array_len(ctx, out.results.len());
        for d in &out.results {
            match d {
                Datum::Str(s) if !is_status_or_error(s) => write_bulk(ctx, s.as_bytes()),
                Datum::Bytes(b) => write_bulk(ctx, b),
                other => write(ctx, &datum_reply(other)),
            }
        }
        write_array_len(ctx, out.errors.len());
        for e in &out.errors {
            write_bulk(ctx, e.as_bytes());
        }
    }
}

/// Text 1.2 replies as a status (`+…`) or an error (`-…`) rather than a bulk string.
fn is_status_or_error(s: &str) -> bool {
    s.len() > 1 && (s.starts_with('+') || s.starts_with('-'))
}

/// One record as a reply element.
pub fn datum_reply(d: &Datum) -> Reply {
    match d {
        Datum::Str(s) if is_status_or_error(s) && s.starts_with('+') => {
            Reply::Status(s[1..].to_owned())
        }
        Datum::Str(s) if is_status_or_error(s) => Reply::Error(s[1..].to_owned()),
        Datum::Str(s) => Reply::Bulk(s.clone().into_bytes()),
        Datum::Bytes(b) => Reply::Bulk(b.clone()),
        Datum::Int(i) => Reply::Int(*i),
        Datum::Bool(b) => Reply::Int(*b as i64),
        Datum::Float(f) => Reply::Bulk(c_lf(*f).into_bytes()),
        Datum::List(items) => Reply::Array(items.iter().map(datum_reply).collect()),
        Datum::Null | Datum::Map(_) => Reply::Bulk(b"PY RECORD".to_vec()),
    }
}

/// C's `%lf`: six decimals; `inf`/`nan` spelled as glibc does.
fn c_lf(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    format!("{f:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_follow_1_2_rules() {
        assert_eq!(
            datum_reply(&Datum::Str("+OK".into())),
            Reply::Status("OK".into())
        );
        assert_eq!(
            datum_reply(&Datum::Str("-1".into())),
            Reply::Error("1".into())
        );
        assert_eq!(
            datum_reply(&Datum::Str("-".into())),
            Reply::Bulk(b"-".to_vec())
        );
        assert_eq!(
            datum_reply(&Datum::Float(3.5)),
            Reply::Bulk(b"3.500000".to_vec())
        );
        assert_eq!(datum_reply(&Datum::Bool(true)), Reply::Int(1));
        assert_eq!(
            datum_reply(&Datum::Map(vec![])),
            Reply::Bulk(b"PY RECORD".to_vec())
        );
        let out = ExecutionOutput {
            results: vec![Datum::Int(3)],
            errors: vec!["e".into()],
            aborted: false,
        };
        assert_eq!(
            execution_reply(&out),
            Reply::Array(vec![
                Reply::Array(vec![Reply::Int(3)]),
                Reply::Array(vec![Reply::Bulk(b"e".to_vec())])
            ])
        );
    }
}
