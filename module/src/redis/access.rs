//! ACL: who user code runs as (docs/security.md, "ACL").
//!
//! Every command and key read of user code runs with the ACL user of the client that
//! started it, as Lua and Functions do: RG.PYEXECUTE's caller for the script and its run,
//! the registering user for everything a registration runs (events, triggers, hooks,
//! stream batches, time events, `onRegistered`). The identity (`RunAs`) is captured when
//! the command arrives, stored with sessions (and so persisted and shipped to other
//! shards), and set on the thread while user code runs (`gearpy::caller::Scope`; the
//! engine's stages and sources get it through [`AsUser`]).
//!
//! - `execute()`: `RM_Call` with the `C` flag on a context carrying the user, so Redis
//!   checks the command, its keys and channels (and a script it runs) as that user. The
//!   refusal reads as Redis's own `NOPERM` text.
//! - Readers skip keys the user may not read (as if they did not exist); registrations
//!   do not fire for them.
//! - A user deleted since: its calls fail with a clear `NOPERM` error, it reads no key,
//!   its registrations stop firing. Never a fallback to an unrestricted run.
//! - `ExecuteAsSuperuser 1` restores RedisGears 1.2, which ignored ACLs.

use engine::exec::Source;
use gearpy::services::CallReply as PyReply;
use std::sync::OnceLock;

use redis_module::{raw, CallOptions, CallOptionsBuilder, CallResult, Context};

pub use gearpy::caller::{RunAs, Scope};

use crate::redis::acl_generation;
use crate::redis::ffi::acl::{client_user, with_own_client, ClientUser, ContextUser, ModuleUser};
use crate::redis::ffi::call::call_buffers;

/// The config key that restores 1.2's unrestricted `execute()`.
pub const SUPERUSER_KEY: &str = "ExecuteAsSuperuser";

/// The identity of the client running the command of `ctx` (lock held).
pub fn of_client(ctx: &Context) -> RunAs {
    match client_user(ctx) {
        ClientUser::Unrestricted => RunAs::Superuser,
        ClientUser::Named(n) => RunAs::user(&n),
    }
}

// The identity's wire form lives in the engine so the fuzz targets reach it without Redis.
pub use engine::wire::run_as::{decode, encode, LEGACY_USER};

pub use crate::redis::ffi::acl::NO_USER;

/// Reads `ExecuteAsSuperuser` from the module's configuration (set once at load).
static SUPERUSER_PROBE: std::sync::OnceLock<fn() -> bool> = std::sync::OnceLock::new();

/// Installs what `superuser_mode` asks (once, at load).
pub fn set_superuser_probe(probe: fn() -> bool) {
    let _ = SUPERUSER_PROBE.set(probe);
}

/// Whether user code ignores ACLs (`ExecuteAsSuperuser`).
pub fn superuser_mode() -> bool {
    SUPERUSER_PROBE.get().is_some_and(|probe| probe())
}

/// The ACL that applies to user code right now.
enum Effective {
    Unrestricted,
    User(ModuleUser),
}

fn gone(name: &str) -> String {
    format!("NOPERM the ACL user '{name}' this code runs as no longer exists")
}

/// Resolves an identity (lock held). `None`: code no execution started (for instance a
/// thread user code created itself), which gets no permissions.
fn effective(run_as: Option<&RunAs>) -> std::result::Result<Effective, String> {
    if superuser_mode() {
        return Ok(Effective::Unrestricted);
    }
    match run_as {
        None => Err("NOPERM this code runs outside any execution, so it has no ACL user".into()),
        Some(RunAs::Superuser) => Ok(Effective::Unrestricted),
        Some(RunAs::User(n)) => ModuleUser::by_name(n)
            .map(Effective::User)
            .ok_or_else(|| gone(n)),
    }
}

