//! The byte-level pieces of shuffle frames: little-endian writers for counts, byte strings,
//! partition-key columns and tagged [`Datum`]s, and [`Reader`], which reads them back
//! checking every length against what remains (malformed input is an error, never a
//! panic). Depends on `batch` (`BinaryColumn`), `datum` and `error`.

use crate::batch::BinaryColumn;
use crate::datum::Datum;
use crate::error::{EngineError, Result};

/// Datums nest at most this deep on the wire.
const MAX_DEPTH: usize = 64;

/// The error for a frame that does not parse.
pub(super) fn bad(what: &str) -> EngineError {
    EngineError::Execution(format!("malformed shuffle frame: {what}"))
}

pub(super) fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

pub(super) fn put_column(out: &mut Vec<u8>, c: &BinaryColumn) {
    let (offsets, data) = c.parts();
    put_u32(out, offsets.len());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    put_bytes(out, data);
}

pub(super) fn put_datum(out: &mut Vec<u8>, d: &Datum) {
    match d {
        Datum::Null => out.push(0),
        Datum::Bool(b) => out.extend_from_slice(&[1, *b as u8]),
        Datum::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Datum::Float(f) => {
            out.push(3);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Datum::Str(s) => {
            out.push(4);
            put_bytes(out, s.as_bytes());
        }
        Datum::Bytes(b) => {
            out.push(5);
            put_bytes(out, b);
        }
        Datum::List(items) => {
            out.push(6);
            put_u32(out, items.len());
            for i in items {
                put_datum(out, i);
            }
        }
        Datum::Map(items) => {
            out.push(7);
            put_u32(out, items.len());
            for (k, v) in items {
                put_bytes(out, k.as_bytes());
                put_datum(out, v);
            }
        }
    }
}

/// Reads a frame front to back; `pos` is where it is (for slicing the frame's buffer).
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            len: buf.len(),
        }
    }

    /// Bytes read so far.
    pub(super) fn pos(&self) -> usize {
        self.len - self.buf.len()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(bad("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// As [`take`](Self::take), with where the bytes start.
    pub(super) fn take_at(&mut self, n: usize) -> Result<(usize, &'a [u8])> {
        let at = self.pos();
        Ok((at, self.take(n)?))
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of items each at least `min_size` bytes long, checked against what is left.
    pub(super) fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.buf.len() {
            return Err(bad("count exceeds frame"));
        }
        Ok(n)
    }

    pub(super) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    pub(super) fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("invalid utf-8"))
    }

    pub(super) fn column(&mut self) -> Result<BinaryColumn> {
        let n = self.count(4)?;
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            offsets.push(self.u32()?);
        }
        let data = self.bytes()?.to_vec();
        BinaryColumn::from_parts(offsets, data).ok_or_else(|| bad("bad column offsets"))
    }

    pub(super) fn datum(&mut self, depth: usize) -> Result<Datum> {
        if depth > MAX_DEPTH {
            return Err(bad("nesting too deep"));
        }
        Ok(match self.u8()? {
            0 => Datum::Null,
            1 => Datum::Bool(self.u8()? != 0),
            2 => Datum::Int(i64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| bad("int"))?,
            )),
            3 => Datum::Float(f64::from_le_bytes(
                self.take(8)?.try_into().map_err(|_| bad("float"))?,
            )),
            4 => Datum::Str(self.string()?),
            5 => Datum::Bytes(self.bytes()?.to_vec()),
            6 => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.datum(depth + 1)?);
                }
                Datum::List(items)
            }
            7 => {
                let n = self.count(5)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.string()?;
                    items.push((k, self.datum(depth + 1)?));
                }
                Datum::Map(items)
            }
            _ => return Err(bad("unknown datum tag")),
        })
    }
}
