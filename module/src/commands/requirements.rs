//! Requirement commands (REFERENCE §1.1, §1.2, §5): `RG.PYDUMPREQS`, `RG.PYEXPORTREQ <name>`,
//! `RG.PYIMPORTREQ <chunk> …` (what `gears-cli export-requirements` / `import-requirements`
//! call) and the internal `RG.PYIMPORTRETINTERNAL <packages>` that carries requirements to
//! replicas and the AOF. Importing unpacks wheels, so it runs on a worker while the client
//! is blocked.

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::respond;
use crate::app::scripts::Pending;
use crate::model::requirements::{compiled_os, Requirement};
use crate::model::state::ModuleState;
use crate::redis::acl_categories::{refusal, RUNS_CODE};
use crate::redis::ffi::replies::{block, bulk, Reply};

/// The largest chunk of an exported requirement (1.2's limit).
const CHUNK: usize = 10 * 1024 * 1024;

const NO_SUCH_REQUIREMENT: &str = "requirement does not exists";
const BAD_DATA: &str = "failed deserializing requirement (bad or partial data)";
const NEWER_VERSION: &str = "Requirement version is not compatible, upgrade to newer RedisGears.";
const IN_MULTI: &str =
    "Can not import requirements inside a multi exec, lua, or when blocking is not allowed";

/// A requirement's 18-element metadata (RG.PYDUMPREQS row, RG.PYEXPORTREQ's first part),
/// REFERENCE §1.3's layout: `GearReqVersion` 2 with `Path`, `RefCount` and
/// `IsInReqDictionary` after 1.0's six fields (clients written for the six, redgrease's
/// `pydumpreqs` among them, refuse the extra fields, on 1.2 too: docs/compat.md).
fn metadata(r: &Requirement) -> Reply {
    let dir = r.dir.to_string_lossy();
    Reply::Array(vec![
        bulk("GearReqVersion"),
        Reply::Int(2),
        bulk("Name"),
        bulk(&r.name),
        bulk("IsDownloaded"),
        bulk("yes"),
        bulk("IsInstalled"),
        bulk("yes"),
        bulk("CompiledOs"),
        bulk(&compiled_os()),
        bulk("Wheels"),
        Reply::Array(r.wheels.iter().map(|w| bulk(w)).collect()),
        bulk("Path"),
        bulk(&dir),
        bulk("RefCount"),
        Reply::Int(r.sessions as i64),
        bulk("IsInReqDictionary"),
        bulk("yes"),
    ])
}

/// `RG.PYDUMPREQS`: the metadata of each installed requirement.
pub fn pydumpreqs(ctx: &Context, state: &ModuleState, _args: Vec<RedisString>) -> RedisResult {
    let rows = state
        .requirements
        .installed()
        .iter()
        .map(metadata)
        .collect();
    respond(ctx, Reply::Array(rows))
}

/// `RG.PYEXPORTREQ <name>`: `[<metadata>, [<chunk ≤ 10 MB>, …]]`; the chunks joined are the
/// package (`engine::wire::requirements`) RG.PYIMPORTREQ takes.
pub fn pyexportreq(ctx: &Context, state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    let name = args[1].to_string_lossy();
    let Some(r) = state
        .requirements
        .installed()
        .into_iter()
        .find(|r| r.name == name)
    else {
        return respond(ctx, Reply::Error(NO_SUCH_REQUIREMENT.into()));
    };
    let pkg = match state.requirements.export(&name) {
        Some(Ok(pkg)) => pkg,
        Some(Err(e)) => return respond(ctx, Reply::Error(format!("failed exporting {name}: {e}"))),
        None => return respond(ctx, Reply::Error(NO_SUCH_REQUIREMENT.into())),
    };
    let data = engine::wire::requirements::encode(&pkg);
    let chunks = data
        .chunks(CHUNK)
        .map(|c| Reply::Bulk(c.to_vec()))
        .collect();
    respond(ctx, Reply::Array(vec![metadata(&r), Reply::Array(chunks)]))
}

/// `RG.PYIMPORTREQ <chunk> …`: installs the requirement the chunks (joined) make, here, on
/// the replicas and on every other shard; `OK` once done.
pub fn pyimportreq(ctx: &Context, _state: &ModuleState, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    // Installing runs the wheels' code (a `.pth` file runs when its site dir is added, and
    // their modules come first on sys.path), so only a user who may run Python may import.
    // The rules are replayed on every Redis: 7.2's own check covers RG.PYIMPORTREQ only.
    if let Some(e) = refusal(ctx, "rg.pyexecute", RUNS_CODE, false) {
        return respond(ctx, Reply::Error(e));
    }
    let data: Vec<u8> = args[1..]
        .iter()
        .flat_map(|a| a.as_slice().to_vec())
        .collect();
    if engine::wire::requirements::is_newer_version(&data) {
        return respond(ctx, Reply::Error(NEWER_VERSION.into()));
    }
    let Some(pkg) = engine::wire::requirements::decode(&data) else {
        return respond(ctx, Reply::Error(BAD_DATA.into()));
    };
    // Wheels built elsewhere may not load here: 1.2 refuses them.
    let here = compiled_os();
    if pkg.os != here {
        let e = format!(
            "Requirement was compiled on different os (compiled_os = {}, current_os = {here})",
            pkg.os
        );
        return respond(ctx, Reply::Error(e));
    }
    if super::cannot_block(ctx) {
        return respond(ctx, Reply::Error(IN_MULTI.into()));
    }
    let client = Pending::new(block(ctx));
    let state: &'static ModuleState = match crate::model::state::get() {
        Some(s) => s,
        None => {
            client.send(&Reply::Error("Gearshift is not initialised".into()));
            return Ok(RedisValue::NoReply);
        }
    };
    state.pool.spawn_fn(move || {
        let reply = match crate::app::requirements::import(state, &pkg) {
            Ok(()) => Reply::Status("OK".into()),
            Err(e) => Reply::Error(format!("failed importing requirement {}: {e}", pkg.name)),
        };
        client.send(&reply);
    });
    Ok(RedisValue::NoReply)
}

/// `RG.PYIMPORTRETINTERNAL <packages>` (replication / AOF only): installs the packages
/// from their wheels, no download.
pub fn pyimportretinternal(
    ctx: &Context,
    state: &ModuleState,
    args: Vec<RedisString>,
) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    crate::app::persist::load_requirements(state, args[1].as_slice());
    respond(ctx, Reply::Status("OK".into()))
}
