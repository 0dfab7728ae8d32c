//! Time-event values (module type `rg_timeev`) as they arrive from outside: the RDB (a
//! period in seconds, the pickled callback, who it runs as) and `RG.INNERTIMEEVENT <key>
//! <seconds> <pickled> [user]` from replication and the AOF. The pickled bytes are checked
//! by the Python layer and the user by [`super::run_as::decode`]; the period is checked
//! here, because it becomes a Redis timer.

use std::time::Duration;

/// The longest period of any timer (time events, StreamReader `duration` and retries):
/// 2^32-1 seconds, about 136 years. Redis keeps a timer's due time as a signed 64-bit count
/// of microseconds and redis-module panics (aborting redis-server from a timer callback)
/// when the period in ms does not fit an i64, so periods are checked against this bound
/// where users give them, and the module clamps to it as a last resort.
pub const MAX_PERIOD_SECS: u64 = u32::MAX as u64;

/// A period within what a timer allows (1 s .. `MAX_PERIOD_SECS`), as every stored event
/// has: a value saved with it always loads.
pub fn clamp_period(period: Duration) -> Duration {
    period.clamp(Duration::from_secs(1), Duration::from_secs(MAX_PERIOD_SECS))
}

/// The period of `RG.INNERTIMEEVENT`, refused unless a timer can hold it: a stored value
/// must always load back (a period the timer refused once left a key that failed every
/// RDB load).
pub fn check_period(secs: u64) -> Result<Duration, String> {
    if secs == 0 || secs > MAX_PERIOD_SECS {
        return Err(format!(
            "ERR time event period must be between 1 and {MAX_PERIOD_SECS} seconds"
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// The milliseconds redis-module's `create_timer` converts a period to; `None` where it
/// would panic.
pub fn timer_millis(period: Duration) -> Option<i64> {
    i64::try_from(period.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_or_clamped_period_fits_a_timer() {
        for secs in [
            0,
            1,
            59,
            3600,
            MAX_PERIOD_SECS,
            MAX_PERIOD_SECS + 1,
            u64::MAX,
        ] {
            let clamped = clamp_period(Duration::from_secs(secs));
            assert!(timer_millis(clamped).is_some(), "{secs}");
            if let Ok(p) = check_period(secs) {
                assert_eq!(clamp_period(p), p, "{secs}");
            }
        }
    }

    #[test]
    fn out_of_range_periods_are_refused() {
        // RG.INNERTIMEEVENT k 9223372036854775807 x stored a key that no timer could hold:
        // the timer panicked and the next RDB load failed (issue 10).
        for secs in [0, MAX_PERIOD_SECS + 1, i64::MAX as u64, u64::MAX] {
            assert!(check_period(secs).is_err(), "{secs}");
        }
    }
}
