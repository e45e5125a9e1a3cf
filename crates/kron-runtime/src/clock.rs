//! The runtime's only source of time. Tests inject a [`ManualClock`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kron_core::time::EpochMs;

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> EpochMs;

    /// Microseconds, for sleeping precisely until a millisecond instant.
    fn now_micros(&self) -> i64 {
        self.now_ms().saturating_mul(1_000)
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
