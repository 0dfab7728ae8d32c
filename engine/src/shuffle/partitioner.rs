//! Redis Cluster key → slot → shard mapping: CRC16 (XMODEM) of the key or of its
//! `{hashtag}`, modulo 16384, exactly as Redis computes it.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM: poly 0x1021, init 0), the checksum Redis Cluster uses.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of `key`: only the part inside the first `{...}` counts when that part
/// is non-empty.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&c| c == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&c| c == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) & (SLOTS as u16 - 1)
}

/// Chooses the destination shard of a key.
pub trait Partitioner: Send + Sync {
    fn shard_of(&self, key: &[u8]) -> usize;
}

/// Slot ownership: which shard owns each of the 16384 slots.
#[derive(Debug, Clone)]
pub struct SlotMap {
    owner: Vec<u16>,
}

impl SlotMap {
    /// Slots split into `shards` contiguous ranges, as `redis-cli --cluster create` does.
    pub fn even(shards: usize) -> SlotMap {
        let shards = shards.max(1);
        // redis-cli's split: shard i ends at round(i * per + per - 1) and the last shard
        // takes the rest (3 shards: 0-5460, 5461-10922, 10923-16383). A plain
        // `slot * shards / SLOTS` rounds down instead and is off by one slot at boundaries.
        let per = SLOTS as f64 / shards as f64;
        let mut owner = vec![0u16; SLOTS];
        let (mut first, mut cursor) = (0usize, 0.0f64);
        for shard in 0..shards {
            let last = if shard == shards - 1 {
                SLOTS - 1
            } else {
                ((cursor + per - 1.0).round() as usize).min(SLOTS - 1)
            };
            for o in owner.iter_mut().take(last + 1).skip(first) {
                *o = shard as u16;
            }
            first = last + 1;
            cursor += per;
        }
        SlotMap { owner }
    }

    /// From explicit `(first_slot, last_slot, shard)` ranges; unassigned slots go to 0.
    pub fn from_ranges(ranges: &[(u16, u16, usize)]) -> SlotMap {
        let mut owner = vec![0u16; SLOTS];
        for &(a, b, shard) in ranges {
            for s in a..=b.min(SLOTS as u16 - 1) {
                owner[s as usize] = shard as u16;
            }
        }
        SlotMap { owner }
    }

    pub fn owner_of_slot(&self, slot: u16) -> usize {
        self.owner[slot as usize] as usize
    }
}

impl Partitioner for SlotMap {
    fn shard_of(&self, key: &[u8]) -> usize {
        self.owner_of_slot(key_hash_slot(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from CLUSTER KEYSLOT on a real server (and the seed walkthrough).
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_hash_slot(b"Smith"), 14205);
        assert_eq!(key_hash_slot(b"Sanchez"), 9503);
        assert_eq!(key_hash_slot(b"Pibbles"), 169);
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(
            key_hash_slot(b"{user1000}.following"),
            key_hash_slot(b"user1000")
        );
        assert_eq!(key_hash_slot(b"foo{}{bar}"), key_hash_slot(b"foo{}{bar}"));
        assert_ne!(key_hash_slot(b"foo{}{bar}"), key_hash_slot(b"bar"));
        assert_eq!(key_hash_slot(b"06S"), 0);
    }

    #[test]
    fn even_map_covers_every_shard() {
        let m = SlotMap::even(3);
        assert_eq!(m.owner_of_slot(0), 0);
        assert_eq!(m.owner_of_slot(16383), 2);
        assert_eq!(m.owner_of_slot(5461), 1);
        // redis-cli --cluster create's boundaries: 0-5460, 5461-10922, 10923-16383.
        assert_eq!(m.owner_of_slot(5460), 0);
        assert_eq!(m.owner_of_slot(10922), 1);
        assert_eq!(m.owner_of_slot(10923), 2);
        let two = SlotMap::even(2);
        assert_eq!((two.owner_of_slot(8191), two.owner_of_slot(8192)), (0, 1));
    }
}
