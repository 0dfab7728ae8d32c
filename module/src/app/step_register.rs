//! `register()` called from a running step (REFERENCE §12.7): the registration joins the
//! session whose script defined the code calling, at once, on this shard. When that code's
//! session is not kept (a script that only ran), a session is made for the registration.
//! Such registrations live in memory only: a session is saved, replicated and shipped as
//! its source, which does not make them (docs/compat.md). Depends on `app::install`,
//! `app::scripts` (the checks), `model` and `redis`.

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
    installed.activate();
    Ok(id)
}
