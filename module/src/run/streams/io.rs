//! Stream commands a StreamReader registration issues, always under the Redis lock: the
//! consumer group, reading a batch (own pending entries first, for at-least-once), acking
//! and trimming processed entries. The group, read, ack and trim calls replicate (to
//! replicas and the AOF), so a replica holds what its master still has to process; acks
//! made inside the adding command replicate after it (`ack_in_command`).

use engine::Datum;
use redis_module::{CallOptionsBuilder, CallReply, CallResult, Context};

/// 1.2's consumer group and consumer names.
pub const GROUP: &str = "__gears_consumer_group__";
pub const CONSUMER: &str = "__gears_client__";

/// One stream entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    pub id: String,
    pub fields: Vec<(String, String)>,
}

fn call(ctx: &Context, cmd: &str, args: &[&[u8]]) -> CallResult<'static> {
    let opts = CallOptionsBuilder::new().errors_as_replies().build();
    crate::redis::ffi::acl::own_call(|| ctx.call_ext(cmd, &opts, args))
}

/// A call whose effects replicate. While clients are paused it is refused (`W`): Redis
/// 7.0 must propagate nothing then; unacked entries stay pending and are read again.
fn write(ctx: &Context, cmd: &str, args: &[&[u8]]) -> CallResult<'static> {
    let mut opts = CallOptionsBuilder::new().errors_as_replies().replicate();
    if crate::redis::ffi::call::writes_paused() {
        opts = opts.no_writes();
    }
    let opts = opts.build();
    crate::redis::ffi::acl::own_call(|| ctx.call_ext(cmd, &opts, args))
}

