//! `RG.PYDUMPSESSIONS [VERBOSE] [DEAD] [SESSIONS s1 ...]` (REFERENCE §1.1, §1.3).

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::dump::{keys_dump, stream_dump};
use super::{respond, text_args};
use crate::model::sessions::Session;
use crate::model::state::ModuleState;
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::{bulk, Reply};

/// Whether a session is listed alive, or dead with how many of its holds still run.
#[derive(Clone, Copy)]
enum Life {
    Alive,
    Dead(usize),
}

fn session_reply(state: &ModuleState, s: &Session, verbose: bool, life: Life) -> Reply {
    // A dead session is in no dictionary any more: 1.2 shows it linked to `None`.
    let (ref_count, dead, linked) = match life {
        Life::Alive => (s.registrations.len(), "false", "primary"),
        Life::Dead(n) => (n, "true", "None"),
    };
    let state = Some(state);
    let regs = s
        .registrations
        .iter()
        .map(|id| {
            let st = state.filter(|_| verbose);
            if let Some(r) = st.and_then(|st| st.registrations.get(id)) {
                return keys_dump(&r, None);
            }
            match st.and_then(|st| st.streams.get(id)) {
                Some(r) => stream_dump(&r, None),
                None => bulk(id),
            }
        })
        .collect();
    Reply::Array(vec![
        bulk("ID"),
        bulk(&s.id),
        bulk("sessionDescription"),
        s.desc.as_deref().map(bulk).unwrap_or(Reply::Null),
        bulk("refCount"),
        Reply::Int(ref_count as i64),
        bulk("linked"),
        bulk(linked),
        bulk("dead"),
        bulk(dead),
        bulk("requirementInstallationNeeded"),
        Reply::Int(0),
        bulk("requirements"),
        Reply::Array(
            s.requirements
                .iter()
                .map(|r| requirement_reply(state, r, verbose))
                .collect(),
        ),
        bulk("registrations"),
        Reply::Array(regs),
    ])
}

/// A session's requirement: its name, or with VERBOSE 1.2's 10-element summary (`name`,
/// `refCount`, `isDownloaded`, `isInstalled` as 0/1, `wheels`).
fn requirement_reply(state: Option<&ModuleState>, name: &str, verbose: bool) -> Reply {
    let found = state.filter(|_| verbose).and_then(|st| {
        let installed = st.requirements.installed();
        installed.into_iter().find(|r| r.name == name)
    });
    let Some(r) = found else {
        return bulk(name);
    };
    Reply::Array(vec![
        bulk("name"),
        bulk(&r.name),
        bulk("refCount"),
        Reply::Int(r.sessions as i64),
        bulk("isDownloaded"),
        Reply::Int(1),
        bulk("isInstalled"),
        Reply::Int(1),
        bulk("wheels"),
        Reply::Array(r.wheels.iter().map(|w| bulk(w)).collect()),
    ])
}

/// `RG.PYDUMPSESSIONS`.
pub fn pydumpsessions(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    let (mut verbose, mut dead, mut names) = (false, false, None);
    let mut i = 0;
    while i < a.len() {
        match a[i].to_ascii_uppercase().as_str() {
            "VERBOSE" => verbose = true,
            // Sessions dropped (UPGRADE, REPLACE_WITH) while their work still runs.
            "DEAD" => dead = true,
            "SESSIONS" => {
                names = Some(a[i + 1..].to_vec());
                break;
            }
            _ => return Err(error(format!("Unknown option {}", a[i]))),
        }
        i += 1;
    }
    let sessions = &state.sessions;
    let rows = match names {
        None if dead => sessions
            .dead()
            .iter()
            .map(|(s, n)| session_reply(state, s, verbose, Life::Dead(*n)))
            .collect(),
        None => sessions
            .all()
            .iter()
            .map(|s| session_reply(state, s, verbose, Life::Alive))
            .collect(),
        Some(names) => names
            .iter()
            .map(|n| match sessions.get(n) {
                Some(s) => session_reply(state, &s, verbose, Life::Alive),
                None => bulk(&format!("Session {n} does not exists")),
            })
            .collect(),
    };
    respond(ctx, Reply::Array(rows))
}

/// `RG.PYPROFILE STATS <sessionId> [order] | RESET <sessionId>`: the session's cProfile
/// data collected while `ProfileExecutions` is on (1.2 ignores `order`: always `tottime`).
pub fn pyprofile(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    let a = text_args(&args);
    if a.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    let sub = a[0].to_ascii_uppercase();
    if sub != "STATS" && sub != "RESET" {
        return Err(error("Wrong subcommand given to RG.PYPROFILE"));
    }
    let session = state
        .sessions
        .get(&a[1])
        .ok_or_else(|| error("session does not exists"))?;
    let globals = session
        .globals
        .clone()
        .ok_or_else(|| error("session has no profile"))?;
    match sub.as_str() {
        "RESET" => {
            gearpy::profile::reset(&globals).map_err(error)?;
            respond(ctx, Reply::Status("OK".into()))
        }
        _ => {
            let text = gearpy::profile::stats(&globals).map_err(error)?;
            respond(ctx, Reply::Bulk(text.into_bytes()))
        }
    }
}
