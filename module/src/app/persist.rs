//! Persistence and replication of sessions (REFERENCE §9). A session is stored as its
//! source code plus its registration ids — never as pickled bytecode — so it rebuilds on
//! a newer interpreter. Registrations made from a running step, which the source does not
//! make, are stored as `register()`'s arguments cloudpickled (as 1.2 stores every one).
//! The same blob travels to replicas and the AOF as `RG.INNERREGISTER <blob>`.
//!
//! Its layout and codec (with the version history) are `engine::wire::sessions`.

use std::sync::Arc;

use gearpy::ScriptOutcome;
use redis_module::Context;

use crate::model::sessions::{Session, SessionArgs};
use crate::model::state::ModuleState;
use crate::redis::access::Scope;
use crate::redis::lock::with_lock_held;

// The blob's codec lives in the engine so the fuzz targets reach it without Redis.
pub use engine::wire::sessions::{decode, encode, SavedSession};

impl From<&Session> for SavedSession {
    fn from(s: &Session) -> Self {
        SavedSession {
            id: s.id.clone(),
            desc: s.desc.clone(),
            code: s.code.clone(),
            registrations: s.registrations.clone(),
            requirements: s.requirements.clone(),
            run_as: s.run_as.clone(),
            from_steps: s.from_steps.clone(),
        }
    }
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
        crate::app::install::drop_session(state, &s.id);
    }
}

/// Rebuilds one saved session by re-running its source; failures are logged, never fatal
/// (the text is returned for callers that report it). Called on the main thread with the
/// Redis lock held (`ctx`).
pub fn rebuild(ctx: &Context, state: &ModuleState, s: &SavedSession) -> Result<(), String> {
    if add_from_steps(ctx, state, s) {
        return Ok(());
    }
    // Requirements came before the keys (their own aux data) or are on disk already: make
    // them importable again (never run pip on the main thread).
    if !s.requirements.is_empty() {
        if let Err(e) = state.requirements.activate_existing(&s.requirements) {
            crate::redis::ffi::log::warning(&format!(
                "Gearshift: requirements of session {}: {e}",
                s.id
            ));
        }
    }
    // A session made for a step's registration has no source.
    let outcome = match s.code.is_empty() && !s.from_steps.is_empty() {
        true => ScriptOutcome::Registered(Vec::new()),
        false => with_lock_held(ctx, || {
            let _as = Scope::enter(s.run_as.clone());
            crate::app::services::rebuilding(|| gearpy::run_script(&s.code, None))
        }),
    };
    let mut regs = match outcome {
        // A run the script also asked for ran when it was first executed, not again.
        ScriptOutcome::Registered(regs) | ScriptOutcome::RegisteredAndRun(regs, _) => regs,
        ScriptOutcome::Error(e) => {
            crate::redis::ffi::log::warning(&format!(
                "Gearshift: could not rebuild session {}: {e}",
                s.id
            ));
            return Err(e);
        }
        _ if !s.from_steps.is_empty() => Vec::new(),
        _ => {
            crate::redis::ffi::log::warning(&format!(
                "Gearshift: session {} registered nothing on rebuild",
                s.id
            ));
            return Err("session registered nothing".into());
        }
    };
    // The source's registrations take their saved ids in order; those made from steps
    // are rebuilt from their wire form, with theirs.
    let source_ids: Vec<String> = s
        .registrations
        .iter()
        .filter(|r| !s.from_steps.iter().any(|(id, _)| id == *r))
        .cloned()
        .collect();
    for (id, wire) in &s.from_steps {
        if state.sessions.was_unregistered(id) {
            continue;
        }
        match gearpy::register_from_wire(wire) {
            Ok(mut req) => {
                req.id = Some(id.clone());
                regs.push(req);
            }
            Err(e) => crate::redis::ffi::log::warning(&format!(
                "Gearshift: could not rebuild registration {id} of session {}: {e}",
                s.id
            )),
        }
    }
    let args = SessionArgs {
        id: Some(s.id.clone()),
        desc: s.desc.clone(),
        upgrade: true,
        replace_with: None,
    };
    // On the main thread: Redis calls made while installing (COMMAND INFO for hooks) must
    // use this context, never wait for the lock this thread already holds.
    let installed = with_lock_held(ctx, || {
        crate::app::install::install_with_ids(
            state,
            &args,
            &s.code,
            regs,
            &s.run_as,
            Some(&source_ids),
        )
    });
    state.sessions.set_requirements(&s.id, &s.requirements);
    with_lock_held(ctx, || installed.activate());
    Ok(())
}

