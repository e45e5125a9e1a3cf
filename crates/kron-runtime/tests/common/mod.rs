//! What the runtime's integration tests share: the instant their clocks start at, a polling
//! wait on real time (the runtime's threads need it even under a manual clock), definitions
//! and a small configuration.

use std::time::{Duration, Instant};

use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, Overlap, TimerDef};
use kron_runtime::RuntimeConfig;

/// Where the tests' clocks start: 2026-11-27T08:00:00Z.
pub const START: i64 = 1_795_766_400_000;

/// Calls `f` every 10 ms until it answers true, for at most `timeout`; answers its last answer.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// A timer of the function `tests.job`, in UTC, delaying overlaps and catching up once.
pub fn def(id: &str, schedule: ScheduleSpec, max_attempts: u32) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule,
        timezone: "UTC".into(),
        max_attempts,
        overlap: Overlap::Delay,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: "tests.job".into(),
        task: None,
    }
}

/// A runtime on `dir` with two workers.
pub fn config(dir: &std::path::Path) -> RuntimeConfig {
    let mut c = RuntimeConfig::new(dir);
    c.max_workers = 2;
    c
}
