//! Fuzzes the sessions blob decoder: blobs come from RDB files, the AOF and replication
//! (`RG.INNERREGISTER <blob>`) and other shards, so `sessions::decode` must return `None`
//! on malformed input, never panic or allocate from an unchecked count. What decodes
//! re-encodes to a blob that decodes the same. `engine/tests/wire_props.rs` checks the
//! same on stable.
#![no_main]

use engine::wire::sessions::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(sessions) = decode(data) else {
        return;
    };
    assert_eq!(decode(&encode(&sessions)).as_ref(), Some(&sessions));
});
