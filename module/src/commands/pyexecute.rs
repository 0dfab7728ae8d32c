//! `RG.PYEXECUTE <script> [UNBLOCKING] [ID id] [DESCRIPTION d] [UPGRADE] [REPLACE_WITH old]
//! [FORCE_REINSTALL_REQUIREMENTS] [REQUIREMENTS r ...]` (REFERENCE §1.1).
//!
//! The client is blocked; the script runs on a script thread (never on Redis's main
//! thread, never waiting for an execution thread); a requested `run()` becomes an engine
//! execution whose output is the reply.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use crate::app::scripts::{BodyControl, Pending, ScriptJob};
use crate::model::sessions::SessionArgs;
use crate::model::state::ModuleState;
use crate::redis::ffi::command::error;
use crate::redis::ffi::replies::block_measured;

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
pub fn command(ctx: &Context, state: &'static ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    if super::cannot_block(ctx) {
        return Err(error(IN_MULTI));
    }
    let rest: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy()).collect();
    let opts = parse_options(&rest).map_err(error)?;
    let session = SessionArgs {
        id: opts.id.clone(),
        desc: opts.description.clone(),
        upgrade: opts.upgrade,
        replace_with: opts.replace_with.clone(),
    };
    state.sessions.check(&session).map_err(error)?;
    let code = args[1].to_string_lossy();
    // Measured: a script or run slower than slowlog-log-slower-than is logged with its
    // arguments, as a command would be.
    let mut blocked = block_measured(ctx);
    let body = BodyControl::default();
    blocked.on_disconnect(body.on_disconnect());
    let client = Pending::new(blocked);
    let job = ScriptJob {
        state,
        code,
        unblocking: opts.unblocking,
        session,
        requirements: opts.requirements,
        force_reinstall: opts.force_reinstall,
        run_as: crate::redis::access::of_client(ctx),
        body,
    };
    // Scripts have threads of their own: a script runs at once even when every execution
    // thread is busy (its run then waits as `created`).
    state.scripts.spawn_fn(move || job.run(client));
    Ok(RedisValue::NoReply)
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