/// `s` is a session this shard has, with the same source and the same registrations
/// from it, plus registrations made from steps (another shard's step in a cluster, the
/// master's on a replica): those this shard lacks, and has not unregistered (the sender
/// may not have heard of that yet), are added, under their ids; the others
/// keep running with their state (step-made ones of this shard's own included). False:
/// `s` is not that (a new or upgraded session), it is rebuilt.
fn add_from_steps(ctx: &Context, state: &ModuleState, s: &SavedSession) -> bool {
    let Some(have) = state.sessions.get(&s.id) else {
        return false;
    };
    let from_source = |regs: &[String], steps: &[(String, Vec<u8>)]| -> Vec<String> {
        let by_step = |r: &String| steps.iter().any(|(id, _)| id == r);
        regs.iter().filter(|r| !by_step(r)).cloned().collect()
    };
    let same = have.code == s.code
        && from_source(&have.registrations, &have.from_steps)
            == from_source(&s.registrations, &s.from_steps);
    if !same {
        return false;
    }
    // Neither those it has nor those unregistered here (the sender may not have heard yet).
    let kept = |id: &String| have.registrations.contains(id);
    let gone = |id: &String| state.sessions.was_unregistered(id);
    let added: Vec<&(String, Vec<u8>)> = s
        .from_steps
        .iter()
        .filter(|(id, _)| !kept(id) && !gone(id))
        .collect();
    for (id, wire) in added {
        let req = match gearpy::register_from_wire(wire) {
            Ok(mut req) => {
                req.id = Some(id.clone());
                req
            }
            Err(e) => {
                crate::redis::ffi::log::warning(&format!(
                    "Gearshift: could not add registration {id} to session {}: {e}",
                    s.id
                ));
                continue;
            }
        };
        with_lock_held(ctx, || {
            let (installed, _) = crate::app::install::add_to_session(state, &have, req);
            installed.activate();
        });
    }
    true
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

/// Installs the requirement packages of an RDB or of `RG.PYIMPORTRETINTERNAL` from their
/// wheels (no download); failures are logged.
pub fn load_requirements(state: &ModuleState, blob: &[u8]) {
    let Some(packages) = engine::wire::requirements::decode_list(blob) else {
        crate::redis::ffi::log::warning("Gearshift: malformed requirements data; not restored");
        return;
    };
    for e in state.requirements.restore(&packages) {
        crate::redis::ffi::log::warning(&format!("Gearshift: requirement {e}"));
    }
}

/// The RDB aux callbacks' view of persistence (`redis::ffi::rdb`, installed at load).
pub fn persistence() -> crate::redis::ffi::rdb::Persistence {
    crate::redis::ffi::rdb::Persistence {
        save: || match crate::model::state::get() {
            Some(state) => snapshot(state),
            None => encode(&[]),
        },
        empty: || encode(&[]),
        save_requirements: || match crate::model::state::get() {
            Some(state) => engine::wire::requirements::encode_list(&state.requirements.packages()),
            None => engine::wire::requirements::encode_list(&[]),
        },
        load_requirements: |blob| {
            if let Some(state) = crate::model::state::get() {
                load_requirements(state, blob);
            }
        },
        load: |ctx, blob| {
            let Some(state) = crate::model::state::get() else {
                return;
            };
            // A load replaces whatever this shard had.
            clear(state);
            if let Err(e) = load(ctx, state, blob) {
                crate::redis::ffi::log::warning(&format!(
                    "Gearshift: {e}; registrations were not restored"
                ));
            }
        },
    }
}
