//! Receiving messages from other shards: each decoded message goes to the part of the
//! cluster layer it is for (shuffle frames to the transport, run orders and progress to
//! `dist`, questions to `answer`, answers to `ask`; unregistering to the app's
//! `ShardHandler`). The top of the cluster layer; installed as the bus receiver at load.

use engine::shuffle::Bundle;
use engine::wire::bus::{read_frame_header, FRAME_HEADER_LEN};
use redis_module::Context;

use super::bus::Message;
use super::{answer, ask, dist, handler, registered, transport};

/// Dispatches one received message (main thread, Redis lock held). A shuffle frame keeps
/// the received buffer: its bundle is read behind the header, never copied out.
pub fn on_message(ctx: &Context, sender: &str, payload: Vec<u8>) {
    if let Some(h) = read_frame_header(&payload) {
        let bundle = Bundle {
            buf: payload,
            start: FRAME_HEADER_LEN,
        };
        transport::deliver(h.exec, h.step, h.from as usize, bundle);
        return;
    }
    let Some(m) = Message::decode(&payload) else {
        // Not ours (another module shares the bus id) or malformed: ignore.
        return;
    };
    // A shard that has run no script yet learns the cluster from the first shard that
    // writes to it, so that its own broadcasts (unregister, registrations made in a step)
    // reach the others.
    if crate::model::topology::current().is_none() {
        crate::model::topology::refresh();
    }
    match m {
        Message::Frame {
            exec,
            step,
            from,
            frame,
        } => transport::deliver(exec, step, from as usize, Bundle::plain(frame)),
        Message::Credit {
            exec,
            step,
            from,
            n,
        } => transport::credit(exec, step, from as usize, n),
        Message::Run(order) => dist::on_run(order),
        Message::RunRegistered(order) => registered::on_run(order),
        Message::Done { id } => dist::on_done(&id, sender),
        Message::PartFailed { id, from, error } => dist::on_part_failed(&id, from as usize, error),
        Message::Alive { id } => dist::on_alive(&id, sender),
        Message::Ask { req, query } => answer::on_ask(ctx, sender, req, query),
        Message::Answer { req, reply } => ask::on_answer(sender, req, &reply),
        Message::Unregister { id, abort_pending } => {
            if let Some(h) = handler::get() {
                h.unregister(ctx, &id, abort_pending);
            }
        }
    }
}
