//! The runtime's only source of time. Tests inject a [`ManualClock`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kron_core::time::EpochMs;

/// Longest [`Clock::wait_until_micros`] blocks. Attempts start at most a few milliseconds ahead
/// of their instant, so a longer wait means the clock went back; the attempt then runs.
const MAX_INSTANT_WAIT: Duration = Duration::from_millis(20);

/// The instant `timeout` from now. A timeout too long to add (`Duration::MAX`, what an infinite
/// `shutdown(timeout)` becomes) is a century: no wait outlives that, and it cannot panic.
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(timeout.min(CENTURY))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(now)
}

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> EpochMs;

    /// Microseconds, for sleeping precisely until an instant.
    fn now_micros(&self) -> i64 {
        self.now_ms().saturating_mul(1_000)
    }

    /// Blocks until `at_us` (epoch microseconds), for at most a few milliseconds.
    fn wait_until_micros(&self, at_us: i64) {
        let deadline = Instant::now() + MAX_INSTANT_WAIT;
        loop {
            let left = at_us.saturating_sub(self.now_micros());
            let now = Instant::now();
            if left <= 0 || now >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_micros(left.unsigned_abs()).min(deadline - now));
        }
    }
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> EpochMs {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // A clock before 1970 is a broken clock; treat it as the epoch.
            Err(_) => 0,
        }
    }

    fn now_micros(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn new(start: EpochMs) -> Self {
        ManualClock {
            now: AtomicI64::new(start),
        }
    }
    pub fn set(&self, now: EpochMs) {
        self.now.store(now, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> EpochMs {
        self.now.load(Ordering::SeqCst)
    }
}
