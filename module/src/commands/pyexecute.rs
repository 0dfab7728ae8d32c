//! `RG.PYEXECUTE <script> [UNBLOCKING] [ID id] [DESCRIPTION d] [UPGRADE] [REPLACE_WITH old]
//! [FORCE_REINSTALL_REQUIREMENTS] [REQUIREMENTS r ...]` (REFERENCE §1.1).
//!
//! The client is blocked; the script runs on a worker (never on Redis's main thread); a
//! requested `run()` becomes an engine execution whose output is the reply.

use std::sync::{Arc, Mutex};

use engine::exec::{ExecConfig, Execution, ExecutionOutput, Source};
use gearpy::{PyRuntime, ReaderSpec, RunRequest, ScriptOutcome};
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisString, RedisValue};

use crate::executions::Entry;
use crate::ffi::replies::{block, reply_blocked, Blocked, Reply};
use crate::ffi::{guard, guard_worker};
use crate::readers::keys::KeysSource;
use crate::registrations::Registration;
use crate::reply::execution_reply;
use crate::state;

const IN_MULTI: &str =
    "Can not run gears inside a multi exec, lua, or when blocking is not allowed";

/// Parsed options of the command.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub unblocking: bool,
    pub id: Option<String>,
    pub description: Option<String>,
    pub upgrade: bool,
    pub replace_with: Option<String>,
    pub force_reinstall: bool,
    pub requirements: Vec<String>,
}

/// Parses the arguments after the script (case-insensitive, any order; REQUIREMENTS last).
pub fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_ascii_uppercase();
        let mut value = |missing: &str| -> Result<String, String> {
            i += 1;
            args.get(i).cloned().ok_or_else(|| missing.to_owned())
        };
        match a.as_str() {
            "UNBLOCKING" => o.unblocking = true,
            "UPGRADE" => o.upgrade = true,
            "FORCE_REINSTALL_REQUIREMENTS" => o.force_reinstall = true,
            "ID" => {
                let id = value("ID is missing")?;
                if !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(
                        "ID must be compose of: ['A'-'Z' | 'a'-'z' | '0' - '9' | '-' | '_']".into(),
                    );
                }
                o.id = Some(id);
            }
            "DESCRIPTION" => o.description = Some(value("DESCRIPTION is missing")?),
            "REPLACE_WITH" => o.replace_with = Some(value("REPLACE_WITH is missing")?),
            "REQUIREMENTS" => {
                o.requirements = args[i + 1..].to_vec();
                break;
            }
            _ => return Err(format!("Unknown arguments were given: {}", args[i])),
        }
        i += 1;
    }
    Ok(o)
}

/// The command handler.
pub fn command(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guard(|| {
        if args.len() < 2 {
            return Err(RedisError::WrongArity);
        }
        let flags = ctx.get_flags();
        if flags.intersects(ContextFlags::MULTI | ContextFlags::LUA | ContextFlags::DENY_BLOCKING) {
            return Err(RedisError::Str(IN_MULTI));
        }
        let rest: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy()).collect();
        let opts = parse_options(&rest).map_err(RedisError::String)?;
        if !opts.requirements.is_empty() {
            return Err(RedisError::Str(
                "REQUIREMENTS are not supported by this Gearshift build yet",
            ));
        }
        let state = state::get().ok_or(RedisError::Str("Gearshift is not initialised"))?;
        let code = args[1].to_string_lossy();
        let client = Pending::new(block(ctx));
        let unblocking = opts.unblocking;
        state
            .pool
            .spawn_fn(move || run_script(code, client, unblocking));
        Ok(RedisValue::NoReply)
    })
}

/// A blocked client that must get exactly one reply: dropped unreplied (a panic), it gets
/// an internal error instead of hanging.
struct Pending(Option<Blocked>);

impl Pending {
    fn new(bc: Blocked) -> Self {
        Pending(Some(bc))
    }

