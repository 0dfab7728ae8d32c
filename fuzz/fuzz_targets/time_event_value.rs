//! Fuzzes time-event values as they arrive: from the RDB (a `u64` period in seconds, then
//! the pickled callback) and from `RG.INNERTIMEEVENT <key> <seconds> <pickled>` (the
//! period as text). Every period `time_event::period` accepts must be one a Redis timer can
//! hold (milliseconds in an `i64`, or redis-module's `create_timer` panics), and at least
//! the minimum period; anything else must be refused. `engine/tests/wire_props.rs` checks
//! the same on stable.
#![no_main]

use engine::wire::time_event::{period, timer_millis, MIN_PERIOD};
use libfuzzer_sys::fuzz_target;

fn check(secs: u64) {
    if let Ok(p) = period(secs) {
        assert!(p >= MIN_PERIOD, "{secs} s gives a period under the minimum");
        assert!(
            timer_millis(p).is_some(),
            "{secs} s was accepted but no timer can hold it"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // RDB form: 8 bytes of period, the rest is the pickled callback (opaque here).
    if let Some(head) = data.get(..8) {
        check(u64::from_le_bytes(head.try_into().unwrap_or_default()));
    }
    // Command form: the whole input as the period argument.
    if let Some(secs) = std::str::from_utf8(data)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    {
        check(secs);
    }
});