/// Runs `cmd rest…` on `ctx` (lock held) as `run_as`, with errors as replies and
/// replication; returns the converted reply.
///
/// `temp_client`: `ctx` may belong to a temporary client of Redis (a keyspace
/// notification's, a timer's), whose user is NULL. Redis 7.0 logs an `RM_Call` refusal
/// under the name of the context client's user, which crashes on such a client, so there
/// the permission is checked first and a refused command is never handed to `RM_Call`.
pub fn call_as(
    ctx: &Context,
    run_as: Option<&RunAs>,
    temp_client: bool,
    cmd: &str,
    rest: &[&[u8]],
    convert: impl FnOnce(CallResult) -> PyReply,
) -> PyReply {
    // The command filter skips this module's own calls while one of its commands runs.
    if acl_generation::may_change_acl(cmd.as_bytes()) {
        acl_generation::changed();
    }
    // Script mode, as Lua: commands flagged `noscript` are refused. Through RM_Call several
    // of them crash Redis 7.0 (WAIT asserts on a blocked client, PSYNC dereferences NULL).
    // CONFIG GET stays allowed: it is harmless and 1.2 scripts read configs with it.
    let paused = crate::redis::ffi::call::writes_paused();
    let opts = call_options(!is_config_get(cmd, rest), paused);
    let reply = call_with(ctx, run_as, temp_client, (cmd, rest), opts, convert);
    match reply {
        PyReply::Error(e) if paused && e.starts_with(NO_WRITES) => PyReply::Error(format!(
            "ERR writes are paused (CLIENT PAUSE or a failover): '{cmd}' was not run"
        )),
        other => other,
    }
}

/// How RM_Call refuses a write command under the `W` flag.
const NO_WRITES: &str = "ERR Write command";

/// `call_as` with its options chosen.
fn call_with(
    ctx: &Context,
    run_as: Option<&RunAs>,
    temp_client: bool,
    (cmd, rest): (&str, &[&[u8]]),
    opts: Options,
    convert: impl FnOnce(CallResult) -> PyReply,
) -> PyReply {
    if superuser_mode() {
        return run(ctx, cmd, opts.unrestricted, rest, convert);
    }
    match run_as {
        None => PyReply::Error(
            "NOPERM this code runs outside any execution, so it has no ACL user".into(),
        ),
        Some(RunAs::Superuser) => run(ctx, cmd, opts.unrestricted, rest, convert),
        Some(RunAs::User(n)) => acl_generation::with_user(n, |user| match user {
            Some(user) => call_as_user(ctx, user, temp_client, cmd, rest, (opts.as_user, convert)),
            None => PyReply::Error(gone(n)),
        }),
    }
}

/// `call_as` for a named user (lock held); `how`: the call's options and reply conversion.
fn call_as_user(
    ctx: &Context,
    user: &ModuleUser,
    temp_client: bool,
    cmd: &str,
    rest: &[&[u8]],
    how: (Flags, impl FnOnce(CallResult) -> PyReply),
) -> PyReply {
    let (opts, convert) = how;
    if temp_client {
        let mut argv = Vec::with_capacity(rest.len() + 1);
        argv.push(cmd.as_bytes());
        argv.extend_from_slice(rest);
        if !user.may_run(&argv) {
            return PyReply::Error(refusal(user, cmd, rest));
        }
    }
    let reply = {
        let _as = ContextUser::attach(ctx, user);
        run(ctx, cmd, opts, rest, convert)
    };
    match reply {
        PyReply::Error(e) if e.starts_with(REFUSED_7_0) => {
            PyReply::Error(noperm_text(ctx, &e, cmd, rest))
        }
        other => other,
    }
}

/// Runs the call: with its arguments as buffers (`ffi::call`), or through the crate's
/// `call_ext` when it has too many arguments for that path.
fn run(
    ctx: &Context,
    cmd: &str,
    flags: Flags,
    rest: &[&[u8]],
    convert: impl FnOnce(CallResult) -> PyReply,
) -> PyReply {
    match call_buffers(ctx, cmd.as_bytes(), flags.0, rest) {
        Some(reply) => reply,
        None => convert(ctx.call_ext(cmd, flags.1, rest)),
    }
}

/// RM_Call flags, as text and as the crate's options.
type Flags = (&'static str, &'static CallOptions);

/// `execute()`'s RM_Call flags, without and with the ACL check.
struct Options {
    unrestricted: Flags,
    as_user: Flags,
}

