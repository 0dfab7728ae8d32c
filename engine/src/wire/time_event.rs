//! A time-event value (module type `rg_timeev`): its period in whole seconds and its
//! callback, cloudpickled. Both arrive from outside: the RDB (`load_unsigned` then a
//! string buffer), and `RG.INNERTIMEEVENT <key> <seconds> <pickled>` from replication and
//! the AOF. The pickled bytes are only unpickled when the timer first fires (and a failure
//! there stops the event), so the period is what must be checked here.
//!
//! A period becomes a Redis timer, whose API takes milliseconds as a signed 64-bit integer
//! (redis-module's `create_timer` panics on more). A value whose period does not fit is
//! refused, so it is never stored, and never makes a saved RDB unloadable.

use std::time::Duration;

/// The longest period, in seconds, whose milliseconds fit a Redis timer.
pub const MAX_PERIOD_SECS: u64 = i64::MAX as u64 / 1000;

/// The shortest period: a time event fires at most once a second (as 1.2's do).
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// The period of a stored value, or an error if no timer can hold it.
pub fn period(secs: u64) -> Result<Duration, String> {
    if secs > MAX_PERIOD_SECS {
        return Err(format!(
            "time event period {secs} s is out of range (at most {MAX_PERIOD_SECS} s)"
        ));
    }
    Ok(Duration::from_secs(secs).max(MIN_PERIOD))
}

/// The milliseconds a timer is created with for `period` (what `create_timer` converts).
pub fn timer_millis(period: Duration) -> Option<i64> {
    i64::try_from(period.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_period_fits_a_timer() {
        for secs in [0, 1, 59, 3600, MAX_PERIOD_SECS - 1, MAX_PERIOD_SECS] {
            let p = period(secs).unwrap();
            assert!(p >= MIN_PERIOD);
            assert!(timer_millis(p).is_some(), "{secs}");
        }
    }

    #[test]
    fn out_of_range_periods_are_refused() {
        // RG.INNERTIMEEVENT k 9223372036854775807 x used to store a key that no timer
        // could hold: the timer panicked and the next DEBUG RELOAD failed.
        for secs in [MAX_PERIOD_SECS + 1, i64::MAX as u64, u64::MAX] {
            assert!(period(secs).is_err(), "{secs}");
            assert!(timer_millis(Duration::from_secs(secs)).is_none());
        }
    }
}
