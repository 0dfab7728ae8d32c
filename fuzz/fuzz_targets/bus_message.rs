//! Fuzzes the cluster bus message decoder: messages come from other nodes (or anything
//! that speaks the cluster bus), so `Message::decode` must reject malformed input with
//! `None`, never panic or allocate from an unchecked length. A decoded message must
//! re-encode to bytes that decode to the same message. The payloads a message carries are
//! decoded the way the module's dispatch does: answers as replies, session queries as
//! sessions blobs, frames as shuffle frames. `engine/tests/wire_props.rs` checks the same
//! on stable.
#![no_main]

use engine::wire::bus::{Message, Query};
use engine::wire::{reply, sessions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(m) = Message::decode(data) else {
        return;
    };
    let again = Message::decode(&m.encode());
    assert_eq!(again.as_ref(), Some(&m), "re-encoded message decodes differently");
    match &m {
        Message::Answer { reply: r, .. } => {
            let _ = reply::decode_reply(r);
        }
        Message::Ask {
            query: Query::Session(blob),
            ..
        } => {
            let _ = sessions::decode(blob);
        }
        Message::Frame { frame, .. } => {
            let _ = engine::shuffle::decode_frame(frame);
        }
        _ => {}
    }
});