/// The flags of a call in script mode or not: errors as replies (`E`), replicated (`!`),
/// script mode (`S`), checked as the context's user (`C`). The crate's options are built
/// once (the builder allocates). While clients are paused (`CLIENT PAUSE`, a failover)
/// writes are refused (`W`): Redis 7.0 asserts that nothing propagates to replicas or the
/// AOF during a pause, and a module's write would.
fn call_options(script: bool, paused: bool) -> Options {
    static BUILT: OnceLock<[CallOptions; 8]> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let o = |no_writes: bool, script: bool, acl: bool| {
            let mut b = CallOptionsBuilder::new().errors_as_replies().replicate();
            if no_writes {
                b = b.no_writes();
            }
            if script {
                b = b.script_mode();
            }
            if acl {
                b = b.verify_acl();
            }
            b.build()
        };
        let (f, t) = (false, true);
        [
            o(f, f, f),
            o(f, f, t),
            o(f, t, f),
            o(f, t, t),
            o(t, f, f),
            o(t, f, t),
            o(t, t, f),
            o(t, t, t),
        ]
    });
    let at = 4 * usize::from(paused) + 2 * usize::from(script);
    let text: [&'static str; 8] = ["E!", "E!C", "E!S", "E!SC", "E!W", "E!CW", "E!SW", "E!SCW"];
    Options {
        unrestricted: (text[at], &built[at]),
        as_user: (text[at + 1], &built[at + 1]),
    }
}

fn is_config_get(cmd: &str, rest: &[&[u8]]) -> bool {
    cmd.eq_ignore_ascii_case("config")
        && rest.first().is_some_and(|s| s.eq_ignore_ascii_case(b"get"))
}

/// How Redis 7.0's `RM_Call` words an ACL refusal (7.2 and later already say `NOPERM`).
const REFUSED_7_0: &str = "ERR acl verification failed";

/// The `NOPERM` text a client gets from Redis for the same refusal (Redis 7.2's
/// `RM_Call` gives these texts too).
fn noperm_text(ctx: &Context, refusal: &str, cmd: &str, rest: &[&[u8]]) -> String {
    if refusal.contains("keys") {
        "NOPERM this user has no permissions to access one of the keys used as arguments".into()
    } else if refusal.contains("channel") {
        "NOPERM this user has no permissions to access one of the channels used as arguments".into()
    } else {
        format!(
            "NOPERM this user has no permissions to run the '{}' command",
            full_name(ctx, cmd, rest.first().copied())
        )
    }
}

/// The `NOPERM` text of a command `user` may not run (`call_as` checked that): Redis's
/// own refusal of it, asked on a context whose client has a user (the command does not
/// run: it is refused again).
fn refusal(user: &ModuleUser, cmd: &str, rest: &[&[u8]]) -> String {
    with_own_client(|own| {
        let opts = CallOptionsBuilder::new()
            .errors_as_replies()
            .verify_acl()
            .build();
        let text = {
            let _as = ContextUser::attach(own, user);
            // Past the hooks: a hooked command would travel as RG.TRIGGER, which the user
            // may run, and then run unchecked instead of being refused again.
            let r: CallResult = crate::redis::ffi::acl::unhooked(|| own.call_ext(cmd, &opts, rest));
            match r {
                Err(e) => e.to_utf8_string().unwrap_or_default(),
                Ok(_) => String::new(),
            }
        };
        if text.starts_with("NOPERM") {
            return text; // Redis 7.2 and later word it so already
        }
        noperm_text(own, &text, cmd, rest)
    })
}

/// `cmd`, or `cmd|sub` for a command with subcommands (Redis's ACL name of it).
fn full_name(ctx: &Context, cmd: &str, sub: Option<&[u8]>) -> String {
    let name = cmd.to_ascii_lowercase();
    let Some(sub) = sub else { return name };
    let opts = CallOptionsBuilder::new().errors_as_replies().build();
    let info: CallResult = crate::redis::ffi::acl::own_call(|| {
        ctx.call_ext("COMMAND", &opts, &[b"INFO".as_slice(), cmd.as_bytes()][..])
    });
    let has_subcommands = matches!(&info, Ok(redis_module::CallReply::Array(outer))
        if matches!(outer.get(0), Some(Ok(redis_module::CallReply::Array(entry)))
            if matches!(entry.get(9), Some(Ok(redis_module::CallReply::Array(subs))) if subs.len() > 0)));
    if has_subcommands {
        format!(
            "{name}|{}",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )
    } else {
        name
    }
}