    fn send(mut self, r: &Reply) {
        if let Some(bc) = self.0.take() {
            reply_blocked(bc, r);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(bc) = self.0.take() {
            reply_blocked(
                bc,
                &Reply::Error("Gearshift internal error: execution ended without a reply".into()),
            );
        }
    }
}

fn run_script(code: String, client: Pending, unblocking: bool) {
    guard_worker(
        move || match gearpy::run_script(&code) {
            ScriptOutcome::NoRun => client.send(&Reply::Status("OK".into())),
            ScriptOutcome::Error(e) => client.send(&Reply::Error(e)),
            ScriptOutcome::Run(req) => start_run(req, client, unblocking),
            ScriptOutcome::Registered(regs) => {
                install(regs);
                client.send(&Reply::Status("OK".into()))
            }
        },
        |p| redis_module::logging::log_warning(format!("Gearshift: script worker panicked: {p}")),
    );
}

/// Starts the requested run. Blocking: the reply is the output. UNBLOCKING: the reply is
/// the execution id and the execution is kept for RG.GETRESULTS.
fn start_run(req: RunRequest, client: Pending, unblocking: bool) {
    let Some(state) = state::get() else { return };
    let source: Box<dyn Source> = match req.reader {
        ReaderSpec::Keys {
            pattern,
            no_scan,
            read_value,
        } => Box::new(KeysSource::new(pattern, no_scan, read_value)),
        ReaderSpec::Python(g) => Box::new(g),
    };
    let entry = Entry::new(state.registry.next_id(), &req.plan);
    let (waiting, id_client) = if unblocking {
        (None, Some(client))
    } else {
        (Some(client), None)
    };
    let waiting = Arc::new(Mutex::new(waiting));
    let done_entry = Arc::clone(&entry);
    let done_client = Arc::clone(&waiting);
    let on_done = Box::new(move |out: ExecutionOutput| {
        if let Some(c) = take(&done_client) {
            c.send(&execution_reply(&out));
        }
        done_entry.finish(out);
    });
    let pool = &state.pool;
    match Execution::start(
        source,
        &req.plan,
        Some(&PyRuntime),
        None,
        pool,
        &ExecConfig::default(),
        on_done,
    ) {
        Ok(handle) => {
            entry.started(handle);
            if let Some(c) = id_client {
                state
                    .registry
                    .keep(Arc::clone(&entry), state.config.int("MaxExecutions"));
                c.send(&Reply::Bulk(entry.id.clone().into_bytes()));
            }
        }
        Err(e) => {
            if let Some(c) = take(&waiting).or(id_client) {
                c.send(&Reply::Error(e.to_string()));
            }
        }
    }
}

/// Installs a script's registrations (one session) and runs their `onRegistered`.
fn install(regs: Vec<gearpy::RegisterRequest>) {
    let Some(state) = state::get() else { return };
    let session = random_session_id();
    for mut req in regs {
        let on_registered = req.on_registered.take();
        let reg = Registration::new(state.registrations.next_id(), session.clone(), req);
        state.registrations.add(Arc::new(reg));
        if let Some(f) = on_registered {
            gearpy::register::call_on_registered(&f);
        }
    }
}

/// 40 random hex characters: the default session id.
fn random_session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

fn take(slot: &Mutex<Option<Pending>>) -> Option<Pending> {
    slot.lock().ok().and_then(|mut g| g.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_parse_in_any_order() {
        let o = parse_options(&a(&["id", "s1", "UNBLOCKING", "description", "d"])).unwrap();
        assert!(o.unblocking);
        assert_eq!(o.id.as_deref(), Some("s1"));
        assert_eq!(o.description.as_deref(), Some("d"));
        let o = parse_options(&a(&["REQUIREMENTS", "numpy", "UPGRADE"])).unwrap();
        assert_eq!(o.requirements, a(&["numpy", "UPGRADE"]));
        assert!(!o.upgrade);
    }

    #[test]
    fn option_errors_use_1_2_texts() {
        assert_eq!(parse_options(&a(&["ID"])).unwrap_err(), "ID is missing");
        assert!(parse_options(&a(&["ID", "test@a"]))
            .unwrap_err()
            .contains("must be compose of"));
        assert_eq!(
            parse_options(&a(&["ID", "t", "UNKNOWN"])).unwrap_err(),
            "Unknown arguments were given: UNKNOWN"
        );
        assert_eq!(
            parse_options(&a(&["DESCRIPTION"])).unwrap_err(),
            "DESCRIPTION is missing"
        );
    }
}
