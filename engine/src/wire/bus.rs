//! Messages between shards on the cluster bus: their wire form. Dispatch lives in the
//! module (`module/src/cluster/bus.rs`).
//!
//! Every payload starts with `GS`, a version byte and a kind, then length-prefixed fields
//! (little-endian). Decoding never trusts the input: a malformed message is `None`.
//!
//! A shuffle frame message has a fixed header of [`FRAME_HEADER_LEN`] bytes before its
//! bundle, so a sender writes the header in place into room it left before the bundle
//! ([`write_frame_header`]) and a receiver reads it in place ([`read_frame_header`]):
//! the bundle never moves to become, or stop being, a message.

use super::run_as::{self, RunAs};
use super::{put, put_count, Reader};

/// A distributed execution as shipped to every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrder {
    pub id: String,
    /// The initiator's index in `shards`.
    pub initiator: u32,
    /// Node ids in index order.
    pub shards: Vec<String>,
    /// Slot ranges `(first, last, index)`.
    pub ranges: Vec<(u16, u16, u32)>,
    /// The cloudpickled run.
    pub wire: Vec<u8>,
    /// Who the run runs as on every shard (`crate::acl`).
    pub run_as: RunAs,
    /// How deeply the run is nested (0: a top-level run; `n`: started by a `run()` inside
    /// a run at depth `n - 1`): every shard runs its part on its pool for that depth.
    pub depth: u32,
}

/// A registration's distributed run (REFERENCE §7: a registered plan ships as its
/// registration id): every shard starts the registration's plan under execution `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredOrder {
    pub id: String,
    /// The initiator's index in `shards`.
    pub initiator: u32,
    /// Node ids in index order.
    pub shards: Vec<String>,
    /// Slot ranges `(first, last, index)`.
    pub ranges: Vec<(u16, u16, u32)>,
    /// The registration whose plan runs (same id on every shard).
    pub registration: String,
    /// The record every shard's reader yields (a CommandReader trigger's
    /// `[trigger, args...]`); `None`: the reader yields nothing (a KeysReader event's
    /// other shards).
    pub record: Option<Vec<Vec<u8>>>,
}

/// What one shard tells another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A shuffle bundle for channel (`exec`, `step`) from shard index `from`.
    Frame {
        exec: u64,
        step: u32,
        from: u32,
        frame: Vec<u8>,
    },
    /// Shard `from` took `n` of the receiver's bundles on channel (`exec`, `step`): `n`
    /// more may be in flight (the shuffle's flow control).
    Credit {
        exec: u64,
        step: u32,
        from: u32,
        n: u32,
    },
    /// Run a part of a distributed execution.
    Run(RunOrder),
    /// Run a part of a registration's distributed execution.
    RunRegistered(RegisteredOrder),
    /// A shard finished its part of execution `id`.
    Done { id: String },
    /// The sender's part of execution `id` is still running (a heartbeat).
    Alive { id: String },
    /// Shard `from` could not run its part of execution `id`.
    PartFailed {
        id: String,
        from: u32,
        error: String,
    },
    /// A question for this shard; answer with `Answer { req, .. }`.
    Ask { req: u64, query: Query },
    /// The answer to request `req` (a reply in `ask::encode_reply`'s form).
    Answer { req: u64, reply: Vec<u8> },
    /// Drop a registration (`abortpending` as in RG.UNREGISTER).
    Unregister { id: String, abort_pending: bool },
}

/// What a shard is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `RG.GETEXECUTION <id> SHARD` on that shard.
    GetExecution(String),
    /// `RG.DROPEXECUTION <id>` on that shard (unknown ids are fine there).
    DropExecution(String),
    /// `RG.ABORTEXECUTION <id>` on that shard.
    AbortExecution(String),
    /// Install this session blob (a registration made on the asking shard).
    Session(Vec<u8>),
    /// Run this command here as this user (a flow's `execute()` on a key this shard owns).
    Call(RunAs, Vec<Vec<u8>>),
    /// `RG.PAUSEREGISTRATIONS <id>` (true) or `RG.UNPAUSEREGISTRATIONS <id>` (false).
    Pause(String, bool),
    /// `RG.CLEARREGISTRATIONSSTATS`.
    ClearStats,
    /// Install these REQUIREMENTS (pip, on a worker) before a script that needs them runs.
    Install(Vec<String>),
    /// Install these requirement packages (`requirements::encode_list`: wheels included, no
    /// download) before a script that needs them runs, or for RG.PYIMPORTREQ.
    Import(Vec<u8>),
    /// Is this shard's part of the execution still running? (`1` or `0`)
    IsRunning(String),
    /// This shard's run id (RG.INFOCLUSTER lists every shard's).
    RunId,
}

