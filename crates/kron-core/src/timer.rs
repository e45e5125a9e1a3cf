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
    /// What an occurrence runs, by name, for people reading status: the registered function's
    /// qualified name (embedded mode), or the task's name when [`TimerDef::task`] is set.
    pub fn_name: Arc<str>,
    /// Server mode: the occurrence is a named task with a JSON payload, claimed by a worker
    /// under a lease ([`Input::Claim`](crate::input::Input::Claim)) rather than a callback run
    /// in this process. `None`: an in-process callback. Absent from a stored definition of a
    /// callback timer, so embedded and server timers share one stored form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Arc<TaskTarget>>,
}

/// What a timer runs. See [`TimerDef::target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Embedded mode: the function registered in this process under this qualified name.
    Callback { function: &'a str },
    /// Server mode: a named task with a JSON payload, for workers to claim.
    Task(&'a TaskTarget),
}

/// A server-mode timer's target: the task workers claim, its payload and its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskTarget {
    /// The task's name: what workers ask for when they claim.
    pub task: Arc<str>,
    /// The payload handed to the worker with each run, as canonical JSON text (object keys
    /// sorted, no whitespace), so equal payloads are equal bytes on every node.
    #[serde(
        serialize_with = "payload::serialize",
        deserialize_with = "payload::deserialize"
    )]
    pub payload: Arc<str>,
    /// The tenant the timer belongs to: only workers of that tenant claim its runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Arc<str>>,
}

/// Largest payload accepted, in bytes of canonical JSON.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

impl TaskTarget {
    /// A target with `payload` in canonical form. Validates the task and tenant names (the
    /// rules of timer names) and the payload's size.
    pub fn new(
        task: &str,
        payload: &serde_json::Value,
        tenant: Option<&str>,
    ) -> Result<TaskTarget, CoreError> {
        let target = TaskTarget {
            task: task.into(),
            payload: payload::canonical(payload).into(),
            tenant: tenant.map(Arc::from),
        };
        target.validate()?;
        Ok(target)
    }

    /// Checks the names and the payload's size.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate_name("task", &self.task)?;
        if let Some(tenant) = &self.tenant {
            validate_name("tenant", tenant)?;
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            let shown: String = self.payload.chars().take(64).collect();
            return Err(CoreError::invalid(
                "payload",
                format!("{shown}..."),
                format!(
                    "is {} bytes of JSON; at most {MAX_PAYLOAD_BYTES} are accepted",
                    self.payload.len()
                ),
            ));
        }
        Ok(())
    }
}

/// The payload's serialized form: JSON itself (not a string holding JSON), read back into its
/// canonical text.
mod payload {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    /// Canonical JSON text: `serde_json`'s map is ordered by key, and compact output has no
    /// whitespace.
    pub(super) fn canonical(value: &serde_json::Value) -> String {
        value.to_string()
    }

    pub(super) fn serialize<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
        value.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(canonical(&value).into())
    }
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
            && self.task == other.task
    }

    /// What an occurrence of this timer runs.
    pub fn target(&self) -> Target<'_> {
        match &self.task {
            Some(task) => Target::Task(task),
            None => Target::Callback {
                function: &self.fn_name,
            },
        }
    }
}

/// Checks a timer name: 1 to 128 characters from `A-Z a-z 0-9 _ - . :`, starting with a letter or
/// digit. Names appear in file-like contexts (CLI arguments, logs, idempotency keys), so no
/// whitespace, slashes or control characters.
pub fn validate_timer_id(id: &str) -> Result<(), CoreError> {
    validate_name("name", id)
}

/// The rules of [`validate_timer_id`], for any name of that kind (`arg` names it in errors).
fn validate_name(arg: &'static str, id: &str) -> Result<(), CoreError> {
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
            Err(CoreError::invalid(arg, shown, reason))
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
