//! Fuzzes time-event values as they arrive: from the RDB (a `u64` period in seconds, the
//! pickled callback, then who it runs as) and from `RG.INNERTIMEEVENT <key> <seconds>
//! <pickled> [user]` (the period as text). Whatever period is stored, refused-or-accepted
//! by `check_period` or clamped on load by `clamp_period`, must be one a Redis timer can
//! hold (milliseconds in an `i64`, or redis-module's `create_timer` panics). The user field
//! must decode only from its one encoding. `engine/tests/wire_props.rs` checks the same on
//! stable.
#![no_main]

use std::time::Duration;

use engine::wire::run_as;
use engine::wire::time_event::{check_period, clamp_period, timer_millis};
use libfuzzer_sys::fuzz_target;

fn check(secs: u64) {
    let clamped = clamp_period(Duration::from_secs(secs));
    assert!(clamped >= Duration::from_secs(1));
    assert!(timer_millis(clamped).is_some(), "{secs} s clamps to {clamped:?}");
    if let Ok(p) = check_period(secs) {
        assert_eq!(clamp_period(p), p, "{secs} s accepted but out of the clamp range");
    }
}

fuzz_target!(|data: &[u8]| {
    // RDB form: 8 bytes of period, then the user field (the pickle is opaque here).
    if let Some((head, rest)) = data.split_first_chunk::<8>() {
        check(u64::from_le_bytes(*head));
        if let Some(r) = run_as::decode(rest) {
            assert_eq!(run_as::encode(&r), rest, "two encodings of {r:?}");
        }
    }
    // Command form: the whole input as the period argument.
    if let Some(secs) = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    {
        check(secs);
    }
});
