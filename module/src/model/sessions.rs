//! Sessions (REFERENCE §1.1, §5): each RG.PYEXECUTE is a session; sessions that own
//! registrations are kept, named by `ID` (else 40 random hex chars), and replaced as a whole
//! by `UPGRADE` / `REPLACE_WITH`. The session's source is kept with it so registrations can
//! be rebuilt from source (not pickled bytecode) after a restart. A replaced session whose
//! registrations' work still runs is kept as dead (`RG.PYDUMPSESSIONS DEAD`) until it ends.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::redis::access::RunAs;

/// A kept session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub desc: Option<String>,
    /// The script that built the session's registrations.
    pub code: String,
    pub registrations: Vec<String>,
    /// Names given with REQUIREMENTS.
    pub requirements: Vec<String>,
    /// The script's globals (its profiler lives there).
    pub globals: Option<Arc<gearpy::profile::SessionGlobals>>,
    /// Who registered it: its registrations run as this ACL user (`crate::redis::access`).
    pub run_as: RunAs,
    /// Its registrations made from a running step, which its code does not make: (id,
    /// `register()`'s arguments cloudpickled), saved and replicated with it.
    pub from_steps: Vec<(String, Vec<u8>)>,
}

/// What RG.PYEXECUTE asked of the session.
#[derive(Debug, Clone, Default)]
pub struct SessionArgs {
    pub id: Option<String>,
    pub desc: Option<String>,
    pub upgrade: bool,
    pub replace_with: Option<String>,
}

/// Something a dead session's work holds while it runs (its removed registrations).
pub type Hold = Weak<dyn Any + Send + Sync>;

/// All kept sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    list: Mutex<Vec<Arc<Session>>>,
    /// Dropped sessions and what their still-running work holds.
    dead: Mutex<Vec<(Arc<Session>, Vec<Hold>)>>,
    /// The ids of the last registrations unregistered here (at most [`UNREGISTERED_KEPT`]),
    /// so that a session another shard sent before it heard of the unregister does not
    /// bring one back.
    unregistered: Mutex<std::collections::VecDeque<String>>,
}

/// How many unregistered ids a shard remembers.
const UNREGISTERED_KEPT: usize = 1024;

/// 40 random hex characters: the default session id.
pub fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(48);
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

impl Sessions {
    pub(crate) fn list(&self) -> MutexGuard<'_, Vec<Arc<Session>>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.list().iter().find(|s| s.id == id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        self.list().clone()
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let mut l = self.list();
        let pos = l.iter().position(|s| s.id == id)?;
        Some(l.remove(pos))
    }

    /// Keeps a dropped session as dead while any of `holds` is alive (work of its
    /// registrations still running).
    pub fn bury(&self, s: Arc<Session>, holds: Vec<Hold>) {
        if holds.iter().any(|h| h.strong_count() > 0) {
            self.dead_list().push((s, holds));
        }
    }

    /// Dead sessions whose work still runs, with how many of their holds are alive.
    pub fn dead(&self) -> Vec<(Arc<Session>, usize)> {
        let mut l = self.dead_list();
        l.retain(|(_, holds)| holds.iter().any(|h| h.strong_count() > 0));
        l.iter()
            .map(|(s, holds)| {
                let alive = holds.iter().filter(|h| h.strong_count() > 0).count();
                (Arc::clone(s), alive)
            })
            .collect()
    }

    fn dead_list(&self) -> MutexGuard<'_, Vec<(Arc<Session>, Vec<Hold>)>> {
        self.dead.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks RG.PYEXECUTE's session arguments before the script runs (1.2's texts).
    pub fn check(&self, a: &SessionArgs) -> Result<(), String> {
        if let Some(old) = &a.replace_with {
            if self.get(old).is_none() {
                return Err(format!(
                    "Can not replace with {old}, session does not exists."
                ));
            }
            if let Some(id) = &a.id {
                if id != old && self.get(id).is_some() {
                    return Err(format!(
                        "Can not replace an existing session {id} with {old}"
                    ));
                }
            }
            return Ok(());
        }
        match &a.id {
            Some(id) if !a.upgrade && self.get(id).is_some() => {
                Err(format!("Session {id} already exists"))
            }
            _ => Ok(()),
        }
    }

    /// Records the REQUIREMENTS of a session.
    pub fn set_requirements(&self, id: &str, reqs: &[String]) {
        let mut l = self.list();
        if let Some(pos) = l.iter().position(|s| s.id == id) {
            let s = &l[pos];
            l[pos] = Arc::new(Session {
                requirements: reqs.to_vec(),
                ..(**s).clone()
            });
        }
    }

    /// Adds a registration to a session (made from a step: with its wire form).
    pub fn push_registration(&self, id: &str, reg_id: &str, wire: Option<Vec<u8>>) {
        let mut l = self.list();
        if let Some(pos) = l.iter().position(|s| s.id == id) {
            let mut registrations = l[pos].registrations.clone();
            registrations.push(reg_id.to_owned());
            let mut from_steps = l[pos].from_steps.clone();
            from_steps.extend(wire.map(|w| (reg_id.to_owned(), w)));
            l[pos] = Arc::new(Session {
                registrations,
                from_steps,
                ..(*l[pos]).clone()
            });
        }
    }

    /// Whether registration `id` was unregistered here (one of the last ones).
    pub fn was_unregistered(&self, id: &str) -> bool {
        let l = self.unregistered.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().any(|r| r == id)
    }

    /// Removes a registration from its session (RG.UNREGISTER); drops the session once it
    /// owns none. The id is remembered ([`Sessions::was_unregistered`]).
    pub fn forget_registration(&self, session: &str, reg_id: &str) {
        {
            let mut u = self.unregistered.lock().unwrap_or_else(|e| e.into_inner());
            if u.len() == UNREGISTERED_KEPT {
                u.pop_front();
            }
            u.push_back(reg_id.to_owned());
        }
        let mut l = self.list();
        if let Some(pos) = l.iter().position(|s| s.id == session) {
            let s = &l[pos];
            let rest: Vec<String> = s
                .registrations
                .iter()
                .filter(|r| *r != reg_id)
                .cloned()
                .collect();
            if rest.is_empty() {
                l.remove(pos);
            } else {
                l[pos] = Arc::new(Session {
                    registrations: rest,
                    from_steps: s
                        .from_steps
                        .iter()
                        .filter(|(r, _)| r != reg_id)
                        .cloned()
                        .collect(),
                    ..(**s).clone()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unregistered_ids_are_remembered_up_to_the_bound() {
        let s = Sessions::default();
        assert!(!s.was_unregistered("a-1"));
        s.forget_registration("no-such-session", "a-1");
        assert!(s.was_unregistered("a-1"));
        assert!(!s.was_unregistered("a-2"));
        for n in 0..UNREGISTERED_KEPT {
            s.forget_registration("x", &format!("b-{n}"));
        }
        assert!(
            !s.was_unregistered("a-1"),
            "the oldest id is forgotten past the bound"
        );
        assert!(s.was_unregistered(&format!("b-{}", UNREGISTERED_KEPT - 1)));
    }
}
