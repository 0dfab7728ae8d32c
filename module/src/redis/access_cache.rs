//! A registration's "may read every key" verdict, cached between ACL changes, so that a
//! keyspace event (main thread, every write) does not resolve its user and check the key
//! against its ACL each time (several allocations and a lookup per event).
//!
//! Verdicts are computed at an ACL generation (`acl_generation`) and stale once it moves.
//! They are not cached inside MULTI/EXEC (an earlier command of the transaction would
//! cache the old rules under the new generation). Depends on `access` and `acl_generation`.

use engine::sync::{AtomicU64, Ordering};

use crate::redis::access::{self, RunAs};
use crate::redis::acl_generation;

/// One registration's cached verdict: the generation it was computed at, shifted left by
/// one, with the low bit set when its user may read every key (0: none).
#[derive(Debug, Default)]
pub struct ReadCache(AtomicU64);

impl ReadCache {
    /// Whether `run_as` may read `key` (lock held). `cacheable`: false inside MULTI.
    pub fn may_read(&self, run_as: &RunAs, key: &[u8], cacheable: bool) -> bool {
        let generation = acl_generation::current();
        if cacheable && self.0.load(Ordering::Acquire) == (generation << 1 | 1) {
            return true;
        }
        let all = access::reads_all_keys(run_as);
        if cacheable {
            self.0
                .store(generation << 1 | u64::from(all), Ordering::Release);
        }
        all || access::may_access(run_as, key, access::READ)
    }
}
