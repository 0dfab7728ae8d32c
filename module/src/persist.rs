//! Persistence and replication of sessions (REFERENCE §9). A session is stored as its
//! source code plus its registration ids — never as pickled bytecode — so it rebuilds on
//! a newer interpreter. The same blob travels to replicas and the AOF as
//! `RG.INNERREGISTER <blob>`.
//!
//! Blob layout (little-endian): `'S' version | count u32 | per session: id, desc flag +
//! desc, code, reg count u32, reg ids, requirement count u32, requirement names, user`
//! (strings are u32 length + bytes). The user (version 3) is who the session's code runs
//! as: a flag byte, `1` + its ACL user name, or `0` for unrestricted. Version 2 blobs
//! (before ACL support) load with the `default` user, whom every client was before it
//! authenticated.

use std::sync::Arc;

use gearpy::ScriptOutcome;
use redis_module::Context;

use crate::acl::{RunAs, Scope};
use crate::host::with_lock_held;
use crate::sessions::{self, Session, SessionArgs};
use crate::state::ModuleState;

const MAGIC: u8 = b'S';
const VERSION: u8 = 3;
/// Blobs without the session's user.
const VERSION_NO_USER: u8 = 2;

/// What is saved of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    pub id: String,
    pub desc: Option<String>,
    pub code: String,
    pub registrations: Vec<String>,
    pub requirements: Vec<String>,
    pub run_as: RunAs,
}

