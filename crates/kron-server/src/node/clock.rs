//! A node's clock: what the leader stamps into the entries it proposes, and what `/healthz`
//! reports as `now_ms` for the leader to measure the offset of this node's clock.
//!
//! Test only: `KRON_TEST_CLOCK_OFFSET_MS` (a whole number of ms, may be negative) shifts this
//! node's clock by that much, so that fault tests can run a node whose clock is wrong without
//! touching the machine's clock. Never set it in production: a leader whose clock is off
//! schedules every timer off by as much.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kron_core::time::EpochMs;

/// The test-only clock offset variable (see the module documentation).
pub const TEST_OFFSET_ENV: &str = "KRON_TEST_CLOCK_OFFSET_MS";

/// The system clock, shifted by a test offset (0 unless set).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The system clock, shifted by `KRON_TEST_CLOCK_OFFSET_MS` when it is set.
    pub fn from_env() -> Result<Clock, String> {
        let offset_ms = match std::env::var(TEST_OFFSET_ENV) {
            Err(_) => 0,
            Ok(text) => text.trim().parse::<i64>().map_err(|_| {
                format!(
                    "invalid {TEST_OFFSET_ENV} {text:?}: must be a whole number of milliseconds"
                )
            })?,
        };
        Ok(Clock {
            offset_ms: AtomicI64::new(offset_ms),
        })
    }

    /// Now, in ms since the epoch.
    pub fn now(&self) -> EpochMs {
        system_now().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Test only: shifts this clock by `offset_ms` from the system clock.
    pub fn set_test_offset(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

fn system_now() -> EpochMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_offset_shifts_the_clock() {
        let clock = Clock::default();
        let before = clock.now();
        clock.set_test_offset(5_000);
        let shifted = clock.now();
        assert!(shifted - before >= 5_000, "{before} {shifted}");
        assert!(shifted - before < 6_000, "{before} {shifted}");
    }
}
