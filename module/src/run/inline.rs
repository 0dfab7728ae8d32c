//! The one inline run: a sync registration's plan over one ready source, record at a time
//! on this thread (`engine::inline`), with the Redis lock held through the caller's context
//! (a busy section on the main thread, so `-BUSY` and kills work) and as the registration's
//! ACL user. Sync events, triggers, hooks, linked commands and sync stream batches all run
//! through here. Outside MULTI/Lua a step that awaits parks the run instead
//! ([`Inline::run_or_park`]); [`go_on`] continues the rest on the worker pool, as 1.2's
//! async_local (REFERENCE §4.2, §8). Depends on `redis`, `model::state` and the Python layer.

use engine::exec::{Execution, ExecutionOutput, OnDone, Source};
use engine::inline::{InlineRun, Parked};
use engine::plan::Plan;
use gearpy::PyRuntime;
use redis_module::Context;

use crate::model::state::ModuleState;
use crate::redis::access::{self, AsUser, RunAs, Scope};
use crate::redis::lock::with_lock_held;

/// Where and as whom an inline run runs.
pub struct Inline<'a> {
    /// The context whose lock this thread holds (`None`: the caller holds it already).
    pub ctx: Option<&'a Context>,
    /// The ACL user (`None`: the caller entered the scope).
    pub run_as: Option<&'a RunAs>,
    /// The execution id shown for the busy section, if it has one.
    pub section: Option<&'a str>,
}

impl Inline<'_> {
    /// Runs `plan` over `source`; a failure to start becomes a failed output.
    pub fn run(self, plan: &Plan, source: Box<dyn Source>) -> ExecutionOutput {
        match self.run_or_park(plan, source, false) {
            Ok(out) => out,
            Err(_) => ExecutionOutput::failed("an inline run parked"),
        }
    }

    /// As [`Inline::run`]; with `may_park`, a step that awaits parks the run: the rest is
    /// returned (`Err`) for [`go_on`], once this thread let go of the Redis lock.
    pub fn run_or_park(
        self,
        plan: &Plan,
        source: Box<dyn Source>,
        may_park: bool,
    ) -> Result<ExecutionOutput, Box<Parked>> {
        let run = || {
            if let Some(id) = self.section {
                gearpy::busy::name_section(id);
            }
            let _as = self.run_as.map(|r| Scope::enter(r.clone()));
            match may_park {
                true => engine::inline::run_inline_parking(source, plan, Some(&PyRuntime)),
                false => {
                    engine::inline::run_inline(source, plan, Some(&PyRuntime)).map(InlineRun::Done)
                }
            }
        };
        let ran = match self.ctx {
            Some(ctx) => with_lock_held(ctx, run),
            None => run(),
        };
        match ran {
            Ok(InlineRun::Done(out)) => Ok(out),
            Ok(InlineRun::Parked(rest)) => Err(Box::new(rest)),
            Err(e) => Ok(ExecutionOutput::failed(e)),
        }
    }
}

/// Continues a parked inline run on the worker pool as `run_as`; `on_done` gets the
/// whole run's output. The handle aborts it.
pub fn go_on(state: &ModuleState, rest: Parked, run_as: &RunAs, on_done: OnDone) -> Execution {
    let user = run_as.clone();
    rest.start(
        &state.pool,
        move |op| Box::new(AsUser::new(op, user.clone())),
        |source| access::source(source, run_as),
        on_done,
    )
}

/// Finishes an event's rest (`gearpy::Deferred`, a record-local flow's) once its await is
/// over, on the worker pool as `run_as`; a later await hands it back and it goes on once
/// that one is over too, so no worker waits. `then` gets the output.
pub fn finish_deferred(
    state: &'static ModuleState,
    rest: gearpy::Deferred,
    run_as: RunAs,
    then: Box<dyn FnOnce(ExecutionOutput) + Send>,
) {
    rest.when_ready(move |rest| {
        state.pool.spawn_fn(move || {
            let ran = {
                let _as = Scope::enter(run_as.clone());
                rest.finish_or_defer()
            };
            match ran {
                Ok(out) => then(out),
                Err(again) => finish_deferred(state, *again, run_as, then),
            }
        })
    });
}
