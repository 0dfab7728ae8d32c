//! `register()` called from a running step (REFERENCE §12.7): the registration joins the
//! session whose script defined the code calling, at once, on this shard. When that code's
//! session is not kept (a script that only ran), a session is made for the registration
//! (no source). The registration is kept with its session as `register()`'s arguments,
//! cloudpickled: saved in the RDB and replicated with it (the session is sent to replicas
//! and the AOF again, `RG.INNERREGISTER`). In a cluster the session goes to every other
//! shard too, as a top-level registration's does (1.2: it reaches every shard); a shard
//! that has the session adds only the registrations it lacks, under their ids
//! (`persist::rebuild`), so `RG.UNREGISTER` of that id reaches it on every shard.
//! Depends on `app::install`, `app::persist`, `app::scripts` (the checks), `cluster::ask`,
//! `model` and `redis`.

use std::time::Duration;

use gearpy::RegisterRequest;

use crate::cluster::ask::Query;

use crate::model::sessions::SessionArgs;
use crate::redis::access::{RunAs, NO_USER};
use crate::redis::ffi::replies::Reply;

/// Installs `req` (its `globals` are those of the code calling) and returns its id.
/// Called with the GIL released.
pub fn install_from_step(req: RegisterRequest, caller: Option<RunAs>) -> Result<String, String> {
    let state = crate::model::state::get().ok_or("Gearshift is not loaded")?;
    let session = req.globals.as_ref().and_then(|g| {
        state
            .sessions
            .all()
            .into_iter()
            .find(|s| s.globals.as_ref().is_some_and(|sg| sg.same(g)))
    });
    let mut regs = vec![req];
    let args = SessionArgs::default();
    crate::app::scripts::check_triggers(state, &args, &regs)?;
    crate::app::scripts::check_hooks(state, &args, &regs)?;
    let req = regs.pop().ok_or("no registration")?;
    let (installed, id) = match session {
        Some(s) => crate::app::install::add_to_session(state, &s, req),
        None => {
            let run_as = caller.unwrap_or_else(|| RunAs::user(NO_USER));
            let installed = crate::app::install::install(state, &args, "", vec![req], &run_as);
            let id = state
                .sessions
                .get(&installed.session)
                .and_then(|s| s.registrations.first().cloned())
                .ok_or("the registration's session is gone")?;
            (installed, id)
        }
    };
    let session = installed.session.clone();
    installed.activate();
    replicate(state, &session);
    Ok(id)
}

/// Sends the session (with the new registration) to replicas and the AOF, and to the
/// other shards of a cluster.
fn replicate(state: &crate::model::state::ModuleState, session: &str) {
    let Some(blob) = crate::app::persist::session_blob(state, session) else {
        return;
    };
    crate::redis::lock::with_redis(|ctx| {
        crate::redis::call::replicate_on(ctx, "RG.INNERREGISTER", &[&blob[..]])
    });
    ship(state, blob);
}

/// Installs the session blob on every other shard; a shard that fails is logged (the
/// step's `register()` has returned already).
fn ship(state: &crate::model::state::ModuleState, blob: Vec<u8>) {
    if crate::model::topology::current().is_none() {
        return;
    }
    let timeout = state.config.int("PythonInstallReqMaxIdleTime").max(1) as u64;
    crate::cluster::ask::ask_others(
        Query::Session(blob),
        Duration::from_millis(timeout),
        Box::new(|answers| {
            for (shard, reply) in answers {
                if let Reply::Error(e) = reply {
                    crate::redis::ffi::log::warning(&format!(
                        "Gearshift: a registration made in a step did not reach shard {shard}: {e}"
                    ));
                }
            }
        }),
    );
}
