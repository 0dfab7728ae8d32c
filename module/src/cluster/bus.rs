//! Messages between shards on the cluster bus: sending and dispatch. Their wire form
//! (`GS`, a version byte, a kind, then length-prefixed fields) is `engine::wire::bus`;
//! a message that does not decode is dropped. Handlers run on the main thread, so they
//! only queue or hand work to workers.

use redis_module::Context;

// The wire form lives in the engine so the fuzz targets reach it without Redis.
pub use engine::wire::bus::{Message, RunOrder};

/// Sends `m` to the node `to` (None: every other node). False: the bus refused it.
pub fn send(to: Option<&str>, m: &Message) -> bool {
    crate::redis::ffi::cluster::send(to, &m.encode())
}

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
        } => super::transport::deliver(exec, step, from as usize, frame),
        Message::Run(order) => super::dist::on_run(order),
        Message::Done { id } => super::dist::on_done(&id, sender),
        Message::PartFailed { id, from, error } => {
            super::dist::on_part_failed(&id, from as usize, error)
        }
        Message::Alive { id } => super::dist::on_alive(&id),
        Message::Ask { req, query } => super::ask::on_ask(ctx, sender, req, query),
        Message::Answer { req, reply } => super::ask::on_answer(sender, req, &reply),
        Message::Unregister { id, abort_pending } => {
            crate::commands::internal::unregister_local(&id, abort_pending)
        }
    }
}

/// Tells every other shard to drop registration `id`.
pub fn broadcast_unregister(id: &str, abort_pending: bool) {
    if crate::model::topology::current().is_some() {
        send(
            None,
            &Message::Unregister {
                id: id.to_owned(),
                abort_pending,
            },
        );
    }
}
