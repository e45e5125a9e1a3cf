//! Reading a data directory: opening it read-only, deriving timer views the way the runtime does,
//! and the JSON shapes of timers and events.

use std::path::{Path, PathBuf};

use kron_core::engine::TimerView;
use kron_core::event::StoredEvent;
use kron_core::run::{RunPhase, RunRecord};
use kron_core::time::{format_utc, EpochMs};
use kron_store::{Reader, StoreError, StoredViews};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output::timefmt::TimeFormatter;

/// The data directory the command works on, as the user named it.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
}

impl DataDir {
    pub fn new(path: Option<PathBuf>) -> DataDir {
        DataDir {
            path: path
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from(".kron")),
        }
    }

    pub fn display(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether a live runtime holds the directory's writer lock.
    pub fn is_live(&self) -> bool {
        kron_store::is_locked(&self.path)
    }

    /// Opens the directory read-only. A missing directory or database is reported (and nothing
    /// is created).
    pub fn reader(&self) -> CliResult<Reader> {
        Reader::open(&self.path).map_err(|e| self.open_error(e))
    }

    pub fn open_error(&self, e: StoreError) -> CliError {
        match e {
            StoreError::NotFound { path } if path == self.path => CliError::failure(format!(
                "no Kron data directory at {} (give --data-dir DIR or set KRON_HOME)",
                self.display()
            )),
            StoreError::NotFound { .. } => CliError::failure(format!(
                "{} holds no Kron database yet (no runtime has started there)",
                self.display()
            )),
            other => other.into(),
        }
    }
}

/// Timers and runs in flight, and the views derived from them by the engine itself, so `state`
/// and `next_run_at` mean exactly what they mean in the runtime.
pub fn directory_view(reader: &Reader) -> CliResult<StoredViews> {
    reader.views().map_err(|e| match e {
        kron_store::OpenError::Restore(e) => CliError::failure(format!(
            "{}: a stored timer cannot be read: {e}",
            reader.db_path().display()
        )),
        kron_store::OpenError::Store(e) => e.into(),
    })
}

/// "no timer named X in DIR", with a hint when the name's history shows it was removed.
pub fn unknown_timer(reader: &Reader, dir: &DataDir, name: &str, time: &TimeFormatter) -> CliError {
    let removed = reader
        .events(&kron_store::EventFilter {
            timer_id: Some(name.to_string()),
            kinds: vec![kron_core::event::EventKind::TimerRemoved],
            limit: Some(1),
            ..Default::default()
        })
        .ok()
        .and_then(|events| events.into_iter().next());
    match removed {
        Some(event) => CliError::failure(format!(
            "timer {name:?} was removed {} (its history remains: kron job history {name})",
            time.local(event.event.ts)
        )),
        None => CliError::failure(format!("no timer named {name:?} in {}", dir.display())),
    }
}

pub fn iso(ms: Option<EpochMs>) -> Option<String> {
    ms.map(format_utc)
}

/// A timer in JSON: the keys of the Python `kron.status()`.
#[derive(Debug, Serialize)]
pub struct TimerJson {
    pub id: String,
    pub state: &'static str,
    pub schedule: String,
    pub timezone: String,
    pub fn_name: String,
    pub next_run_at: Option<String>,
    pub last_run_at: Option<String>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<u64>,
    pub run_count: u64,
    pub failure_count: u64,
    pub max_attempts: u32,
    pub overlap: &'static str,
    pub catchup: &'static str,
    pub jitter_ms: u64,
    pub active_runs: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl TimerJson {
    pub fn from_view(view: &TimerView) -> TimerJson {
        let rec = &view.record;
        TimerJson {
            id: rec.def.id.to_string(),
            state: view.state.as_str(),
            schedule: view.schedule.clone(),
            timezone: rec.def.timezone.to_string(),
            fn_name: rec.def.fn_name.to_string(),
            next_run_at: iso(view.next_run_at),
            last_run_at: iso(rec.last_run_at),
            last_status: rec.last_status.as_ref().map(|s| s.display()),
            last_error: rec
                .last_status
                .as_ref()
                .and_then(|s| s.error())
                .map(str::to_string),
            last_duration_ms: rec.last_duration_ms,
            run_count: rec.run_count,
            failure_count: rec.failure_count,
            max_attempts: rec.def.max_attempts,
            overlap: rec.def.overlap.as_str(),
            catchup: rec.def.catchup.as_str(),
            jitter_ms: rec.def.jitter_ms,
            active_runs: view.active_runs,
            created_at: format_utc(rec.created_at),
            updated_at: format_utc(rec.updated_at),
        }
    }
}

/// A run in flight in JSON.
#[derive(Debug, Serialize)]
pub struct RunJson {
    pub run_id: String,
    pub phase: &'static str,
    pub attempt: u32,
    pub scheduled_at: String,
    pub fire_at: String,
    pub manual: bool,
}

pub fn phase_str(phase: RunPhase) -> &'static str {
    match phase {
        RunPhase::Due => "due",
        RunPhase::Running => "running",
        RunPhase::RetryWait => "retry_wait",
    }
}

impl RunJson {
    pub fn from_run(run: &RunRecord) -> RunJson {
        RunJson {
            run_id: run.run_id.to_string(),
            phase: phase_str(run.phase),
            attempt: run.attempt,
            scheduled_at: format_utc(run.scheduled_at),
            fire_at: format_utc(run.fire_at),
            manual: run.manual,
        }
    }
}

/// An event in JSON: the keys of the Python `kron.history()`.
#[derive(Debug, Serialize)]
pub struct EventJson {
    pub seq: i64,
    pub ts: String,
    pub timer_id: String,
    pub kind: &'static str,
    pub run_id: Option<String>,
    pub attempt: Option<u32>,
    pub scheduled_at: Option<String>,
    pub error: Option<String>,
    pub duration_ms: Option<u64>,
    pub next_attempt_at: Option<String>,
    pub count: Option<u64>,
    pub until: Option<String>,
    pub manual: bool,
    pub schedule: Option<String>,
    pub next_run_at: Option<String>,
}

impl EventJson {
    pub fn from_event(stored: &StoredEvent) -> EventJson {
        let e = &stored.event;
        let d = &e.detail;
        EventJson {
            seq: stored.seq,
            ts: format_utc(e.ts),
            timer_id: e.timer_id.clone(),
            kind: e.kind.as_str(),
            run_id: e.run_id.as_ref().map(|r| r.to_string()),
            attempt: e.attempt,
            scheduled_at: iso(d.scheduled_at),
            error: d.error.clone(),
            duration_ms: d.duration_ms,
            next_attempt_at: iso(d.next_attempt_at),
            count: d.count,
            until: iso(d.until),
            manual: d.manual,
            schedule: d.schedule.clone(),
            next_run_at: iso(d.next_run_at),
        }
    }
}

/// Serializes a value for `Out::json`: pretty JSON, keys in the order the struct declares them.
pub fn to_value<T: Serialize>(value: &T) -> CliResult<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("encoding JSON: {e}")))
}

/// Resolves `path` for display in JSON (absolute when possible, as given otherwise).
pub fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