fn text(r: &CallResult) -> Option<String> {
    match r {
        Ok(CallReply::String(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

/// Creates the consumer group at id 0 (existing entries are processed); an existing
/// group is fine.
pub fn ensure_group(ctx: &Context, key: &[u8]) {
    let _ = write(
        ctx,
        "XGROUP",
        &[b"CREATE", key, GROUP.as_bytes(), b"0", b"MKSTREAM"],
    );
}

/// This consumer's pending entries (retries after a failure, pause or restart), then new
/// ones unless `pending_only`: at most `count` in all (`None`: all of them).
pub fn read_batch(
    ctx: &Context,
    key: &[u8],
    count: Option<u64>,
    pending_only: bool,
) -> Vec<StreamEntry> {
    ensure_group(ctx, key);
    let mut out = read_from(ctx, key, b"0", count);
    let rest = count.map(|c| c.saturating_sub(out.len() as u64));
    if !pending_only && rest != Some(0) {
        out.extend(read_from(ctx, key, b">", rest));
    }
    out
}

fn read_from(ctx: &Context, key: &[u8], from: &[u8], count: Option<u64>) -> Vec<StreamEntry> {
    let n = count.map(|c| c.to_string());
    let mut args: Vec<&[u8]> = vec![b"GROUP", GROUP.as_bytes(), CONSUMER.as_bytes()];
    if let Some(n) = &n {
        args.extend([&b"COUNT"[..], n.as_bytes()]);
    }
    args.extend([&b"STREAMS"[..], key, from]);
    parse_read(&write(ctx, "XREADGROUP", &args))
}

/// Whether stream `key` holds entries the group has not processed: pending ones, or any
/// after the group's last delivered id.
pub fn has_work(ctx: &Context, key: &[u8]) -> bool {
    let last = match call(ctx, "XREVRANGE", &[key, b"+", b"-", b"COUNT", b"1"]) {
        Ok(CallReply::Array(a)) => match a.get(0) {
            Some(Ok(CallReply::Array(e))) => e.get(0).as_ref().and_then(text),
            _ => None,
        },
        _ => None,
    };
    let Some(last) = last else { return false };
    our_group(ctx, key, |items| {
        let field = |name| field(items, name);
        let pending = matches!(field("pending"), Some(Ok(CallReply::I64(n))) if n.to_i64() > 0);
        let delivered = field("last-delivered-id").and_then(text);
        pending || delivered.and_then(|d| parse_id(&d)) < parse_id(&last)
    })
    .unwrap_or(true)
}

/// Our group's integer field `name` in `XINFO GROUPS key`: `None` without the group,
/// `Some(None)` when the field is not an integer (a nil `lag`).
fn group_int(ctx: &Context, key: &[u8], name: &str) -> Option<Option<u64>> {
    our_group(ctx, key, |items| field(items, name).and_then(int))
}

/// Runs `f` on our group's fields in `XINFO GROUPS key` (name, value, name, value, ...);
/// `None` when the stream or the group is missing.
fn our_group<R>(ctx: &Context, key: &[u8], f: impl FnOnce(&[CallResult<'_>]) -> R) -> Option<R> {
    let Ok(CallReply::Array(groups)) = call(ctx, "XINFO", &[b"GROUPS", key]) else {
        return None;
    };
    for g in groups.iter() {
        let Ok(CallReply::Array(fields)) = g else {
            continue;
        };
        let items: Vec<CallResult> = fields.iter().collect();
        if field(&items, "name").and_then(text).as_deref() == Some(GROUP) {
            return Some(f(&items));
        }
    }
    None
}

/// The value of field `name` in an `XINFO` name/value list.
fn field<'a, 'r>(items: &'a [CallResult<'r>], name: &str) -> Option<&'a CallResult<'r>> {
    items
        .chunks(2)
        .find(|c| text(&c[0]).as_deref() == Some(name))
        .and_then(|c| c.get(1))
}

fn int(r: &CallResult) -> Option<u64> {
    match r {
        Ok(CallReply::I64(n)) => Some(n.to_i64().max(0) as u64),
        _ => None,
    }
}

/// How many entries of stream `key` the group has not delivered yet (the group's `lag`;
/// the stream's length when there is no group or Redis cannot tell).
pub fn undelivered(ctx: &Context, key: &[u8]) -> u64 {
    if let Some(Some(n)) = group_int(ctx, key, "lag") {
        return n;
    }
    int(&call(ctx, "XLEN", &[key])).unwrap_or(0)
}

/// How many entries the group delivered and nobody acked yet (0 without a group).
pub fn pending(ctx: &Context, key: &[u8]) -> u64 {
    group_int(ctx, key, "pending").flatten().unwrap_or(0)
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn parse_read(res: &CallResult) -> Vec<StreamEntry> {
    let Ok(CallReply::Array(streams)) = res else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for stream in streams.iter() {
        let Ok(CallReply::Array(pair)) = stream else {
            continue;
        };
        let Some(Ok(CallReply::Array(entries))) = pair.get(1) else {
            continue;
        };
        for e in entries.iter() {
            let Ok(CallReply::Array(e)) = e else { continue };
            let (Some(id), Some(Ok(CallReply::Array(kv)))) =
                (e.get(0).as_ref().and_then(text), e.get(1))
            else {
                continue;
            };
            let items: Vec<String> = kv.iter().filter_map(|x| text(&x)).collect();
            let fields = items
                .chunks(2)
                .filter(|c| c.len() == 2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            out.push(StreamEntry { id, fields });
        }
    }
    out
}

/// The id right after `id` (`ms-seq` → `ms-(seq+1)`), for an exclusive XTRIM MINID.
pub fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    Some(match seq.checked_add(1) {
        Some(s) => format!("{ms}-{s}"),
        None => format!("{}-0", ms + 1),
    })
}

/// Acknowledges processed entries and, with `trim`, deletes them from the stream.
pub fn ack(ctx: &Context, key: &[u8], ids: &[String], trim: bool) {
    if ids.is_empty() {
        return;
    }
    let mut args: Vec<&[u8]> = vec![key, GROUP.as_bytes()];
    args.extend(ids.iter().map(|i| i.as_bytes()));
    let _ = write(ctx, "XACK", &args);
    if trim {
        if let Some(min) = ids.last().and_then(|l| next_id(l)) {
            let _ = write(ctx, "XTRIM", &[key, b"MINID", min.as_bytes()]);
        }
    }
}

/// [`ack`] from inside the command that added the entries (a `sync` registration runs in
/// the `xadd` notification): applied at once, but replicated only after that command. Redis
/// 7.0 sends writes made in a notification before the command itself, so a replica would
/// trim before it has the entries and keep them.
pub fn ack_in_command(ctx: &Context, key: &[u8], ids: &[String], trim: bool) {
    if ids.is_empty() {
        return;
    }
    let mut later = Vec::new();
    let mut ack: Vec<Vec<u8>> = vec![key.to_vec(), GROUP.into()];
    ack.extend(ids.iter().map(|i| i.clone().into_bytes()));
    later.push(("XACK", ack));
    if trim {
        if let Some(min) = ids.last().and_then(|l| next_id(l)) {
            later.push((
                "XTRIM",
                vec![key.to_vec(), b"MINID".to_vec(), min.into_bytes()],
            ));
        }
    }
    for (cmd, args) in &later {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let _ = call(ctx, cmd, &args);
    }
    crate::redis::timers::create(ctx, std::time::Duration::ZERO, replicate_later, later);
}

fn replicate_later(ctx: &Context, cmds: Vec<(&'static str, Vec<Vec<u8>>)>) {
    crate::redis::ffi::trampoline::callback("a stream ack's replication", (), || {
        for (cmd, args) in &cmds {
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            crate::redis::call::replicate_on(ctx, cmd, &args[..]);
        }
    });
}

/// Stream keys matching a registration prefix (trailing `*` = prefix, else exact).
pub fn matching_streams(ctx: &Context, prefix: &str) -> Vec<Vec<u8>> {
    let pattern = match prefix.strip_suffix('*') {
        Some(p) => format!("{}*", p.replace(['*', '?', '[', ']', '\\'], "\\")),
        None => prefix.replace(['*', '?', '[', ']', '\\'], "\\"),
    };
    let mut out = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let res = call(
            ctx,
            "SCAN",
            &[
                cursor.as_bytes(),
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
                b"TYPE",
                b"stream",
            ],
        );
        let Ok(CallReply::Array(parts)) = res else {
            break;
        };
        cursor = parts
            .get(0)
            .as_ref()
            .and_then(text)
            .unwrap_or_else(|| "0".into());
        if let Some(Ok(CallReply::Array(keys))) = parts.get(1) {
            out.extend(keys.iter().filter_map(|k| text(&k)).map(String::into_bytes));
        }
        if cursor == "0" {
            break;
        }
    }
    out
}

/// A stream entry as the record 1.2 produces: `{'key', 'id', 'value': {field: value}}`.
pub fn record(key: &[u8], e: &StreamEntry) -> Datum {
    let value = Datum::Map(
        e.fields
            .iter()
            .map(|(f, v)| (f.clone(), Datum::Str(v.clone())))
            .collect(),
    );
    Datum::Map(vec![
        (
            "key".into(),
            Datum::Str(String::from_utf8_lossy(key).into_owned()),
        ),
        ("id".into(), Datum::Str(e.id.clone())),
        ("value".into(), value),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_id_is_exclusive_successor() {
        assert_eq!(next_id("5-0").as_deref(), Some("5-1"));
        assert_eq!(next_id(&format!("5-{}", u64::MAX)).as_deref(), Some("6-0"));
        assert_eq!(next_id("bad"), None);
    }
}
