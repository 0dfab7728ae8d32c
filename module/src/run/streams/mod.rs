//! StreamReader events: the `xadd` notification counts new entries per stream and, once a
//! batch is ready (or `duration` ms passed), starts that stream's run loop (`run`) on the
//! worker pool; `io` reads, acks and trims through the consumer group.

pub mod io;
pub mod run;

use std::sync::Arc;

use redis_module::{Context, ContextFlags, NotifyEvent};

use crate::model::registrations::Mode;
use crate::model::streams::{Status, StreamRegistration, Trigger};

/// The `xadd` notification handler (main thread, Redis lock held).
pub fn on_stream_event(ctx: &Context, _kind: NotifyEvent, event: &str, key: &[u8]) {
    if event != "xadd" {
        return;
    }
    crate::redis::ffi::trampoline::callback("a stream event", (), || {
        let Some(state) = crate::model::state::get() else {
            return;
        };
        if state.streams.is_empty()
            || ctx
                .get_flags()
                .intersects(ContextFlags::LOADING | ContextFlags::SLAVE)
        {
            return;
        }
        for reg in state
            .streams
            .all()
            .into_iter()
            .filter(|r| r.matches_key(key) && r.may_use(key))
        {
            match reg.on_entry(key) {
                Trigger::Nothing => {}
                Trigger::Run if reg.mode == Mode::Sync => run::run_sync(ctx, &reg, key),
                Trigger::Run => run::spawn(reg, key.to_vec()),
                Trigger::Timer => run::arm_duration(ctx, &reg, key.to_vec()),
            }
        }
    });
}

/// Resumes a paused registration.
pub fn unpause(reg: Arc<StreamRegistration>) {
    reg.set_status(Status::Ok);
    start(reg);
}

/// Starts a new registration: processes what its streams already hold (from a worker).
pub fn start(reg: Arc<StreamRegistration>) {
    let Some(state) = crate::model::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || run::scan_existing(reg));
}
