//! Fuzzes the decoder of replies one shard sends another (`Message::Answer`): nested
//! arrays are bounded in depth, lengths are checked before use, and whatever decodes
//! re-encodes to a reply that decodes the same. `engine/tests/wire_props.rs` checks the
//! same on stable.
#![no_main]

use engine::wire::reply::{decode_reply, encode_reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(r) = decode_reply(data) else {
        return;
    };
    let encoded = encode_reply(&r);
    assert_eq!(decode_reply(&encoded).as_ref(), Some(&r));
    // The tag-and-length form has one encoding per reply.
    assert_eq!(encoded, data, "two encodings of one reply");
});