const MAGIC: &[u8; 2] = b"GS";
/// 2: runs and forwarded calls carry the ACL user they run as. 3: registered runs.
/// 4: shuffle credits (and shuffle frames v2).
const VERSION: u8 = 4;
const KIND_FRAME: u8 = 1;

/// Bytes before the bundle in a frame message: magic, version, kind, exec, step, from,
/// bundle length.
pub const FRAME_HEADER_LEN: usize = 24;

/// A frame message's header: the bundle's channel and sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub exec: u64,
    pub step: u32,
    pub from: u32,
}

/// Writes a frame message's header into the first [`FRAME_HEADER_LEN`] bytes of `buf`,
/// whose rest is the bundle: `buf` is then the whole message. False (nothing written):
/// `buf` has no room for the header, or the bundle is 4 GiB or more.
pub fn write_frame_header(buf: &mut [u8], h: FrameHeader) -> bool {
    let Some(len) = buf
        .len()
        .checked_sub(FRAME_HEADER_LEN)
        .and_then(|n| u32::try_from(n).ok())
    else {
        return false;
    };
    let head = &mut buf[..FRAME_HEADER_LEN];
    head[..2].copy_from_slice(MAGIC);
    head[2] = VERSION;
    head[3] = KIND_FRAME;
    head[4..12].copy_from_slice(&h.exec.to_le_bytes());
    head[12..16].copy_from_slice(&h.step.to_le_bytes());
    head[16..20].copy_from_slice(&h.from.to_le_bytes());
    head[20..24].copy_from_slice(&len.to_le_bytes());
    true
}

/// Reads a frame message's header in place; the bundle is `payload[FRAME_HEADER_LEN..]`.
/// `None`: not a frame message, or its length does not match the payload.
pub fn read_frame_header(payload: &[u8]) -> Option<FrameHeader> {
    let mut r = Reader(payload);
    if r.take(2)? != MAGIC || r.u8()? != VERSION || r.u8()? != KIND_FRAME {
        return None;
    }
    let h = FrameHeader {
        exec: r.u64()?,
        step: r.u32()?,
        from: r.u32()?,
    };
    let len = r.u32()? as usize;
    (len == payload.len() - FRAME_HEADER_LEN).then_some(h)
}

