//! Registration commands (REFERENCE §1.1, §1.3): RG.DUMPREGISTRATIONS, RG.UNREGISTER.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::{module_state, respond, text_args};
use crate::ffi::guard;
use crate::ffi::replies::Reply;
use crate::registrations::Registration;

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn opt_list(v: &Option<Vec<String>>) -> Reply {
    match v {
        None => Reply::Null,
        Some(items) => Reply::Array(items.iter().map(|s| bulk(s)).collect()),
    }
}

/// A double as RESP2 prints it (bulk), `0` when there is no finished run.
fn double_text(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn registration_data(r: &Registration) -> Reply {
    let s = r.stats().clone();
    let avg = if s.finished() == 0 {
        0.0
    } else {
        s.total_run_ms as f64 / s.finished() as f64
    };
    let key_types: Option<Vec<String>> = r
        .key_types
        .as_ref()
        .map(|ts| ts.iter().map(|t| t.name().to_owned()).collect());
    let args = match &r.trigger {
        Some(t) => Reply::Array(vec![
            bulk("trigger"),
            bulk(t),
            bulk("inorder"),
            Reply::Int(r.inorder as i64),
        ]),
        None => keys_args(r, &key_types),
    };
    Reply::Array(vec![
        bulk("mode"),
        bulk(r.mode.name()),
        bulk("numTriggered"),
        Reply::Int(s.triggered as i64),
        bulk("numSuccess"),
        Reply::Int(s.success as i64),
        bulk("numFailures"),
        Reply::Int(s.failures as i64),
        bulk("numAborted"),
        Reply::Int(s.aborted as i64),
        bulk("lastRunDurationMS"),
        Reply::Int(s.last_run_ms as i64),
        bulk("totalRunDurationMS"),
        Reply::Int(s.total_run_ms as i64),
        bulk("avgRunDurationMS"),
        bulk(&double_text(avg)),
        bulk("lastError"),
        s.last_error.as_deref().map(bulk).unwrap_or(Reply::Null),
        bulk("args"),
        args,
    ])
}

fn keys_args(r: &Registration, key_types: &Option<Vec<String>>) -> Reply {
    Reply::Array(vec![
        bulk("regex"),
        bulk(&r.prefix),
        bulk("eventTypes"),
        opt_list(&r.event_types),
        bulk("keyTypes"),
        opt_list(key_types),
        bulk("hookCommands"),
        Reply::Null,
    ])
}

/// The `PD` session string of 1.2's dump.
fn session_text(r: &Registration, sessions: &crate::sessions::Sessions) -> String {
    let (desc, regs) = match sessions.get(&r.session) {
        Some(s) => (s.desc.clone(), s.registrations.clone()),
        None => (None, vec![r.id.clone()]),
    };
    let desc = desc
        .map(|d| format!("'{d}'"))
        .unwrap_or_else(|| "null".to_owned());
    let list: Vec<String> = regs.iter().map(|id| format!("'{id}'")).collect();
    format!(
        "{{'sessionName':'{}', 'sessionDescription':{desc}, 'refCount': {}, 'linkedTo': primary, 'dead': false, 'isInstallationNeeded':0, 'registrationsList':[{}], 'depsList':[]}}",
        r.session,
        regs.len(),
        list.join(", ")
    )
}

/// One registration as RG.DUMPREGISTRATIONS shows it (`with_pd`: include the session).
pub fn registration_dump(r: &Registration, with_pd: bool) -> Reply {
    let mut row = vec![
        bulk("id"),
        bulk(&r.id),
        bulk("reader"),
        bulk(r.reader()),
        bulk("desc"),
        r.desc.as_deref().map(bulk).unwrap_or(Reply::Null),
        bulk("RegistrationData"),
        registration_data(r),
    ];
    if with_pd {
        if let Some(state) = crate::state::get() {
            row.push(bulk("PD"));
            row.push(bulk(&session_text(r, &state.sessions)));
        }
    }
    row.push(bulk("ExecutionThreadPool"));
    row.push(bulk("DefaultPool"));
    Reply::Array(row)
}

/// `RG.DUMPREGISTRATIONS`.
pub fn dumpregistrations(ctx: &Context, _args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let all = module_state()?.registrations.all();
        let rows = all.iter().map(|r| registration_dump(r, true)).collect();
        respond(ctx, Reply::Array(rows))
    })
}

/// `RG.UNREGISTER <id> [abortpending]`.
pub fn unregister(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        let a = text_args(&args);
        if a.is_empty() || a.len() > 2 {
            return Err(RedisError::WrongArity);
        }
        let state = module_state()?;
        let reg = state
            .registrations
            .remove(&a[0])
            .ok_or(RedisError::Str("execution is not registered"))?;
        state.sessions.forget_registration(&reg.session, &reg.id);
        ctx.replicate("RG.INNERUNREGISTER", &[reg.id.as_bytes()][..]);
        // Queued events never start once the registration is gone.
        reg.clear_pending();
        for id in reg.kept_executions() {
            if let Some(e) = state.registry.get(&id) {
                if !matches!(
                    e.status(),
                    crate::executions::Status::Running | crate::executions::Status::Created
                ) {
                    state.registry.remove(&id);
                }
            }
        }
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.CLEARREGISTRATIONSSTATS`: resets counters; `numTriggered` keeps in-flight runs.
pub fn clearregistrationsstats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() != 1 {
            return Err(RedisError::WrongArity);
        }
        for r in module_state()?.registrations.all() {
            let mut s = r.stats();
            let in_flight = s.triggered.saturating_sub(s.finished());
            *s = crate::registrations::Stats {
                triggered: in_flight,
                ..Default::default()
            };
        }
        respond(ctx, Reply::Status("OK".into()))
    })
}

/// `RG.PAUSEREGISTRATIONS [ABORTPENDING] <id>` / `RG.UNPAUSEREGISTRATIONS <id>`: only
/// StreamReader registrations can pause (none exist yet), so every known id is refused.
fn pause_common(args: Vec<RedisString>, verb: &str) -> RedisResult {
    let a = text_args(&args);
    let id = match a.as_slice() {
        [id] => id,
        [flag, id] if verb == "pause" && flag.eq_ignore_ascii_case("abortpending") => id,
        _ => return Err(RedisError::WrongArity),
    };
    match module_state()?.registrations.get(id) {
        Some(r) => Err(RedisError::String(format!(
            "Reader {} does not support {verb}",
            r.reader()
        ))),
        None => Err(RedisError::String(format!(
            "Execution {id} does not exists on shard {}",
            crate::executions::STANDALONE_SHARD_ID
        ))),
    }
}

/// `RG.PAUSEREGISTRATIONS`.
pub fn pauseregistrations(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| pause_common(args, "pause"))
}

/// `RG.UNPAUSEREGISTRATIONS`.
pub fn unpauseregistrations(_ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| pause_common(args, "unpause"))
}
