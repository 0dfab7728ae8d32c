//! Messages between shards on the cluster bus: sending them (`dispatch` receives). Their wire form
//! (`GS`, a version byte, a kind, then length-prefixed fields) is `engine::wire::bus`;
//! a message that does not decode is dropped. Handlers run on the main thread, so they
//! only queue or hand work to workers.

// The wire form lives in the engine so the fuzz targets reach it without Redis.
pub use engine::wire::bus::{Message, RunOrder};

/// Sends `m` to the node `to` (None: every other node). False: the bus refused it. The
/// encoded bytes (pooled for frames) go back to `pool::global()` once Redis copied them.
pub fn send(to: Option<&str>, m: &Message) -> bool {
    let bytes = m.encode();
    let sent = send_raw(to, &bytes);
    engine::pool::global().recycle(bytes);
    sent
}

/// Sends an already encoded message (a shuffle bundle behind its header, written in
/// place) as it is. False: the bus refused it.
pub fn send_raw(to: Option<&str>, payload: &[u8]) -> bool {
    crate::redis::ffi::cluster::send(to, payload)
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
