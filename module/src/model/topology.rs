//! The cluster topology (docs/cluster.md): who owns which slots, this shard's id, and the
//! ids of executions and registrations, which carry it.
//!
//! Cluster mode is on when `CLUSTER SLOTS` shows more than one master (REFERENCE §7):
//! otherwise everything runs locally and ids use 40 zeros. The topology is re-read when a
//! script starts and on RG.REFRESHCLUSTER, always from a thread that holds no GIL.
//! Depends on `redis::call` (CLUSTER SLOTS / MYID) and the engine's slot map.

use std::sync::{Arc, RwLock};

use engine::shuffle::{key_hash_slot, SlotMap};
use gearpy::services::CallReply;

/// The shard id outside cluster mode (40 zeros, as 1.2).
pub const STANDALONE_SHARD_ID: &str = "0000000000000000000000000000000000000000";

/// One master of the cluster.
#[derive(Debug, Clone)]
pub struct Shard {
    pub id: String,
    pub ip: String,
    pub port: i64,
    /// Slot ranges it owns, inclusive.
    pub ranges: Vec<(u16, u16)>,
}

/// The masters, ordered by node id (every shard computes the same order).
#[derive(Debug)]
pub struct Topology {
    pub my_id: String,
    /// This shard's index in `shards`.
    pub me: usize,
    pub shards: Vec<Shard>,
    pub slots: Arc<SlotMap>,
}

impl Topology {
    pub fn ids(&self) -> Vec<String> {
        self.shards.iter().map(|s| s.id.clone()).collect()
    }

    /// `(first, last, shard index)` for every owned range.
    pub fn ranges(&self) -> Vec<(u16, u16, usize)> {
        self.shards
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.ranges.iter().map(move |&(a, b)| (a, b, i)))
            .collect()
    }
}

static CURRENT: RwLock<Option<Arc<Topology>>> = RwLock::new(None);

/// The topology last read, if cluster mode is on.
pub fn current() -> Option<Arc<Topology>> {
    CURRENT.read().ok().and_then(|t| t.clone())
}

/// This shard's id: the node id in cluster mode, else 40 zeros.
pub fn shard_id() -> String {
    id_of(None)
}

/// `<shard id>-<n>`, the form of execution and registration ids (every event takes one:
/// formatted under the read lock, without copying the topology or the id first).
pub fn numbered_id(n: u64) -> String {
    id_of(Some(n))
}

fn id_of(n: Option<u64>) -> String {
    let topo = CURRENT.read().unwrap_or_else(|e| e.into_inner());
    let shard = topo
        .as_ref()
        .map_or(STANDALONE_SHARD_ID, |t| t.my_id.as_str());
    match n {
        Some(n) => format!("{shard}-{n}"),
        None => shard.to_owned(),
    }
}

/// This process's run id (40 hex characters, new on every start), as RG.INFOCLUSTER shows.
pub fn run_id() -> String {
    static RUN_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN_ID
        .get_or_init(|| {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
                ^ u128::from(std::process::id());
            let mut x = seed as u64 | 1;
            (0..40)
                .map(|_| {
                    // xorshift: enough to tell restarts apart, not a secret.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from_digit((x % 16) as u32, 16).unwrap_or('0')
                })
                .collect()
        })
        .clone()
}

/// Re-reads the topology (takes the Redis lock unless held; the caller holds no GIL).
pub fn refresh() -> Option<Arc<Topology>> {
    let topo = read_topology().map(Arc::new);
    let view = topo.as_ref().map(|t| {
        let owned = t.shards[t.me].ranges.clone();
        let lowest = owned.iter().map(|r| r.0).min();
        (hashtag_for(lowest.unwrap_or(0)), owned)
    });
    gearpy::cluster::set_cluster(view);
    if let Ok(mut cur) = CURRENT.write() {
        cur.clone_from(&topo);
    }
    topo
}

/// Whether this node sees every slot served (`cluster_state:ok`). While a cluster forms, a
/// node may know only some masters: a topology read then would be kept with shards missing
/// (a count over 3 shards answered 2), so a read at startup waits for this state.
pub fn cluster_ok() -> bool {
    match crate::redis::call::call_internal(&[b"CLUSTER".to_vec(), b"INFO".to_vec()]) {
        CallReply::Bulk(b) => b
            .split(|&c| c == b'\n')
            .any(|l| l.trim_ascii() == b"cluster_state:ok"),
        _ => false,
    }
}

fn read_topology() -> Option<Topology> {
    let my_id = match crate::redis::call::call_internal(&[b"CLUSTER".to_vec(), b"MYID".to_vec()]) {
        CallReply::Bulk(b) => String::from_utf8(b).ok()?,
        _ => return None,
    };
    let CallReply::Array(ranges) =
        crate::redis::call::call_internal(&[b"CLUSTER".to_vec(), b"SLOTS".to_vec()])
    else {
        return None;
    };
    let mut shards: Vec<Shard> = Vec::new();
    for r in ranges {
        let Some((first, last, ip, port, id)) = parse_range(r) else {
            continue;
        };
        match shards.iter_mut().find(|s| s.id == id) {
            Some(s) => s.ranges.push((first, last)),
            None => shards.push(Shard {
                id,
                ip,
                port,
                ranges: vec![(first, last)],
            }),
        }
    }
    if shards.len() < 2 {
        return None;
    }
    shards.sort_by(|a, b| a.id.cmp(&b.id));
    let me = shards.iter().position(|s| s.id == my_id)?;
    let ranges: Vec<(u16, u16, usize)> = shards
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.ranges.iter().map(move |&(a, b)| (a, b, i)))
        .collect();
    Some(Topology {
        my_id,
        me,
        shards,
        slots: Arc::new(SlotMap::from_ranges(&ranges)),
    })
}

/// One `CLUSTER SLOTS` entry: `[first, last, [ip, port, id, …], replicas…]`.
fn parse_range(r: CallReply) -> Option<(u16, u16, String, i64, String)> {
    let CallReply::Array(mut parts) = r else {
        return None;
    };
    if parts.len() < 3 {
        return None;
    }
    let master = parts.swap_remove(2);
    let (CallReply::Int(first), CallReply::Int(last)) = (&parts[0], &parts[1]) else {
        return None;
    };
    let CallReply::Array(m) = master else {
        return None;
    };
    let text = |r: &CallReply| match r {
        CallReply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let ip = m.first().and_then(text)?;
    let port = match m.get(1) {
        Some(CallReply::Int(p)) => *p,
        _ => return None,
    };
    let id = m.get(2).and_then(text)?;
    Some((
        u16::try_from(*first).ok()?,
        u16::try_from(*last).ok()?,
        ip,
        port,
        id,
    ))
}

/// A short string whose hash slot is `slot` (what `hashtag()` returns on this shard).
pub fn hashtag_for(slot: u16) -> String {
    if slot == 0 {
        return "06S".to_owned();
    }
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let base = ALPHABET.len() as u64;
    for len in 1..=4u32 {
        for mut n in 0..base.pow(len) {
            let mut cand = Vec::with_capacity(len as usize);
            for _ in 0..len {
                cand.push(ALPHABET[(n % base) as usize]);
                n /= base;
            }
            if key_hash_slot(&cand) == slot {
                return String::from_utf8(cand).unwrap_or_default();
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_hash_to_their_slot() {
        for slot in [0u16, 1, 5461, 10923, 16383] {
            let t = hashtag_for(slot);
            assert!(!t.is_empty());
            assert_eq!(key_hash_slot(t.as_bytes()), slot, "{t}");
        }
    }
}
