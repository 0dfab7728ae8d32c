//! Installing a session's registrations on this shard (a script's `register()` calls, a
//! saved session rebuilt, another shard's session), activating them (`onRegistered`,
//! stream processing) and dropping a session with its registrations. Depends on `run`,
//! `model` and `redis`.

use std::any::Any;
use std::sync::Arc;

use gearpy::{OnRegistered, RegisterRequest};

use crate::model::registrations::Registration;
use crate::model::sessions::{random_id, Hold, Session, SessionArgs};
use crate::model::state::ModuleState;
use crate::model::streams::StreamRegistration;
use crate::redis::access::{RunAs, Scope};

/// Installs a script's registrations as one session, replacing the session it upgrades.
/// Returns the new registrations (for `onRegistered`).
pub fn install(
    state: &ModuleState,
    a: &SessionArgs,
    code: &str,
    regs: Vec<RegisterRequest>,
    run_as: &RunAs,
) -> Installed {
    install_with_ids(state, a, code, regs, run_as, None)
}

/// What an installation produced.
#[derive(Debug)]
pub struct Installed {
    pub session: String,
    /// `onRegistered` callbacks to run, in registration order.
    pub callbacks: Vec<OnRegistered>,
    /// New StreamReader registrations, to start once installed.
    pub streams: Vec<Arc<StreamRegistration>>,
    /// Who the session's code runs as.
    pub run_as: RunAs,
}

impl Installed {
    /// Runs `onRegistered` callbacks (as the session's user) and starts stream processing.
    pub fn activate(self) {
        let run_as = self.run_as.clone();
        for f in self.callbacks {
            let _as = Scope::enter(run_as.clone());
            f.call();
        }
        for r in self.streams {
            crate::run::streams::start(r);
        }
    }
}

/// Drops a session and its registrations. Work of theirs still running keeps the
/// session listed as dead until it ends (1.2).
pub fn drop_session(state: &ModuleState, id: &str) {
    if let Some(s) = state.sessions.remove(id) {
        let mut holds: Vec<Hold> = Vec::new();
        for r in &s.registrations {
            if let Some(reg) = state.registrations.remove(r) {
                let reg: Arc<dyn Any + Send + Sync> = reg;
                holds.push(Arc::downgrade(&reg));
            }
            if let Some(reg) = state.streams.remove(r) {
                state.abort_stream_pending(&reg);
                let reg: Arc<dyn Any + Send + Sync> = reg;
                holds.push(Arc::downgrade(&reg));
            }
        }
        state.sessions.bury(s, holds);
    }
}

/// As [`install`], reusing saved registration ids (RDB load, replication).
pub fn install_with_ids(
    state: &ModuleState,
    a: &SessionArgs,
    code: &str,
    regs: Vec<RegisterRequest>,
    run_as: &RunAs,
    ids: Option<&[String]>,
) -> Installed {
    let id = a.id.clone().unwrap_or_else(random_id);
    // UPGRADE / REPLACE_WITH: the old session's registrations go away atomically (per shard).
    let old = a
        .replace_with
        .as_deref()
        .or(a.upgrade.then_some(id.as_str()))
        .map(str::to_owned);
    if let Some(old) = old {
        drop_session(state, &old);
    }
    let mut installed = Installed {
        session: id.clone(),
        callbacks: Vec::new(),
        streams: Vec::new(),
        run_as: run_as.clone(),
    };
    let mut reg_ids = Vec::new();
    let mut from_steps = Vec::new();
    let mut globals = None;
    for (i, mut req) in regs.into_iter().enumerate() {
        if let Some(g) = req.globals.take() {
            globals.get_or_insert(Arc::new(g));
        }
        let reg_id = match ids.and_then(|ids| ids.get(i)).or(req.id.as_ref()) {
            Some(saved) => {
                state.registrations.bump_past(saved);
                saved.clone()
            }
            None => state.registrations.next_id(),
        };
        reg_ids.push(reg_id.clone());
        from_steps.extend(req.wire.take().map(|w| (reg_id.clone(), w)));
        add(state, req, reg_id, &mut installed);
    }
    state.sessions.list().push(Arc::new(Session {
        id: id.clone(),
        desc: a.desc.clone(),
        code: code.to_owned(),
        registrations: reg_ids,
        requirements: Vec::new(),
        globals,
        run_as: run_as.clone(),
        from_steps,
    }));
    installed
}

/// Adds registration `reg_id` of `req` to the installation (not yet to its session).
fn add(state: &ModuleState, mut req: RegisterRequest, reg_id: String, out: &mut Installed) {
    out.callbacks.extend(req.on_registered.take());
    match req.stream.clone() {
        Some(opts) => {
            let reg = Arc::new(StreamRegistration::new(
                reg_id,
                out.session.clone(),
                req,
                opts,
                out.run_as.clone(),
            ));
            state.streams.add(Arc::clone(&reg));
            out.streams.push(reg);
        }
        None => {
            let reg = Arc::new(Registration::new(
                reg_id,
                out.session.clone(),
                req,
                out.run_as.clone(),
            ));
            crate::run::hook_checks::resolve(&reg);
            state.registrations.add(reg);
        }
    }
}

/// Adds one more registration to an installed session (`register()` from a running
/// step, or another shard's, under its id `req.id`); returns what to activate and the
/// registration's id.
pub fn add_to_session(
    state: &ModuleState,
    session: &Session,
    mut req: RegisterRequest,
) -> (Installed, String) {
    let reg_id = match req.id.take() {
        Some(saved) => {
            state.registrations.bump_past(&saved);
            saved
        }
        None => state.registrations.next_id(),
    };
    let mut installed = Installed {
        session: session.id.clone(),
        callbacks: Vec::new(),
        streams: Vec::new(),
        run_as: session.run_as.clone(),
    };
    let wire = req.wire.take();
    add(state, req, reg_id.clone(), &mut installed);
    state.sessions.push_registration(&session.id, &reg_id, wire);
    (installed, reg_id)
}
