//! Registration-time checks of the commands a session hooks (REFERENCE §2.1, §2.3, §12.6),
//! with 1.2's texts: a CommandReader `hook=` and a KeysReader `commands=[…]` must name an
//! existing command that scripts may run, whose keys a key prefix can find; hooks stack only
//! over sync hooks. Also records a new hook's key positions (for `keyprefix`). Reads
//! `COMMAND INFO` through `redis::call`; depends on `model` and `redis`.

use gearpy::services::CallReply;

use crate::model::registrations::{Mode, Registration};
use crate::model::state::ModuleState;

/// What `COMMAND INFO` says of a command: its flags and key positions.
struct CommandInfo {
    flags: Vec<String>,
    /// (first key, last key, step).
    keys: (i64, i64, i64),
}

impl CommandInfo {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// COMMAND INFO of `command`, `None` for an unknown command. Works from any thread
/// (through `redis::call`).
fn command_info(command: &str) -> Option<CommandInfo> {
    let reply = crate::redis::call::call_internal(&[
        b"COMMAND".to_vec(),
        b"INFO".to_vec(),
        command.as_bytes().to_vec(),
    ]);
    let CallReply::Array(outer) = reply else {
        return None;
    };
    let Some(CallReply::Array(info)) = outer.into_iter().next() else {
        return None;
    };
    let flags = match info.get(2) {
        Some(CallReply::Array(f)) => f
            .iter()
            .filter_map(|x| match x {
                CallReply::Status(s) => Some(s.clone()),
                CallReply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let int = |i: usize| match info.get(i) {
        Some(CallReply::Int(v)) => *v,
        _ => 0,
    };
    Some(CommandInfo {
        flags,
        keys: (int(3), int(4), int(5)),
    })
}

/// Records the hooked command's key positions on a new hook registration (for keyprefix).
pub fn resolve(reg: &Registration) {
    if let Some(info) = reg.hook.as_deref().and_then(command_info) {
        *reg.key_spec.lock().unwrap_or_else(|e| e.into_inner()) = info.keys;
    }
}

/// Gearshift's own commands are never hooked: a hook on RG.PYEXECUTE or RG.UNREGISTER would
/// see every user's scripts and could refuse its own removal.
const OWN_HOOK: &str = "Can not override a Gearshift command (RG.*)";
const OWN_COMMAND: &str = "Can not hook a Gearshift command (RG.*)";

/// Whether `command` is one of Gearshift's (`RG.*`), which are never hooked.
fn is_own(command: &str) -> bool {
    command
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("rg."))
}

/// One command a script's registration hooks.
pub struct Hooked<'a> {
    pub command: &'a str,
    pub keyprefix: Option<&'a str>,
    pub mode: Mode,
}

/// Checks a script's CommandReader hooks, in registration order, before they are
/// installed. `replaced`: the session an UPGRADE replaces.
pub fn check_hooks(
    state: &ModuleState,
    hooks: &[Hooked<'_>],
    replaced: Option<&str>,
) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        if is_own(h.command) {
            return Err(OWN_HOOK.into());
        }
        let info = command_info(h.command).ok_or("Can not override an unexisting command")?;
        if info.has("noscript") {
            return Err("Can not override a command which are not allowed inside a script".into());
        }
        if h.keyprefix.is_some() && info.has("movablekeys") {
            return Err("Can not override a command with moveable keys by key prefix".into());
        }
        // An earlier non-sync hook of this same script on this command.
        if hooks[..i]
            .iter()
            .any(|p| p.command == h.command && p.mode != Mode::Sync)
        {
            return Err(
                "Can not override a none sync registration which already created on this session"
                    .into(),
            );
        }
        let newest = state
            .registrations
            .hooks_of(h.command)
            .into_iter()
            .find(|r| Some(r.session.as_str()) != replaced);
        if newest.is_some_and(|r| r.mode != Mode::Sync) {
            return Err("Can not override a none sync registration".into());
        }
    }
    Ok(())
}

/// Checks the commands of a KeysReader `commands=[…]` registration. Its prefix (`*` by
/// default) always counts as a key prefix, so the command's keys must be findable.
pub fn check_commands(commands: &[String]) -> Result<(), String> {
    for c in commands {
        if is_own(c) {
            return Err(OWN_COMMAND.into());
        }
        let info = command_info(c).ok_or("bad reply on COMMAND command")?;
        if info.has("noscript") {
            return Err("Can not hook a command which are not allowed inside a script".into());
        }
        if info.has("movablekeys") {
            return Err("Can not hook a command with moveable keys by key prefix".into());
        }
        if info.keys.0 <= 0 {
            return Err("Can not hook a command by key prefix with none positive first key".into());
        }
    }
    Ok(())
}