/// Which keys a reader may read (lock held while it lives).
pub struct KeyGate(Option<ModuleUser>);

impl KeyGate {
    /// The gate of the identity this thread runs as; `Err` (the user is gone, or there is
    /// no identity) fails the read with that text.
    pub fn for_thread() -> std::result::Result<KeyGate, String> {
        match effective(gearpy::caller::on_this_thread().as_ref())? {
            Effective::Unrestricted => Ok(KeyGate(None)),
            // Asked once per gate (a batch): users who may read everything (`default`
            // unless restricted) then cost nothing per key.
            Effective::User(u) if u.reads_all_keys() => Ok(KeyGate(None)),
            Effective::User(u) => Ok(KeyGate(Some(u))),
        }
    }

    /// An open gate (Gearshift's own reads).
    pub fn all() -> KeyGate {
        KeyGate(None)
    }

    /// The user to check keys against; `None`: every key may be read.
    pub fn user(&self) -> Option<&ModuleUser> {
        self.0.as_ref()
    }

    pub fn may_read(&self, key: &[u8]) -> bool {
        self.0
            .as_ref()
            .is_none_or(|u| u.may_access(key, raw::REDISMODULE_CMD_KEY_ACCESS))
    }
}

/// Whether code running as `run_as` may access `key` with `flags` (lock held); false for
/// a user that no longer exists (its registrations stop firing).
pub fn may_access(run_as: &RunAs, key: &[u8], flags: u32) -> bool {
    match effective(Some(run_as)) {
        Ok(Effective::Unrestricted) => true,
        Ok(Effective::User(u)) => u.may_access(key, flags),
        Err(_) => false,
    }
}

/// Whether code running as `run_as` could run `argv` itself (lock held): the command, its
/// keys and channels; false for a user that is gone.
pub fn may_run(run_as: &RunAs, argv: &[&[u8]]) -> bool {
    match effective(Some(run_as)) {
        Ok(Effective::Unrestricted) => true,
        Ok(Effective::User(u)) => u.may_run(argv),
        Err(_) => false,
    }
}

/// Whether `run_as` may read every key (lock held): unrestricted, or a user whose root
/// selector reads all keys. False for a user that is gone.
pub fn reads_all_keys(run_as: &RunAs) -> bool {
    match effective(Some(run_as)) {
        Ok(Effective::Unrestricted) => true,
        Ok(Effective::User(u)) => u.reads_all_keys(),
        Err(_) => false,
    }
}

/// Read permission, for [`may_access`].
pub const READ: u32 = raw::REDISMODULE_CMD_KEY_ACCESS;
/// Read and update permission (a StreamReader reads, acks and creates its group).
pub const READ_UPDATE: u32 = raw::REDISMODULE_CMD_KEY_ACCESS | raw::REDISMODULE_CMD_KEY_UPDATE;
/// Permission to create a key (a time event stored in one).
pub const INSERT: u32 = raw::REDISMODULE_CMD_KEY_INSERT;
/// Delete permission (a StreamReader that trims).
pub const DELETE: u32 = raw::REDISMODULE_CMD_KEY_DELETE;

/// An engine source, operator or runtime that runs as `run_as` on whatever thread calls it
/// (`AsUser::new(inner, run_as)`; the scope is `gearpy::caller::ActingAs`).
pub type AsUser<T> = engine::scoped::Scoped<gearpy::caller::ActingAs, T>;

/// A source that reads as `run_as`.
pub fn source(inner: Box<dyn Source>, run_as: &RunAs) -> Box<dyn Source> {
    Box::new(AsUser::new(inner, run_as.clone()))
}
