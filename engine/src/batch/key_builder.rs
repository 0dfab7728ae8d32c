//! `KeyBuilder`: what Redis readers fill, row by row, to make a [`KeyColumns`].
//!
//! Each column is built as Arrow buffers (int32 offsets + bytes, one-byte type codes), so
//! [`KeyBuilder::finish`] hands the vectors to Arrow arrays without copying them (plain
//! vectors, not from the buffer pool; each `push_*` is the one copy of a reader's bytes
//! into the batch). Rows can
//! be read back while the builder is still being filled (`row(i)`): keyspace events run
//! each row as soon as it is read. Depends on `keys`, `nested`, `key_type` and `error`.

use arrow_array::{BinaryArray, UInt8Array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};

use super::keys::{KeyColumns, KeyRow, KeyValues, ValueRef};
use super::nested::Nested;
use super::KeyType;
use crate::error::{EngineError, Result};

/// Byte strings as Arrow offsets + data, being appended to.
#[derive(Debug, Clone)]
pub(crate) struct ByteBuf {
    offsets: Vec<i32>,
    data: Vec<u8>,
}

impl Default for ByteBuf {
    fn default() -> Self {
        ByteBuf {
            offsets: vec![0],
            data: Vec::new(),
        }
    }
}

impl ByteBuf {
    fn with_capacity(items: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(items + 1);
        offsets.push(0);
        ByteBuf {
            offsets,
            data: Vec::with_capacity(bytes),
        }
    }

    /// Appends `v`; false (nothing appended) if the column would pass Arrow's 2 GiB.
    fn push(&mut self, v: &[u8]) -> bool {
        let Ok(end) = i32::try_from(self.data.len() + v.len()) else {
            return false;
        };
        self.data.extend_from_slice(v);
        self.offsets.push(end);
        true
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn clear(&mut self) {
        self.offsets.truncate(1);
        self.data.clear();
    }

    fn capacity_bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.data.capacity()
    }

    fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The array, taking the vectors as they are (no copy).
    fn finish(self, nulls: Option<NullBuffer>) -> BinaryArray {
        let offsets = OffsetBuffer::new(ScalarBuffer::from(self.offsets));
        BinaryArray::new(offsets, Buffer::from_vec(self.data), nulls)
    }
}

/// Per-row ranges of child items (hash entries, list items) being appended to.
#[derive(Debug, Clone)]
struct NestedBuf {
    /// Row `i` owns child items `offsets[i]..offsets[i+1]`; the last row is still open.
    offsets: Vec<i32>,
    children: Vec<ByteBuf>,
}

impl NestedBuf {
    fn new(children: usize) -> Self {
        NestedBuf {
            offsets: vec![0],
            children: vec![ByteBuf::default(); children],
        }
    }

    fn clear(&mut self) {
        self.offsets.truncate(1);
        self.children.iter_mut().for_each(ByteBuf::clear);
    }

    fn capacity_bytes(&self) -> usize {
        self.offsets.capacity() * 4
            + self
                .children
                .iter()
                .map(ByteBuf::capacity_bytes)
                .sum::<usize>()
    }

    /// Room for `rows` rows and `items` items whose children take `bytes` bytes each.
    fn with_capacity(rows: usize, items: usize, bytes: &[usize]) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        NestedBuf {
            offsets,
            children: bytes
                .iter()
                .map(|&b| ByteBuf::with_capacity(items, b))
                .collect(),
        }
    }

    fn items(&self) -> usize {
        self.children.first().map_or(0, ByteBuf::len)
    }

    fn child_bytes(&self, i: usize) -> usize {
        self.children.get(i).map_or(0, |c| c.data.len())
    }

    fn open_row(&mut self) {
        let last = *self.offsets.last().unwrap_or(&0);
        self.offsets.push(last);
    }

    /// Appends one item (one byte string per child) to the open row.
    fn push(&mut self, items: &[&[u8]]) -> bool {
        let fits = self
            .children
            .iter()
            .zip(items)
            .all(|(c, v)| i32::try_from(c.data.len() + v.len()).is_ok());
        if !fits {
            return false;
        }
        if self.offsets.len() < 2 {
            return true; // no row started: nothing to add to
        }
        for (c, v) in self.children.iter_mut().zip(items) {
            c.push(v);
        }
        if let Some(last) = self.offsets.last_mut() {
            *last += 1;
        }
        true
    }

    fn range(&self, row: usize) -> std::ops::Range<usize> {
        self.offsets[row] as usize..self.offsets[row + 1] as usize
    }

    fn finish(self, nulls: Option<NullBuffer>) -> Nested {
        Nested {
            offsets: OffsetBuffer::new(ScalarBuffer::from(self.offsets)),
            nulls,
            children: self.children.into_iter().map(|c| c.finish(None)).collect(),
        }
    }
}

/// Value columns being built: every row has a slot in each (Arrow's sparse-union shape);
/// only the one of the row's type is set.
#[derive(Debug, Clone)]
struct ValueBuf {
    strings: ByteBuf,
    hashes: NestedBuf,
    lists: NestedBuf,
}

