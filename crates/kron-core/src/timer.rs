//! Timers: their definition (what the application registers) and their durable state.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::schedule::ScheduleSpec;
use crate::time::EpochMs;
use crate::CoreError;

/// Longest timer name accepted.
pub const MAX_TIMER_ID_LEN: usize = 128;

/// What to do when an occurrence falls due while the previous run of the same timer has not
/// finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// The next occurrence is computed from the previous run's finish, so runs never overlap.
    Delay,
    /// Keep the schedule; an occurrence that finds a run in progress is skipped
    /// (`RUN_SKIPPED_OVERLAP`).
    Skip,
    /// Keep the schedule and run concurrently.
    Allow,
}

/// What a recurring timer does with occurrences that fell due while no runtime was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Catchup {
    /// One run right after start stands for all missed occurrences.
    Once,
    /// Record them as `RUN_MISSED` and wait for the next future occurrence.
    Skip,
    /// Run every missed occurrence, in order.
    All,
}

macro_rules! text_enum {
    ($ty:ty, $arg:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Result<Self, CoreError> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(CoreError::invalid(
                        $arg,
                        text,
                        concat!($arg, " must be one of ", text_enum!(@join $($text),+)),
                    )),
                }
            }
        }
    };
    (@join $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

text_enum!(
    Overlap,
    "overlap",
    Delay = "delay",
    Skip = "skip",
    Allow = "allow"
);
text_enum!(
    Catchup,
    "catchup",
    Once = "once",
    Skip = "skip",
    All = "all"
);

/// Everything the application says about a timer when it registers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerDef {
    pub id: Arc<str>,
    pub schedule: ScheduleSpec,
    /// IANA zone the schedule is read in (cron fields, naive `at` values). Shared: the engine
    /// keeps one copy of each distinct zone name (and function name) for all its timers.
    pub timezone: Arc<str>,
    /// Attempts per due run, the first included (>= 1).
    pub max_attempts: u32,
    pub overlap: Overlap,
    pub catchup: Catchup,
    /// Each occurrence is delayed by a random amount in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// The registered function's qualified name, for people reading status.
    pub fn_name: Arc<str>,
}

impl TimerDef {
    /// Whether two definitions schedule the same way (the function name is not part of it: it
    /// may move between modules without changing when the timer fires).
    pub fn same_schedule_as(&self, other: &TimerDef) -> bool {
        self.schedule == other.schedule
            && self.timezone == other.timezone
            && self.jitter_ms == other.jitter_ms
    }

    /// Whether anything that governs runs differs.
    pub fn same_definition_as(&self, other: &TimerDef) -> bool {
        self.same_schedule_as(other)
            && self.max_attempts == other.max_attempts
            && self.overlap == other.overlap
            && self.catchup == other.catchup
    }
}

/// Checks a timer name: 1 to 128 characters from `A-Z a-z 0-9 _ - . :`, starting with a letter or
/// digit. Names appear in file-like contexts (CLI arguments, logs, idempotency keys), so no
/// whitespace, slashes or control characters.
pub fn validate_timer_id(id: &str) -> Result<(), CoreError> {
    let reason = if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > MAX_TIMER_ID_LEN {
        Some("must be at most 128 characters")
    } else if !id.as_bytes()[0].is_ascii_alphanumeric() {
        Some("must start with a letter or digit")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        Some("may contain only letters, digits, '_', '-', '.' and ':'")
    } else {
        None
    };
    match reason {
        Some(reason) => {
            let shown: String = id.chars().take(64).collect();
            let shown = if shown.len() < id.len() {
                format!("{shown}...")
            } else {
                shown
            };
            Err(CoreError::invalid("name", shown, reason))
        }
        None => Ok(()),
    }
}

/// Where a timer is in its life, apart from runs in flight (which the engine derives
/// `running`/`retrying` from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Will fire at `next_run_at`. Left by pause, remove, orphaning, or a one-shot's final outcome.
    Active,
    /// Starts no runs until resumed (`TIMER_RESUMED` returns it to `Active`).
    Paused,
    /// Persisted, but no function was registered for it when the runtime started: listed, never
    /// run. A later registration with the same name revives it.
    Orphaned,
    /// A one-shot whose run succeeded. Final unless the definition changes.
    Completed,
    /// A one-shot whose last attempt failed. Final unless the definition changes.
    Dead,
}

/// The state of a timer as shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerState {
    Scheduled,
    Running,
    Retrying,
    Paused,
    Orphaned,
    Completed,
    Dead,
}

impl TimerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerState::Scheduled => "scheduled",
            TimerState::Running => "running",
            TimerState::Retrying => "retrying",
            TimerState::Paused => "paused",
            TimerState::Orphaned => "orphaned",
            TimerState::Completed => "completed",
            TimerState::Dead => "dead",
        }
    }
}

/// How the last due run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "error", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LastStatus {
    Ok,
    /// An attempt failed and another is scheduled.
    Failed(String),
    /// The last attempt failed.
    Dead(String),
    SkippedOverlap,
}

impl LastStatus {
    /// "OK", "FAILED: <error>", "DEAD: <error>", "SKIPPED_OVERLAP".
    pub fn display(&self) -> String {
        match self {
            LastStatus::Ok => "OK".to_string(),
            LastStatus::Failed(e) => format!("FAILED: {}", first_line(e)),
            LastStatus::Dead(e) => format!("DEAD: {}", first_line(e)),
            LastStatus::SkippedOverlap => "SKIPPED_OVERLAP".to_string(),
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            LastStatus::Failed(e) | LastStatus::Dead(e) => Some(e),
            _ => None,
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// A timer's durable record: its definition and everything status needs, as stored in one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    pub def: TimerDef,
    pub lifecycle: Lifecycle,
    /// The nominal time of the next occurrence (before jitter); `None` when there is none
    /// (a one-shot already due or done, or a `delay` timer whose run is in flight).
    pub next_scheduled_at: Option<EpochMs>,
    /// When that occurrence will fire (nominal + jitter).
    pub next_fire_at: Option<EpochMs>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
    pub last_run_at: Option<EpochMs>,
    pub last_status: Option<LastStatus>,
    pub last_duration_ms: Option<u64>,
    /// Attempts started.
    pub run_count: u64,
    /// Attempts that failed (raised, or were interrupted by the process ending).
    pub failure_count: u64,
}

impl TimerRecord {
    /// The record of a timer created at `now`: active, never run, its first occurrence
    /// scheduled at `next_scheduled_at` and firing at `next_fire_at` (with jitter).
    pub fn created(
        def: TimerDef,
        now: EpochMs,
        next_scheduled_at: Option<EpochMs>,
        next_fire_at: Option<EpochMs>,
    ) -> TimerRecord {
        TimerRecord {
            def,
            lifecycle: Lifecycle::Active,
            next_scheduled_at,
            next_fire_at,
            created_at: now,
            updated_at: now,
            last_run_at: None,
            last_status: None,
            last_duration_ms: None,
            run_count: 0,
            failure_count: 0,
        }
    }
}
