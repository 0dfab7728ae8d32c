//! A command's reply as a value ([`Reply`]), and its wire form on the cluster bus (a tag
//! byte, then the value): how a shard answers another's question (`bus::Message::Answer`).

/// A reply to send (written to a client by the module, or sent to another shard).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Null,
    Int(i64),
    Bulk(Vec<u8>),
    Status(String),
    Error(String),
    Array(Vec<Reply>),
}

const MAX_DEPTH: usize = 32;

/// A reply in the bus's wire form (tag byte, then the value).
pub fn encode_reply(r: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    put_reply(&mut out, r);
    out
}

fn put_reply(out: &mut Vec<u8>, r: &Reply) {
    let put = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    match r {
        Reply::Null => out.push(0),
        Reply::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
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
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for i in items {
                put_reply(out, i);
            }
        }
    }
}

pub fn decode_reply(bytes: &[u8]) -> Option<Reply> {
    let mut buf = bytes;
    let r = take_reply(&mut buf, 0)?;
    buf.is_empty().then_some(r)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn take_u32(buf: &mut &[u8]) -> Option<usize> {
    take(buf, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn take_text(buf: &mut &[u8]) -> Option<String> {
    let n = take_u32(buf)?;
    String::from_utf8(take(buf, n)?.to_vec()).ok()
}

fn take_reply(buf: &mut &[u8], depth: usize) -> Option<Reply> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match take(buf, 1)?[0] {
        0 => Reply::Null,
        1 => Reply::Int(i64::from_le_bytes(take(buf, 8)?.try_into().ok()?)),
        2 => {
            let n = take_u32(buf)?;
            Reply::Bulk(take(buf, n)?.to_vec())
        }
        3 => Reply::Status(take_text(buf)?),
        4 => Reply::Error(take_text(buf)?),
        5 => {
            let n = take_u32(buf)?;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(take_reply(buf, depth + 1)?);
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