impl ValueBuf {
    fn new() -> Self {
        ValueBuf {
            strings: ByteBuf::default(),
            hashes: NestedBuf::new(2),
            lists: NestedBuf::new(1),
        }
    }

    fn sized(s: &BuilderSizes) -> Self {
        ValueBuf {
            strings: ByteBuf::with_capacity(s.rows, s.string_bytes),
            hashes: NestedBuf::with_capacity(s.rows, s.hash_items, &s.hash_bytes),
            lists: NestedBuf::with_capacity(s.rows, s.list_items, &[s.list_bytes]),
        }
    }

    fn work_done(&self) -> usize {
        self.strings.data.len()
            + self.hashes.child_bytes(0)
            + self.hashes.child_bytes(1)
            + self.hashes.items()
            + self.lists.child_bytes(0)
            + self.lists.items()
    }
}

/// The sizes a builder reached, to size the next one up front: a scan's batches are much
/// alike, and growing a dozen vectors by doubling cost a realloc and a copy each time
/// (perf, issue #13). Each figure is capped, so one huge key does not make every later
/// batch reserve as much.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuilderSizes {
    rows: usize,
    key_bytes: usize,
    string_bytes: usize,
    hash_items: usize,
    hash_bytes: [usize; 2],
    list_items: usize,
    list_bytes: usize,
}

impl BuilderSizes {
    fn with_room(&self) -> Self {
        let r = |n: usize| n + n / 8;
        BuilderSizes {
            rows: r(self.rows),
            key_bytes: r(self.key_bytes),
            string_bytes: r(self.string_bytes),
            hash_items: r(self.hash_items),
            hash_bytes: self.hash_bytes.map(r),
            list_items: r(self.list_items),
            list_bytes: r(self.list_bytes),
        }
    }
}

/// The most any one vector of a builder is sized up front (items or bytes).
const SIZE_CAP: usize = 1 << 20;

/// Reader output being built: one row per key.
#[derive(Debug, Clone)]
pub struct KeyBuilder {
    keys: ByteBuf,
    types: Vec<u8>,
    /// `None` when the reader runs with `readValue=False`.
    values: Option<ValueBuf>,
    /// The keyspace event of each row (registrations); `None` for `run()`.
    events: Option<ByteBuf>,
    /// A column passed 2 GiB: the pushed data was left out and `finish` fails.
    overflow: bool,
}

impl KeyBuilder {
    pub fn new(read_value: bool) -> Self {
        KeyBuilder {
            keys: ByteBuf::default(),
            types: Vec::new(),
            values: read_value.then(ValueBuf::new),
            events: None,
            overflow: false,
        }
    }

