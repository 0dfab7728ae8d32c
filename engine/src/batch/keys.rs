//! Key rows produced by Redis readers: key, type and (optionally) value columns.
//!
//! Values are flattened into one [`BinaryColumn`] of items with per-row offsets: a string
//! is one item, a hash alternates field and value, a list holds its elements, other types
//! hold none. The row's [`KeyType`] says how to read its items.

use super::BinaryColumn;

/// The Redis type of a key, as RedisGears 1.2 names it in records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    String,
    Hash,
    List,
    Set,
    ZSet,
    Module,
    /// Streams and anything else 1.2 does not name (⚠ 1.2 reports streams as `unknown`).
    Unknown,
    /// The key does not exist.
    Empty,
}

impl KeyType {
    /// The `type` field text of a 1.2 record.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::List => "list",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
            KeyType::Module => "module",
            KeyType::Unknown => "unknown",
            KeyType::Empty => "empty",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<KeyType> {
        use KeyType::*;
        [String, Hash, List, Set, ZSet, Module, Unknown, Empty]
            .get(c as usize)
            .copied()
    }
}

/// Flattened values: row `i` owns items `row_offsets[i]..row_offsets[i+1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueColumn {
    row_offsets: Vec<u32>,
    items: BinaryColumn,
}

impl ValueColumn {
    pub fn new() -> Self {
        ValueColumn {
            row_offsets: vec![0],
            items: BinaryColumn::default(),
        }
    }

    /// Appends one item to the row being built.
    pub fn push_item(&mut self, v: &[u8]) {
        self.items.push(v);
    }

    /// Closes the row being built.
    pub fn finish_row(&mut self) {
        self.row_offsets.push(self.items.len() as u32);
    }

    pub fn rows(&self) -> usize {
        self.row_offsets.len() - 1
    }

    pub fn row_items(&self, row: usize) -> impl Iterator<Item = &[u8]> + '_ {
        let (a, b) = (
            self.row_offsets[row] as usize,
            self.row_offsets[row + 1] as usize,
        );
        (a..b).map(move |i| self.items.get(i))
    }

    pub fn byte_len(&self) -> usize {
        self.items.byte_len()
    }

    fn copy_row(&self, row: usize, to: &mut ValueColumn) {
        for item in self.row_items(row) {
            to.push_item(item);
        }
        to.finish_row();
    }
}

/// Reader output: one row per key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyColumns {
    pub keys: BinaryColumn,
    pub types: Vec<KeyType>,
    /// `None` when the reader ran with `readValue=False`.
    pub values: Option<ValueColumn>,
    /// The keyspace event that produced each row (registrations); `None` for `run()`.
    pub events: Option<BinaryColumn>,
}

/// A borrowed view of a row's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef<'a> {
    None,
    Str(&'a [u8]),
    Hash(Vec<(&'a [u8], &'a [u8])>),
    List(Vec<&'a [u8]>),
}

/// A borrowed view of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow<'a> {
    pub key: &'a [u8],
    pub key_type: KeyType,
    /// `None` when values were not read.
    pub value: Option<ValueRef<'a>>,
    /// The triggering event, if any.
    pub event: Option<&'a [u8]>,
}

impl KeyColumns {
    pub fn new(read_value: bool) -> Self {
        KeyColumns {
            keys: BinaryColumn::default(),
            types: Vec::new(),
            values: read_value.then(ValueColumn::new),
            events: None,
        }
    }

    /// An empty set of columns shaped like `self` (values and events kept or not).
    fn empty_like(&self) -> KeyColumns {
        let mut k = KeyColumns::new(self.values.is_some());
        k.events = self.events.as_ref().map(|_| BinaryColumn::default());
        k
    }

    /// Records the event of the row just pushed (call once per row, or never).
    pub fn push_event(&mut self, event: &[u8]) {
        self.events
            .get_or_insert_with(BinaryColumn::default)
            .push(event);
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Starts a row; with values, push its items then call `values.finish_row()`.
    pub fn push_key(&mut self, key: &[u8], t: KeyType) {
        self.keys.push(key);
        self.types.push(t);
    }

    pub fn row(&self, i: usize) -> KeyRow<'_> {
        let key_type = self.types[i];
        let value = self.values.as_ref().map(|v| {
            let mut items = v.row_items(i);
            match key_type {
                KeyType::String => items.next().map(ValueRef::Str).unwrap_or(ValueRef::None),
                KeyType::Hash => {
                    let all: Vec<&[u8]> = items.collect();
                    ValueRef::Hash(
                        all.chunks(2)
                            .filter(|c| c.len() == 2)
                            .map(|c| (c[0], c[1]))
                            .collect(),
                    )
                }
                KeyType::List => ValueRef::List(items.collect()),
                _ => ValueRef::None,
            }
        });
        KeyRow {
            key: self.keys.get(i),
            key_type,
            value,
            event: self.events.as_ref().map(|e| e.get(i)),
        }
    }

    pub fn slice(self, start: usize, end: usize) -> KeyColumns {
        let mut out = self.empty_like();
        for i in start..end {
            self.copy_row(i, &mut out);
        }
        out
    }

    pub fn partition(self, dest: &[usize], n: usize) -> Vec<KeyColumns> {
        let mut out: Vec<KeyColumns> = (0..n).map(|_| self.empty_like()).collect();
        for (i, &to) in dest.iter().enumerate() {
            self.copy_row(i, &mut out[to]);
        }
        out
    }

    fn copy_row(&self, i: usize, to: &mut KeyColumns) {
        to.push_key(self.keys.get(i), self.types[i]);
        if let (Some(src), Some(dst)) = (&self.values, &mut to.values) {
            src.copy_row(i, dst);
        }
        if let (Some(src), Some(dst)) = (&self.events, &mut to.events) {
            dst.push(src.get(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_by_type() {
        let mut k = KeyColumns::new(true);
        k.push_key(b"s", KeyType::String);
        let v = k.values.as_mut().unwrap();
        v.push_item(b"bar");
        v.finish_row();
        k.push_key(b"h", KeyType::Hash);
        let v = k.values.as_mut().unwrap();
        for i in [&b"name"[..], b"Rick", b"age", b"70"] {
            v.push_item(i);
        }
        v.finish_row();
        k.push_key(b"z", KeyType::ZSet);
        k.values.as_mut().unwrap().finish_row();
        assert_eq!(k.row(0).value, Some(ValueRef::Str(b"bar")));
        assert_eq!(
            k.row(1).value,
            Some(ValueRef::Hash(vec![
                (&b"name"[..], &b"Rick"[..]),
                (b"age", b"70")
            ]))
        );
        assert_eq!(k.row(2).value, Some(ValueRef::None));
        let sliced = k.slice(1, 3);
        assert_eq!(sliced.len(), 2);
        assert_eq!(sliced.row(0).key, b"h");
    }
}
