//! Byte codecs for what the module reads from outside the process: cluster bus messages
//! ([`bus`]), the replies they carry ([`reply`]), the sessions blob of the RDB aux data,
//! replication and AOF ([`sessions`]), requirement packages with their wheels
//! ([`requirements`]), time-event values ([`time_event`]), and the ACL
//! identity all of them carry ([`run_as`]).
//!
//! They live here, not in the module, so that cargo-fuzz targets (`fuzz/`) and stable
//! property tests (`engine/tests/wire_props.rs`) reach them without Redis or Python: the
//! module crate links redis-module, whose allocator aborts outside a server. None of them
//! trusts its input: malformed bytes decode to `None`, never a panic, and a length field
//! never sizes an allocation beyond a small cap before the bytes behind it are read.
//!
//! Integers are little-endian; a field is a `u32` length then its bytes.

pub mod bus;
pub mod reply;
pub mod requirements;
pub mod run_as;
pub mod sessions;
pub mod time_event;

pub use reply::Reply;
pub use run_as::RunAs;

/// A cursor over untrusted bytes: every read checks the remaining length.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    /// A length-prefixed field.
    pub(crate) fn field(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A length-prefixed UTF-8 field.
    pub(crate) fn text(&mut self) -> Option<String> {
        String::from_utf8(self.field()?.to_vec()).ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Appends a length-prefixed field.
pub(crate) fn put(out: &mut Vec<u8>, field: &[u8]) {
    put_count(out, field.len());
    out.extend_from_slice(field);
}

/// Appends a count (of bytes or items) as a `u32`.
pub(crate) fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}
