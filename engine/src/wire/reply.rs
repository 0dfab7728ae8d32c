//! A command's reply as a value ([`Reply`]), and its wire form on the cluster bus (a tag
//! byte, then the value): how a shard answers another's question (`bus::Message::Answer`).

/// A reply to send (written to a client by the module, or sent to another shard).
/// Equality is the wire form's: doubles compare by their bits, so a NaN a shard sent equals
/// itself after a round trip and `0.0` differs from `-0.0` (found by the `bus_reply` fuzz
/// target).
#[derive(Debug, Clone)]
pub enum Reply {
    Null,
    Int(i64),
    /// A double: a bulk of its text in RESP2, a double in RESP3 (Redis formats it).
    Double(f64),
    Bulk(Vec<u8>),
    Status(String),
    Error(String),
    Array(Vec<Reply>),
}

impl PartialEq for Reply {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Reply::Double(a), Reply::Double(b)) => a.to_bits() == b.to_bits(),
            (Reply::Null, Reply::Null) => true,
            (Reply::Int(a), Reply::Int(b)) => a == b,
            (Reply::Bulk(a), Reply::Bulk(b)) => a == b,
            (Reply::Status(a), Reply::Status(b)) | (Reply::Error(a), Reply::Error(b)) => a == b,
            (Reply::Array(a), Reply::Array(b)) => a == b,
            _ => false,
        }
    }
}

use super::{put, put_count, Reader};

const MAX_DEPTH: usize = 32;

/// A reply in the bus's wire form (tag byte, then the value).
pub fn encode_reply(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    put_reply(&mut out, r);
    out
}

fn put_reply(out: &mut Vec<u8>, r: &Reply) {
    match r {
        Reply::Null => out.push(0),
        Reply::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Reply::Double(d) => {
            out.push(6);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Reply::Bulk(b) => {
            out.push(2);
            put(out, b);
        }
        Reply::Status(s) => {
            out.push(3);
            put(out, s.as_bytes());
        }
        Reply::Error(s) => {
            out.push(4);
            put(out, s.as_bytes());
        }
        Reply::Array(items) => {
            out.push(5);
            put_count(out, items.len());
            for i in items {
                put_reply(out, i);
            }
        }
    }
}

pub fn decode_reply(bytes: &[u8]) -> Option<Reply> {
    let mut r = Reader(bytes);
    let reply = take_reply(&mut r, 0)?;
    r.is_empty().then_some(reply)
}

fn take_reply(r: &mut Reader<'_>, depth: usize) -> Option<Reply> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match r.u8()? {
        0 => Reply::Null,
        1 => Reply::Int(r.u64()? as i64),
        6 => Reply::Double(f64::from_bits(r.u64()?)),
        2 => Reply::Bulk(r.field()?.to_vec()),
        3 => Reply::Status(r.text()?),
        4 => Reply::Error(r.text()?),
        5 => {
            let n = r.u32()? as usize;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(take_reply(r, depth + 1)?);
            }
            Reply::Array(items)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let r = Reply::Array(vec![
            Reply::Null,
            Reply::Int(-5),
            Reply::Double(1.5),
            Reply::Bulk(b"x\x00y".to_vec()),
            Reply::Status("OK".into()),
            Reply::Error("ERR no".into()),
            Reply::Array(vec![]),
        ]);
        let enc = encode_reply(&r);
        assert_eq!(decode_reply(&enc), Some(r));
        for cut in 0..enc.len() {
            assert_eq!(decode_reply(&enc[..cut]), None);
        }
    }
}
