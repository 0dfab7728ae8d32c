//! Installing requirements and spreading their wheels (REFERENCE §5, §9; issue #14): the
//! host that downloads a requirement (REQUIREMENTS) or receives it (RG.PYIMPORTREQ) sends
//! the package — wheels included — to its replicas and the AOF (`RG.PYIMPORTRETINTERNAL
//! <packages>`) and, in a cluster, to every other shard (`Query::Import`), which unpack it
//! without a package index. Runs on a worker. Depends on `model::requirements`, `cluster::ask`
//! and `redis::call`.

use std::time::Duration;

use engine::wire::requirements::{encode_list, Package};

use crate::cluster::ask::{ask_others_and_wait, Query};
use crate::model::state::ModuleState;
use crate::redis::ffi::replies::Reply;

/// REQUIREMENTS of an RG.PYEXECUTE: installs what is missing here (downloading it), then
/// gives every other host the same wheels. The error is the text after 1.2's
/// `Could not satisfy requirements, error=`.
///
/// Replicas and the AOF get the newly installed ones (a replica that attaches later gets
/// them all in the RDB); other shards get every named one (one may be new in the cluster;
/// a shard that has the same wheels already only re-activates them).
pub fn install(state: &ModuleState, names: &[String], force: bool) -> Result<(), String> {
    let new = state.requirements.ensure(names, force)?;
    let exported = |names: &[String]| -> Vec<Package> {
        names
            .iter()
            .filter_map(|n| state.requirements.export(n).and_then(Result::ok))
            .collect()
    };
    if !new.is_empty() {
        replicate(&exported(&new));
    }
    to_other_shards(state, &exported(names))
}

/// RG.PYIMPORTREQ: installs a package here, then on replicas and every other shard.
pub fn import(state: &ModuleState, pkg: &Package) -> Result<(), String> {
    state.requirements.import(pkg)?;
    let packages = std::slice::from_ref(pkg);
    replicate(packages);
    to_other_shards(state, packages)
}

fn replicate(packages: &[Package]) {
    let blob = encode_list(packages);
    crate::redis::call::replicate("RG.PYIMPORTRETINTERNAL", &[&blob]);
}

fn to_other_shards(state: &ModuleState, packages: &[Package]) -> Result<(), String> {
    if packages.is_empty() || crate::model::topology::current().is_none() {
        return Ok(());
    }
    let blob = encode_list(packages);
    let bound = state.config.int("PythonInstallReqMaxIdleTime").max(1) as u64;
    let answers = ask_others_and_wait(Query::Import(blob), Duration::from_millis(bound));
    match answers
        .into_iter()
        .find(|(_, r)| matches!(r, Reply::Error(_)))
    {
        Some((shard, Reply::Error(e))) => Err(format!("shard-{shard}: {e}")),
        _ => Ok(()),
    }
}

/// Another shard's `Query::Import`: installs its packages here (on a worker).
pub fn import_blob(state: &ModuleState, blob: &[u8]) -> Reply {
    let Some(packages) = engine::wire::requirements::decode_list(blob) else {
        return Reply::Error("malformed requirements data".into());
    };
    match state.requirements.restore(&packages).first() {
        None => Reply::Status("OK".into()),
        Some(e) => Reply::Error(e.clone()),
    }
}