impl Message {
    /// The wire form; a frame message's buffer comes from `pool::global()` (give it back
    /// with `recycle` once sent).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = match self {
            Message::Frame { frame, .. } => crate::pool::global().take_vec(frame.len() + 32),
            _ => Vec::with_capacity(64),
        };
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self {
            Message::Frame {
                exec,
                step,
                from,
                frame,
            } => {
                out.push(KIND_FRAME);
                out.extend_from_slice(&exec.to_le_bytes());
                out.extend_from_slice(&step.to_le_bytes());
                out.extend_from_slice(&from.to_le_bytes());
                put(&mut out, frame);
            }
            Message::Credit {
                exec,
                step,
                from,
                n,
            } => {
                out.push(10);
                out.extend_from_slice(&exec.to_le_bytes());
                out.extend_from_slice(&step.to_le_bytes());
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
            }
            Message::Run(RunOrder {
                id,
                initiator,
                shards,
                ranges,
                wire,
                run_as,
                depth,
            }) => {
                out.push(2);
                put_parts(&mut out, id, *initiator, shards, ranges);
                put(&mut out, wire);
                put(&mut out, &run_as::encode(run_as));
                out.extend_from_slice(&depth.to_le_bytes());
            }
            Message::RunRegistered(RegisteredOrder {
                id,
                initiator,
                shards,
                ranges,
                registration,
                record,
            }) => {
                out.push(9);
                put_parts(&mut out, id, *initiator, shards, ranges);
                put(&mut out, registration.as_bytes());
                match record {
                    Some(items) => {
                        out.push(1);
                        put(&mut out, &put_list(items));
                    }
                    None => out.push(0),
                }
            }
            Message::Done { id } => {
                out.push(3);
                put(&mut out, id.as_bytes());
            }
            Message::Alive { id } => {
                out.push(8);
                put(&mut out, id.as_bytes());
            }
            Message::PartFailed { id, from, error } => {
                out.push(7);
                put(&mut out, id.as_bytes());
                out.extend_from_slice(&from.to_le_bytes());
                put(&mut out, error.as_bytes());
            }
            Message::Ask { req, query } => {
                out.push(4);
                out.extend_from_slice(&req.to_le_bytes());
                let args;
                let (kind, field) = match query {
                    Query::Pause(id, true) => (5u8, id.as_bytes()),
                    Query::Pause(id, false) => (6, id.as_bytes()),
                    Query::ClearStats => (7, &[][..]),
                    Query::IsRunning(id) => (9, id.as_bytes()),
                    Query::RunId => (11, &[][..]),
                    Query::GetExecution(id) => (0, id.as_bytes()),
                    Query::DropExecution(id) => (1, id.as_bytes()),
                    Query::AbortExecution(id) => (2, id.as_bytes()),
                    Query::Session(blob) => (3, blob.as_slice()),
                    Query::Call(run_as, argv) => {
                        let user = run_as::encode(run_as);
                        args = put_list(std::iter::once(&user).chain(argv));
                        (10, args.as_slice())
                    }
                    Query::Install(names) => {
                        args = put_list(names.iter().map(|n| n.as_bytes()));
                        (8, args.as_slice())
                    }
                    Query::Import(blob) => (12, blob.as_slice()),
                };
                out.push(kind);
                put(&mut out, field);
            }
            Message::Answer { req, reply } => {
                out.push(6);
                out.extend_from_slice(&req.to_le_bytes());
                put(&mut out, reply);
            }
            Message::Unregister { id, abort_pending } => {
                out.push(5);
                put(&mut out, id.as_bytes());
                out.push(u8::from(*abort_pending));
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let mut r = Reader(bytes);
        if r.take(2)? != MAGIC || r.u8()? != VERSION {
            return None;
        }
        let m = match r.u8()? {
            KIND_FRAME => Message::Frame {
                exec: r.u64()?,
                step: r.u32()?,
                from: r.u32()?,
                // The receive copy comes from the pool; the shuffle gives it back once decoded.
                frame: crate::pool::global().copy_of(r.field()?),
            },
            10 => Message::Credit {
                exec: r.u64()?,
                step: r.u32()?,
                from: r.u32()?,
                n: r.u32()?,
            },
            2 => {
                let (id, initiator, shards, ranges) = take_parts(&mut r)?;
                Message::Run(RunOrder {
                    id,
                    initiator,
                    shards,
                    ranges,
                    wire: r.field()?.to_vec(),
                    run_as: run_as::decode(r.field()?)?,
                    depth: r.u32()?,
                })
            }
            9 => {
                let (id, initiator, shards, ranges) = take_parts(&mut r)?;
                let registration = r.text()?;
                let record = match r.u8()? {
                    0 => None,
                    1 => Some(take_list(r.field()?)?),
                    _ => return None,
                };
                Message::RunRegistered(RegisteredOrder {
                    id,
                    initiator,
                    shards,
                    ranges,
                    registration,
                    record,
                })
            }
            3 => Message::Done { id: r.text()? },
            8 => Message::Alive { id: r.text()? },
            7 => Message::PartFailed {
                id: r.text()?,
                from: r.u32()?,
                error: r.text()?,
            },
            4 => {
                let req = r.u64()?;
                let kind = r.u8()?;
                let field = r.field()?;
                let text = || String::from_utf8(field.to_vec()).ok();
                let query = match kind {
                    0 => Query::GetExecution(text()?),
                    1 => Query::DropExecution(text()?),
                    2 => Query::AbortExecution(text()?),
                    3 => Query::Session(field.to_vec()),
                    10 => {
                        let mut items = take_list(field)?.into_iter();
                        let run_as = run_as::decode(&items.next()?)?;
                        Query::Call(run_as, items.collect())
                    }
                    8 => Query::Install(
                        take_list(field)?
                            .into_iter()
                            .map(String::from_utf8)
                            .collect::<Result<_, _>>()
                            .ok()?,
                    ),
                    12 => Query::Import(field.to_vec()),
                    5 => Query::Pause(text()?, true),
                    6 => Query::Pause(text()?, false),
                    7 => Query::ClearStats,
                    9 => Query::IsRunning(text()?),
                    11 => Query::RunId,
                    _ => return None,
                };
                Message::Ask { req, query }
            }
            6 => Message::Answer {
                req: r.u64()?,
                reply: r.field()?.to_vec(),
            },
            5 => Message::Unregister {
                id: r.text()?,
                abort_pending: r.u8()? != 0,
            },
            _ => return None,
        };
        r.is_empty().then_some(m)
    }
}

/// Ranges `(first, last, shard index)`.
type Ranges = Vec<(u16, u16, u32)>;