impl From<&Session> for SavedSession {
    fn from(s: &Session) -> Self {
        SavedSession {
            id: s.id.clone(),
            desc: s.desc.clone(),
            code: s.code.clone(),
            registrations: s.registrations.clone(),
            requirements: s.requirements.clone(),
            run_as: s.run_as.clone(),
        }
    }
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for i in items {
        put_str(out, i);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encodes sessions into one blob.
pub fn encode(sessions: &[SavedSession]) -> Vec<u8> {
    let mut out = vec![MAGIC, VERSION];
    out.extend_from_slice(&(sessions.len() as u32).to_le_bytes());
    for s in sessions {
        put_str(&mut out, &s.id);
        match &s.desc {
            Some(d) => {
                out.push(1);
                put_str(&mut out, d);
            }
            None => out.push(0),
        }
        put_str(&mut out, &s.code);
        put_list(&mut out, &s.registrations);
        put_list(&mut out, &s.requirements);
        match &s.run_as {
            RunAs::Superuser => out.push(0),
            RunAs::User(name) => {
                out.push(1);
                put_str(&mut out, name);
            }
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.u32()? as usize;
        let mut items = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            items.push(self.string()?);
        }
        Some(items)
    }

    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Decodes a blob; `None` if it is malformed.
pub fn decode(bytes: &[u8]) -> Option<Vec<SavedSession>> {
    let mut r = Reader(bytes);
    let version = match r.take(2)? {
        [MAGIC, v @ (VERSION | VERSION_NO_USER)] => *v,
        _ => return None,
    };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let id = r.string()?;
        let desc = match r.take(1)?[0] {
            1 => Some(r.string()?),
            _ => None,
        };
        let code = r.string()?;
        let registrations = r.list()?;
        let requirements = r.list()?;
        let run_as = match version {
            VERSION_NO_USER => RunAs::user(crate::acl::LEGACY_USER),
            _ => match r.take(1)?[0] {
                0 => RunAs::Superuser,
                1 => RunAs::user(&r.string()?),
                _ => return None,
            },
        };
        out.push(SavedSession {
            requirements,
            id,
            desc,
            code,
            registrations,
            run_as,
        });
    }
    r.0.is_empty().then_some(out)
}

/// Every kept session, for an RDB save.
pub fn snapshot(state: &ModuleState) -> Vec<u8> {
    let all: Vec<SavedSession> = state
        .sessions
        .all()
        .iter()
        .map(|s| SavedSession::from(&**s))
        .collect();
    encode(&all)
}

/// Drops every session and registration (before a load replaces them).
pub fn clear(state: &ModuleState) {
    for s in state.sessions.all() {
        sessions::drop_session(state, &s.id);
    }
}

/// Rebuilds one saved session by re-running its source; failures are logged, never fatal
/// (the text is returned for callers that report it). Called on the main thread with the
/// Redis lock held (`ctx`).
pub fn rebuild(ctx: &Context, state: &ModuleState, s: &SavedSession) -> Result<(), String> {
    // Requirements are already on disk in the server's venv: make them importable again
    // (never run pip on the main thread).
    if !s.requirements.is_empty() {
        if let Err(e) = state.requirements.activate_existing(&s.requirements) {
            crate::ffi::log::warning(&format!("Gearshift: requirements of session {}: {e}", s.id));
        }
    }
    let outcome = with_lock_held(ctx, || {
        let _as = Scope::enter(s.run_as.clone());
        gearpy::run_script(&s.code)
    });
    let regs = match outcome {
        ScriptOutcome::Registered(regs) => regs,
        ScriptOutcome::Error(e) => {
            crate::ffi::log::warning(&format!(
                "Gearshift: could not rebuild session {}: {e}",
                s.id
            ));
            return Err(e);
        }
        _ => {
            crate::ffi::log::warning(&format!(
                "Gearshift: session {} registered nothing on rebuild",
                s.id
            ));
            return Err("session registered nothing".into());
        }
    };
    let args = SessionArgs {
        id: Some(s.id.clone()),
        desc: s.desc.clone(),
        upgrade: true,
        replace_with: None,
    };
    // On the main thread: Redis calls made while installing (COMMAND INFO for hooks) must
    // use this context, never wait for the lock this thread already holds.
    let installed = with_lock_held(ctx, || {
        sessions::install_with_ids(
            state,
            &args,
            &s.code,
            regs,
            &s.run_as,
            Some(&s.registrations),
        )
    });
    state.sessions.set_requirements(&s.id, &s.requirements);
    with_lock_held(ctx, || installed.activate());
    Ok(())
}

/// Rebuilds every session of a blob; only a malformed blob is an error (a session that
/// fails to rebuild is logged and the rest still load).
pub fn load(ctx: &Context, state: &ModuleState, blob: &[u8]) -> Result<(), String> {
    let sessions = decode(blob).ok_or_else(|| "malformed Gearshift session data".to_owned())?;
    for s in &sessions {
        let _ = rebuild(ctx, state, s);
    }
    Ok(())
}

/// Like [`load`], but a session that fails to rebuild is an error too (the first one).
pub fn load_strict(ctx: &Context, state: &ModuleState, blob: &[u8]) -> Result<(), String> {
    let sessions = decode(blob).ok_or_else(|| "malformed Gearshift session data".to_owned())?;
    let mut first_err = Ok(());
    for s in &sessions {
        if let Err(e) = rebuild(ctx, state, s) {
            first_err = first_err.and(Err(e));
        }
    }
    first_err
}

/// The replication command for one session.
pub fn session_blob(state: &ModuleState, id: &str) -> Option<Vec<u8>> {
    state
        .sessions
        .get(id)
        .map(|s: Arc<Session>| encode(&[SavedSession::from(&*s)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_roundtrip_and_garbage_is_rejected() {
        let s = vec![
            SavedSession {
                id: "a".into(),
                desc: Some("d".into()),
                code: "GB().register()".into(),
                registrations: vec!["x-1".into()],
                requirements: vec!["six".into()],
                run_as: RunAs::user("app"),
            },
            SavedSession {
                id: "b".into(),
                desc: None,
                code: "print(1)\n".into(),
                registrations: vec![],
                requirements: vec![],
                run_as: RunAs::Superuser,
            },
        ];
        assert_eq!(decode(&encode(&s)), Some(s.clone()));
        let blob = encode(&s);
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_none(), "truncated at {cut}");
        }
        assert!(decode(b"XX").is_none());
    }

    #[test]
    fn blobs_without_a_user_load_as_default() {
        let mut v2 = vec![MAGIC, VERSION_NO_USER, 1, 0, 0, 0];
        for field in [&b"s1"[..], b""] {
            v2.extend_from_slice(&(field.len() as u32).to_le_bytes());
            v2.extend_from_slice(field);
            if field == b"s1" {
                v2.push(0); // no description
            }
        }
        v2.extend_from_slice(&[0; 8]); // no registrations, no requirements
        let s = decode(&v2).expect("a version 2 blob");
        assert_eq!(s[0].id, "s1");
        assert_eq!(s[0].run_as, RunAs::user("default"));
    }
}
