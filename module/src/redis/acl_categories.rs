//! The ACL categories of Gearshift's code-running commands on Redis 7.0.
//!
//! Redis 7.0 gives module commands no ACL category (`RedisModule_SetCommandACLCategories`
//! arrived in 7.2), so `-@dangerous` or `-@scripting` would leave `RG.PYEXECUTE` runnable.
//! Redis already applied the user's rules to the command by name (`+@all`, `+rg.pyexecute`,
//! `-rg.pyexecute`); this module replays them with the categories the command would have
//! on 7.2 (its flags' categories plus the declared ones) and refuses what they take away.
//! Depends on `ffi::acl` (who the caller is) and `ACL GETUSER` through `RM_Call`.

use redis_module::{Context, RedisValue};

use crate::redis::ffi::acl::{client_user, ClientUser};

/// Redis's refusal when the caller's rules take away `command` by one of its categories;
/// `None` when it may run. `native` is true where Redis enforces module categories itself.
pub fn refusal(
    ctx: &Context,
    command: &str,
    categories: Categories<'_>,
    native: bool,
) -> Option<String> {
    if native {
        return None;
    }
    let ClientUser::Named(user) = client_user(ctx) else {
        return None;
    };
    // Rules that cannot be read allow nothing (the check fails closed).
    let rules = command_rules(ctx, &user).unwrap_or_default();
    if rules.iter().any(|r| allows(r, command, categories)) {
        return None;
    }
    Some(format!(
        "NOPERM this user has no permissions to run the '{command}' command"
    ))
}

/// The command rules of `user`'s root permissions and of each selector (any may allow).
fn command_rules(ctx: &Context, user: &str) -> Option<Vec<String>> {
    // Gearshift's own call: past any hook a user put on ACL.
    let reply = crate::redis::ffi::acl::own_call(|| ctx.call("ACL", &["GETUSER", user]));
    let RedisValue::Array(fields) = reply.ok()? else {
        return None;
    };
    let mut rules = Vec::new();
    let mut it = fields.iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match (text(k).as_deref(), v) {
            (Some("commands"), v) => rules.extend(text(v)),
            (Some("selectors"), RedisValue::Array(sels)) => {
                for sel in sels {
                    if let RedisValue::Array(f) = sel {
                        let mut f = f.iter();
                        while let (Some(k), Some(v)) = (f.next(), f.next()) {
                            if text(k).as_deref() == Some("commands") {
                                rules.extend(text(v));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(rules)
}

fn text(v: &RedisValue) -> Option<String> {
    match v {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.clone()),
        RedisValue::SimpleStringStatic(s) => Some((*s).to_owned()),
        RedisValue::StringBuffer(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// The categories a command is in, lower case, without `@`.
pub type Categories<'a> = &'a [&'a str];

/// Categories of the code-running commands (`write deny-oom` + `dangerous scripting`;
/// every command not flagged `fast` is `@slow`).
pub const RUNS_CODE: Categories<'static> = &["dangerous", "scripting", "write", "slow"];

/// Whether the command rules `rules` (as `ACL GETUSER` shows them: `+@all -@dangerous
/// +get …`) allow `command`, a member of `categories`. Rules apply left to right.
pub fn allows(rules: &str, command: &str, categories: Categories<'_>) -> bool {
    let mut allowed = false;
    for rule in rules.split_ascii_whitespace() {
        let rule = rule.to_ascii_lowercase();
        match rule.as_str() {
            "allcommands" | "+@all" => allowed = true,
            "nocommands" | "-@all" => allowed = false,
            _ => {
                let (grant, name) = match rule.split_at(1) {
                    ("+", name) => (true, name),
                    ("-", name) => (false, name),
                    _ => continue,
                };
                let hits = match name.strip_prefix('@') {
                    Some(cat) => categories.contains(&cat),
                    // `+cmd|sub` grants a subcommand only; these commands have none.
                    None => name == command,
                };
                if hits {
                    allowed = grant;
                }
            }
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &str = "rg.pyexecute";

    #[test]
    fn categories_taken_away_refuse_the_command() {
        assert!(allows("+@all", PY, RUNS_CODE));
        assert!(!allows("+@all -@dangerous", PY, RUNS_CODE));
        assert!(!allows("+@all -@scripting", PY, RUNS_CODE));
        assert!(!allows("+@all -@write", PY, RUNS_CODE));
        assert!(allows("+@all -@read -@admin", PY, RUNS_CODE));
    }

    #[test]
    fn later_rules_win_and_names_count() {
        assert!(allows("+@all -@dangerous +rg.pyexecute", PY, RUNS_CODE));
        assert!(!allows("+@all -rg.pyexecute", PY, RUNS_CODE));
        assert!(allows("-@all +@scripting", PY, RUNS_CODE));
        assert!(allows("-@all +RG.PYEXECUTE", PY, RUNS_CODE));
        assert!(!allows("allcommands nocommands", PY, RUNS_CODE));
        assert!(!allows("-@all +get +rg.pyexecute|x", PY, RUNS_CODE));
        assert!(!allows("", PY, RUNS_CODE));
    }
}
