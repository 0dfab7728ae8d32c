//! The sessions blob: how sessions travel through the RDB aux data, replication and the
//! AOF (`RG.INNERREGISTER <blob>`), and to other shards (`bus::Query::Session`). A session
//! is stored as its source code plus its registration ids, never as pickled bytecode (but
//! for registrations made from a running step, which no source makes: version 4).
//!
//! Layout (little-endian): `'S' version | count u32 | per session: id, desc flag +
//! desc, code, reg count u32, reg ids, requirement count u32, requirement names, user`
//! (strings are u32 length + bytes). The user (version 3) is who the session's code runs
//! as: a flag byte, `1` + its ACL user name, or `0` for unrestricted. Version 2 blobs
//! (before ACL support) load with the `default` user, whom every client was before it
//! authenticated. Version 4 adds, after the user, the registrations made from a running
//! step (no source makes them): a count u32, then per registration its id and its
//! arguments as `register()` got them, cloudpickled (an opaque field here).

use super::run_as::{RunAs, LEGACY_USER};
use super::{put, put_count, Reader};

const MAGIC: u8 = b'S';
const VERSION: u8 = 4;
/// Blobs without the registrations made from steps.
const VERSION_NO_STEPS: u8 = 3;
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
    /// Registrations made from a running step: (id, cloudpickled `register()` arguments).
    pub from_steps: Vec<(String, Vec<u8>)>,
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    put_count(out, items.len());
    for i in items {
        put_str(out, i);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put(out, s.as_bytes());
}

/// Encodes sessions into one blob.
pub fn encode(sessions: &[SavedSession]) -> Vec<u8> {
    let mut out = vec![MAGIC, VERSION];
    put_count(&mut out, sessions.len());
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
        put_count(&mut out, s.from_steps.len());
        for (id, wire) in &s.from_steps {
            put_str(&mut out, id);
            put(&mut out, wire);
        }
    }
    out
}

fn list(r: &mut Reader<'_>) -> Option<Vec<String>> {
    let n = r.u32()? as usize;
    let mut items = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        items.push(r.text()?);
    }
    Some(items)
}

/// Decodes a blob; `None` if it is malformed.
pub fn decode(bytes: &[u8]) -> Option<Vec<SavedSession>> {
    let mut r = Reader(bytes);
    let version = match r.take(2)? {
        [MAGIC, v @ (VERSION | VERSION_NO_STEPS | VERSION_NO_USER)] => *v,
        _ => return None,
    };
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let id = r.text()?;
        let desc = match r.take(1)?[0] {
            1 => Some(r.text()?),
            _ => None,
        };
        let code = r.text()?;
        let registrations = list(&mut r)?;
        let requirements = list(&mut r)?;
        let run_as = match version {
            VERSION_NO_USER => RunAs::user(LEGACY_USER),
            _ => match r.take(1)?[0] {
                0 => RunAs::Superuser,
                1 => RunAs::user(&r.text()?),
                _ => return None,
            },
        };
        let mut from_steps = Vec::new();
        if version == VERSION {
            for _ in 0..r.u32()? {
                let id = r.text()?;
                from_steps.push((id, r.field()?.to_vec()));
            }
        }
        out.push(SavedSession {
            from_steps,
            requirements,
            id,
            desc,
            code,
            registrations,
            run_as,
        });
    }
    r.is_empty().then_some(out)
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
                from_steps: vec![("x-2".into(), vec![0, 1, 2])],
            },
            SavedSession {
                id: "b".into(),
                desc: None,
                code: "print(1)\n".into(),
                registrations: vec![],
                requirements: vec![],
                run_as: RunAs::Superuser,
                from_steps: vec![],
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
