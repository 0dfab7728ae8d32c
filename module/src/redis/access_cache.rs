//! A registration's "may read every key" verdict, cached between ACL changes, so that a
//! keyspace event (main thread, every write) does not resolve its user and check the key
//! against its ACL each time (several allocations and a lookup per event).
//!
//! Only a command can change ACLs or the superuser config (`ACL …`, `CONFIG SET`,
//! `RG.CONFIGSET`, or any of them inside `EXEC`): the command filter calls [`changed`]
//! before such a command runs, which invalidates every verdict. Verdicts are not cached
//! inside MULTI/EXEC (an earlier command of the transaction would cache the old rules under
//! the new generation). Depends on `acl`.

use engine::sync::{AtomicU64, Ordering};

use crate::redis::access::{self, RunAs};

/// Bumped by every command that may change ACLs; starts at 1 (0 marks "no verdict").
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Invalidates every cached verdict (the command filter, before an ACL-changing command).
pub fn changed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// Whether the first word of a command (lower case) may change ACLs or the superuser mode.
pub fn may_change_acl(command: &[u8]) -> bool {
    [&b"acl"[..], b"exec", b"config", b"rg.configset"]
        .iter()
        .any(|c| command.eq_ignore_ascii_case(c))
}

/// One registration's cached verdict: the generation it was computed at, shifted left by
/// one, with the low bit set when its user may read every key (0: none).
#[derive(Debug, Default)]
pub struct ReadCache(AtomicU64);

impl ReadCache {
    /// Whether `run_as` may read `key` (lock held). `cacheable`: false inside MULTI.
    pub fn may_read(&self, run_as: &RunAs, key: &[u8], cacheable: bool) -> bool {
        let generation = GENERATION.load(Ordering::Acquire);
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
