//! `KeyType`: the Redis type of a key as RedisGears 1.2 names it, with the one-byte code
//! the key columns, the wire codec and the Arrow `type` dictionary use. Depends on nothing.

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

/// Every type name, in code order (the Arrow `type` column's dictionary).
pub const KEY_TYPE_NAMES: [&str; 8] = [
    "string", "hash", "list", "set", "zset", "module", "unknown", "empty",
];

impl KeyType {
    /// The `type` field text of a 1.2 record.
    pub fn name(self) -> &'static str {
        KEY_TYPE_NAMES[self as usize]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for (c, name) in KEY_TYPE_NAMES.iter().enumerate() {
            let t = KeyType::from_code(c as u8).expect("code");
            assert_eq!((t.code(), t.name()), (c as u8, *name));
        }
        assert_eq!(KeyType::from_code(8), None);
    }
}
