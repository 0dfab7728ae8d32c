//! Receiving messages from other shards: each decoded message goes to the part of the
//! cluster layer it is for (shuffle frames to the transport, run orders and progress to
//! `dist`, questions to `answer`, answers to `ask`; unregistering to the app's
//! `ShardHandler`). The top of the cluster layer; installed as the bus receiver at load.

use redis_module::Context;

use super::bus::Message;
use super::{answer, ask, dist, handler, registered, transport};

/// Dispatches one received message (main thread, Redis lock held).
pub fn on_message(ctx: &Context, sender: &str, payload: &[u8]) {
    let Some(m) = Message::decode(payload) else {
        // Not ours (another module shares the bus id) or malformed: ignore.
        return;
    };
    match m {
        Message::Frame {
            exec,
            step,
            from,
            frame,
        } => transport::deliver(exec, step, from as usize, frame),
        Message::Run(order) => dist::on_run(order),
        Message::RunRegistered(order) => registered::on_run(order),
        Message::Done { id } => dist::on_done(&id, sender),
        Message::PartFailed { id, from, error } => dist::on_part_failed(&id, from as usize, error),
        Message::Alive { id } => dist::on_alive(&id),
        Message::Ask { req, query } => answer::on_ask(ctx, sender, req, query),
        Message::Answer { req, reply } => ask::on_answer(sender, req, &reply),
        Message::Unregister { id, abort_pending } => {
            if let Some(h) = handler::get() {
                h.unregister(&id, abort_pending);
            }
        }
    }
}