    /// Removes every row, keeping the vectors' capacity (a thread's sync events reuse one
    /// builder instead of regrowing a new one). An events column stays, empty: use it for
    /// builders whose rows all carry events.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.types.clear();
        if let Some(v) = &mut self.values {
            v.strings.clear();
            v.hashes.clear();
            v.lists.clear();
        }
        if let Some(e) = &mut self.events {
            e.clear();
        }
        self.overflow = false;
    }

    /// The bytes its vectors hold (capacity, not length): what a cleared builder keeps.
    pub fn capacity_bytes(&self) -> usize {
        let values = self.values.as_ref().map_or(0, |v| {
            v.strings.capacity_bytes() + v.hashes.capacity_bytes() + v.lists.capacity_bytes()
        });
        let events = self.events.as_ref().map_or(0, ByteBuf::capacity_bytes);
        self.keys.capacity_bytes() + self.types.capacity() + values + events
    }

    /// A builder with room for what `sizes` (from an earlier builder) held, and an eighth
    /// more: the next batch of a scan is often a little bigger.
    pub fn sized(read_value: bool, sizes: &BuilderSizes) -> Self {
        let sizes = &sizes.with_room();
        KeyBuilder {
            keys: ByteBuf::with_capacity(sizes.rows, sizes.key_bytes),
            types: Vec::with_capacity(sizes.rows),
            values: read_value.then(|| ValueBuf::sized(sizes)),
            events: None,
            overflow: false,
        }
    }

    /// What this builder holds now, capped, for [`KeyBuilder::sized`].
    pub fn sizes(&self) -> BuilderSizes {
        let cap = |n: usize| n.min(SIZE_CAP);
        let mut s = BuilderSizes {
            rows: cap(self.len()),
            key_bytes: cap(self.keys.data.len()),
            ..BuilderSizes::default()
        };
        if let Some(v) = &self.values {
            s.string_bytes = cap(v.strings.data.len());
            s.hash_items = cap(v.hashes.items());
            s.hash_bytes = [cap(v.hashes.child_bytes(0)), cap(v.hashes.child_bytes(1))];
            s.list_items = cap(v.lists.items());
            s.list_bytes = cap(v.lists.child_bytes(0));
        }
        s
    }

    /// A scan's measure of the work done so far: the bytes of key names and values read,
    /// plus one per hash field and list item (a list of empty strings is work too).
    pub fn work_done(&self) -> usize {
        self.keys.data.len() + self.values.as_ref().map_or(0, ValueBuf::work_done)
    }

    /// Whether rows carry values (`readValue=True`).
    pub fn read_value(&self) -> bool {
        self.values.is_some()
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Starts a row. With values, its value (by type) is pushed next: `push_str` once for
    /// a string, `push_field` per hash field, `push_item` per list element.
    pub fn push_key(&mut self, key: &[u8], t: KeyType) {
        self.overflow |= !self.keys.push(key);
        if self.keys.len() == self.types.len() {
            self.keys.push(&[]); // the key did not fit: keep the columns aligned
        }
        self.types.push(t.code());
        if let Some(v) = &mut self.values {
            v.strings.push(&[]);
            v.hashes.open_row();
            v.lists.open_row();
        }
    }

    /// Sets the value of the row just started (a string key).
    pub fn push_str(&mut self, value: &[u8]) {
        let Some(v) = &mut self.values else { return };
        let s = &mut v.strings;
        let start = s.offsets[s.len() - 1] as usize;
        match i32::try_from(start + value.len()) {
            Ok(end) => {
                s.data.truncate(start);
                s.data.extend_from_slice(value);
                if let Some(last) = s.offsets.last_mut() {
                    *last = end;
                }
            }
            Err(_) => self.overflow = true,
        }
    }

    /// Adds a field to the row just started (a hash key).
    pub fn push_field(&mut self, field: &[u8], value: &[u8]) {
        if let Some(v) = &mut self.values {
            self.overflow |= !v.hashes.push(&[field, value]);
        }
    }

    /// Adds an element to the row just started (a list key).
    pub fn push_item(&mut self, item: &[u8]) {
        if let Some(v) = &mut self.values {
            self.overflow |= !v.lists.push(&[item]);
        }
    }

    /// Records the event of the row just pushed (call once per row, or never).
    pub fn push_event(&mut self, event: &[u8]) {
        let e = self.events.get_or_insert_with(ByteBuf::default);
        if !e.push(event) {
            self.overflow = true;
            e.push(&[]);
        }
    }

    pub fn key(&self, i: usize) -> &[u8] {
        self.keys.get(i)
    }

    pub fn key_type(&self, i: usize) -> KeyType {
        KeyType::from_code(self.types[i]).unwrap_or(KeyType::Unknown)
    }

    /// A borrowed view of row `i` (`i < len()`).
    pub fn row(&self, i: usize) -> KeyRow<'_> {
        let key_type = self.key_type(i);
        let value = self.values.as_ref().map(|v| match key_type {
            KeyType::String => ValueRef::Str(v.strings.get(i)),
            KeyType::Hash => {
                let [f, val] = &v.hashes.children[..] else {
                    return ValueRef::None;
                };
                ValueRef::Hash(v.hashes.range(i).map(|j| (f.get(j), val.get(j))).collect())
            }
            KeyType::List => {
                let items = &v.lists.children[0];
                ValueRef::List(v.lists.range(i).map(|j| items.get(j)).collect())
            }
            _ => ValueRef::None,
        });
        KeyRow {
            key: self.keys.get(i),
            key_type,
            value,
            event: self.events.as_ref().map(|e| e.get(i)),
        }
    }

    /// The columns, as Arrow arrays over the builder's own buffers. Fails if a column
    /// passed Arrow's 2 GiB offset limit, or if events were recorded for only some rows.
    pub fn finish(self) -> Result<KeyColumns> {
        if self.overflow {
            return Err(EngineError::ResourcesExhausted(
                "a batch of keys passed 2 GiB in one column".into(),
            ));
        }
        let n = self.types.len();
        if self.events.as_ref().is_some_and(|e| e.len() != n) {
            return Err(EngineError::Internal(
                "key batch events do not match its rows".into(),
            ));
        }
        let values = self.values.map(|v| {
            let valid = |t: KeyType| nulls_where(&self.types, t);
            KeyValues {
                strings: v.strings.finish(valid(KeyType::String)),
                hashes: v.hashes.finish(valid(KeyType::Hash)),
                lists: v.lists.finish(valid(KeyType::List)),
            }
        });
        Ok(KeyColumns::from_arrays(
            self.keys.finish(None),
            UInt8Array::new(ScalarBuffer::from(self.types), None),
            values,
            self.events.map(|e| e.finish(None)),
        ))
    }
}

/// Validity of a value column: set on rows of type `t`; `None` when every row is. A
/// column no row uses is all null without a pass over the rows.
pub(crate) fn nulls_where(types: &[u8], t: KeyType) -> Option<NullBuffer> {
    let code = t.code();
    if !types.contains(&code) {
        return (!types.is_empty()).then(|| NullBuffer::new_null(types.len()));
    }
    if types.iter().all(|&c| c == code) {
        return None;
    }
    Some(NullBuffer::new(BooleanBuffer::collect_bool(
        types.len(),
        |i| types[i] == code,
    )))
}
