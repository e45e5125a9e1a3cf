//! The server's answers read back for display: a timer's status dict and history events (the
//! shapes of kron-server's `http::wire`, instants as ISO 8601 UTC strings).

use kron_core::event::{Event, EventDetail, EventKind, StoredEvent};
use kron_core::run::RunId;
use kron_core::time::{parse_datetime, EpochMs};
use serde::Deserialize;
use serde_json::Value;

use crate::error::CliError;

/// A timer's status dict, as `GET /v1/timers` and `GET /v1/timers/{name}` answer it.
#[derive(Debug, Clone, Deserialize)]
pub struct TimerDict {
    pub id: String,
    pub state: String,
    pub schedule: String,
    #[serde(default)]
    pub fn_name: String,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub next_run_at: Option<String>,
    #[serde(default)]
    pub last_run_at: Option<String>,
    #[serde(default)]
    pub last_status: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_duration_ms: Option<u64>,
    #[serde(default)]
    pub run_count: u64,
    #[serde(default)]
    pub failure_count: u64,
    #[serde(default)]
    pub max_attempts: u64,
    #[serde(default)]
    pub overlap: String,
    #[serde(default)]
    pub catchup: String,
    #[serde(default)]
    pub jitter_ms: u64,
    #[serde(default)]
    pub active_runs: u64,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A history event as `GET /v1/timers/{name}/history` answers it.
#[derive(Debug, Clone, Deserialize)]
struct EventDict {
    seq: i64,
    ts: String,
    timer_id: String,
    kind: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    scheduled_at: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    next_attempt_at: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    next_run_at: Option<String>,
    #[serde(default)]
    worker_id: Option<String>,
    #[serde(default)]
    fencing_token: Option<u64>,
}

fn unexpected(what: &str, detail: impl std::fmt::Display) -> CliError {
    CliError::failure(format!("the server's answer is not {what}: {detail}"))
}

/// An instant of an answer (`None` stays `None`).
pub fn instant(text: Option<&str>) -> Result<Option<EpochMs>, CliError> {
    text.map(|t| parse_datetime("instant", t, "UTC").map_err(|e| unexpected("a timer or event", e)))
        .transpose()
}

pub fn timer(value: &Value) -> Result<TimerDict, CliError> {
    TimerDict::deserialize(value).map_err(|e| unexpected("a timer", e))
}

pub fn timers(value: &Value) -> Result<Vec<TimerDict>, CliError> {
    Vec::<TimerDict>::deserialize(value).map_err(|e| unexpected("a list of timers", e))
}

/// History events as the engine's own type, so they print exactly as a directory's do.
pub fn events(value: &Value) -> Result<Vec<StoredEvent>, CliError> {
    let dicts =
        Vec::<EventDict>::deserialize(value).map_err(|e| unexpected("a list of events", e))?;
    dicts.into_iter().map(event).collect()
}

fn event(dict: EventDict) -> Result<StoredEvent, CliError> {
    let kind = EventKind::parse(&dict.kind)
        .ok_or_else(|| unexpected("an event", format!("unknown kind {:?}", dict.kind)))?;
    let ts = instant(Some(&dict.ts))?.unwrap_or_default();
    Ok(StoredEvent {
        seq: dict.seq,
        event: Event {
            ts,
            timer_id: dict.timer_id,
            kind,
            run_id: dict.run_id.map(RunId::from),
            attempt: dict.attempt,
            detail: EventDetail {
                scheduled_at: instant(dict.scheduled_at.as_deref())?,
                error: dict.error,
                duration_ms: dict.duration_ms,
                next_attempt_at: instant(dict.next_attempt_at.as_deref())?,
                count: dict.count,
                until: instant(dict.until.as_deref())?,
                manual: dict.manual,
                schedule: dict.schedule,
                next_run_at: instant(dict.next_run_at.as_deref())?,
                worker: dict.worker_id,
                fencing_token: dict.fencing_token,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_read_back_as_the_engine_wrote_them() {
        let value = json!([{
            "seq": 7, "ts": "2026-11-18T11:06:40.123Z", "timer_id": "t", "kind": "RUN_CLAIMED",
            "run_id": "r1", "attempt": 1, "scheduled_at": "2026-11-18T11:06:40.000Z",
            "error": null, "duration_ms": null, "next_attempt_at": null, "count": null,
            "until": null, "manual": false, "schedule": null, "next_run_at": null,
            "worker_id": "w1", "fencing_token": 3
        }]);
        let events = events(&value).unwrap_or_default();
        assert_eq!(events.len(), 1);
        let e = &events[0].event;
        assert_eq!(e.kind, EventKind::RunClaimed);
        assert_eq!(
            kron_core::time::format_utc(e.ts),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(e.detail.worker.as_deref(), Some("w1"));
        assert_eq!(e.detail.fencing_token, Some(3));
        assert_eq!(e.detail.scheduled_at.map(|s| e.ts - s), Some(123));
    }

    #[test]
    fn a_strange_answer_is_a_failure_not_a_panic() {
        assert!(events(&json!([{"seq": 1}])).is_err());
        assert!(
            events(&json!([{"seq": 1, "ts": "x", "timer_id": "t", "kind": "RUN_DUE"}])).is_err()
        );
        assert!(timers(&json!({"error": "x"})).is_err());
    }
}