/// A distributed run's id, initiator, shards and slot ranges.
fn put_parts(out: &mut Vec<u8>, id: &str, initiator: u32, shards: &[String], ranges: &Ranges) {
    put(out, id.as_bytes());
    out.extend_from_slice(&initiator.to_le_bytes());
    put_count(out, shards.len());
    for s in shards {
        put(out, s.as_bytes());
    }
    put_count(out, ranges.len());
    for (a, b, i) in ranges {
        out.extend_from_slice(&a.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
        out.extend_from_slice(&i.to_le_bytes());
    }
}

fn take_parts(r: &mut Reader<'_>) -> Option<(String, u32, Vec<String>, Ranges)> {
    let id = r.text()?;
    let initiator = r.u32()?;
    let n = r.u32()? as usize;
    let mut shards = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        shards.push(r.text()?);
    }
    let n = r.u32()? as usize;
    let mut ranges = Vec::with_capacity(n.min(16384));
    for _ in 0..n {
        ranges.push((r.u16()?, r.u16()?, r.u32()?));
    }
    Some((id, initiator, shards, ranges))
}

/// A list of byte strings as one field: a count, then each length-prefixed.
fn put_list<T: AsRef<[u8]>>(items: impl IntoIterator<Item = T>) -> Vec<u8> {
    let items: Vec<T> = items.into_iter().collect();
    let mut b = Vec::new();
    put_count(&mut b, items.len());
    for i in &items {
        put(&mut b, i.as_ref());
    }
    b
}

fn take_list(field: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut a = Reader(field);
    let n = a.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(a.field()?.to_vec());
    }
    a.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let all = [
            Message::Frame {
                exec: 7,
                step: 2,
                from: 1,
                frame: b"abc".to_vec(),
            },
            Message::Credit {
                exec: 7,
                step: 2,
                from: 0,
                n: 3,
            },
            Message::Run(RunOrder {
                id: "x-1".into(),
                initiator: 0,
                shards: vec!["a".into(), "b".into()],
                ranges: vec![(0, 8191, 0), (8192, 16383, 1)],
                wire: vec![1, 2, 3],
                run_as: RunAs::user("app"),
                depth: 2,
            }),
            Message::RunRegistered(RegisteredOrder {
                id: "x-3".into(),
                initiator: 1,
                shards: vec!["a".into(), "b".into()],
                ranges: vec![(0, 16383, 0)],
                registration: "r-1".into(),
                record: Some(vec![b"t".to_vec(), vec![], b"x".to_vec()]),
            }),
            Message::RunRegistered(RegisteredOrder {
                id: "x-4".into(),
                initiator: 0,
                shards: vec!["a".into()],
                ranges: vec![],
                registration: "r-2".into(),
                record: None,
            }),
            Message::Done { id: "x-1".into() },
            Message::PartFailed {
                id: "x-1".into(),
                from: 2,
                error: "boom".into(),
            },
            Message::Alive { id: "x-2".into() },
            Message::Ask {
                req: 3,
                query: Query::Session(vec![9; 10]),
            },
            Message::Ask {
                req: 4,
                query: Query::AbortExecution("e-1".into()),
            },
            Message::Answer {
                req: 3,
                reply: vec![0],
            },
            Message::Ask {
                req: 5,
                query: Query::Call(
                    RunAs::user("u"),
                    vec![b"SET".to_vec(), b"k".to_vec(), vec![]],
                ),
            },
            Message::Ask {
                req: 8,
                query: Query::Call(RunAs::Superuser, vec![b"PING".to_vec()]),
            },
            Message::Ask {
                req: 6,
                query: Query::Pause("r-1".into(), false),
            },
            Message::Ask {
                req: 7,
                query: Query::ClearStats,
            },
            Message::Ask {
                req: 9,
                query: Query::IsRunning("x-1".into()),
            },
            Message::Ask {
                req: 10,
                query: Query::RunId,
            },
            Message::Ask {
                req: 8,
                query: Query::Install(vec!["six".into(), "humanize".into()]),
            },
            Message::Ask {
                req: 9,
                query: Query::Import(vec![b'L', 1, 0, 0, 0, 0]),
            },
            Message::Unregister {
                id: "r".into(),
                abort_pending: true,
            },
        ];
        for m in all {
            let enc = m.encode();
            assert_eq!(Message::decode(&enc), Some(m.clone()));
            for cut in 0..enc.len() {
                assert_eq!(Message::decode(&enc[..cut]), None);
            }
        }
        assert_eq!(Message::decode(b"XX\x01\x03"), None);
    }
}
