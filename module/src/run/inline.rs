//! The one inline run: a sync registration's plan over one ready source, record at a time
//! on this thread (`engine::inline`), with the Redis lock held through the caller's context
//! (a busy section on the main thread, so `-BUSY` and kills work) and as the registration's
//! ACL user. Sync events, triggers, hooks, linked commands and sync stream batches all run
//! through here. Depends on `redis` and the Python layer.

use engine::exec::{ExecutionOutput, Source};
use engine::plan::Plan;
use gearpy::PyRuntime;
use redis_module::Context;

use crate::redis::access::{RunAs, Scope};
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
        let run = || {
            if let Some(id) = self.section {
                gearpy::busy::name_section(id);
            }
            let _as = self.run_as.map(|r| Scope::enter(r.clone()));
            engine::inline::run_inline(source, plan, Some(&PyRuntime))
        };
        match self.ctx {
            Some(ctx) => with_lock_held(ctx, run),
            None => run(),
        }
        .unwrap_or_else(ExecutionOutput::failed)
    }
}
