//! `register()` called from a running step (REFERENCE §12.7): the registration joins the
//! session whose script defined the code calling, at once, on this shard. When that code's
//! session is not kept (a script that only ran), a session is made for the registration
//! (no source). The registration is kept with its session as `register()`'s arguments,
//! cloudpickled: saved in the RDB and replicated with it (the session is sent to replicas
//! and the AOF again, `RG.INNERREGISTER`). Not shipped to other shards (a step runs on
//! each shard). Depends on `app::install`, `app::persist`, `app::scripts` (the checks),
//! `model` and `redis`.

use gearpy::RegisterRequest;

use crate::model::sessions::SessionArgs;
use crate::redis::access::{RunAs, NO_USER};

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

/// Sends the session (with the new registration) to replicas and the AOF.
fn replicate(state: &crate::model::state::ModuleState, session: &str) {
    let Some(blob) = crate::app::persist::session_blob(state, session) else {
        return;
    };
    crate::redis::lock::with_redis(|ctx| ctx.replicate("RG.INNERREGISTER", &[&blob[..]]));
}
