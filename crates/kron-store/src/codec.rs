//! Conversions between rows and kron-core types.
//!
//! Columns hold plain SQL values wherever a value is scalar (instants and counters as INTEGER,
//! enums as their lowercase names) so the data reads well in an `sqlite3` shell; structured
//! values (the timer definition, the last status, event details) are JSON text of the core
//! types' serde form. `u64` counters are stored as `i64` and refused above `i64::MAX`.

use kron_core::event::{Event, EventDetail, EventKind, StoredEvent};
use kron_core::run::{RunId, RunPhase, RunRecord};
use kron_core::timer::{LastStatus, Lifecycle, TimerDef, TimerRecord};
use rusqlite::types::Value;
use rusqlite::Row;

/// A row could not be turned into a value: an SQLite error or an unexpected stored value.
#[derive(Debug)]
pub(crate) enum DecodeError {
    Sql(rusqlite::Error),
    Invalid(String),
}

impl From<rusqlite::Error> for DecodeError {
    fn from(e: rusqlite::Error) -> Self {
        DecodeError::Sql(e)
    }
}

fn invalid(what: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(what.into())
}

// ---------------------------------------------------------------------------------------------
// Scalars

pub(crate) fn lifecycle_str(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Active => "active",
        Lifecycle::Paused => "paused",
        Lifecycle::Orphaned => "orphaned",
        Lifecycle::Completed => "completed",
        Lifecycle::Dead => "dead",
    }
}

fn parse_lifecycle(text: &str) -> Option<Lifecycle> {
    Some(match text {
        "active" => Lifecycle::Active,
        "paused" => Lifecycle::Paused,
        "orphaned" => Lifecycle::Orphaned,
        "completed" => Lifecycle::Completed,
        "dead" => Lifecycle::Dead,
        _ => return None,
    })
}

pub(crate) fn phase_str(phase: RunPhase) -> &'static str {
    match phase {
        RunPhase::Due => "due",
        RunPhase::Running => "running",
        RunPhase::RetryWait => "retry_wait",
    }
}

fn parse_phase(text: &str) -> Option<RunPhase> {
    Some(match text {
        "due" => RunPhase::Due,
        "running" => RunPhase::Running,
        "retry_wait" => RunPhase::RetryWait,
        _ => return None,
    })
}

/// A `u64` as the `i64` SQLite stores.
pub(crate) fn u64_to_sql(what: &str, value: u64) -> Result<i64, String> {
    i64::try_from(value).map_err(|_| format!("{what} = {value} is larger than {}", i64::MAX))
}

fn u64_from_sql(what: &str, value: i64) -> Result<u64, DecodeError> {
    u64::try_from(value).map_err(|_| invalid(format!("negative {what}: {value}")))
}

fn u32_from_sql(what: &str, value: i64) -> Result<u32, DecodeError> {
    u32::try_from(value).map_err(|_| invalid(format!("{what} out of range: {value}")))
}

// ---------------------------------------------------------------------------------------------
// Timers

pub(crate) const TIMER_COLUMNS: &str =
    "id, def, lifecycle, next_scheduled_at, next_fire_at, created_at, \
     updated_at, last_run_at, last_status, last_duration_ms, run_count, failure_count";

/// The `timer_defs` row of a timer: id, definition JSON, created_at.
pub(crate) fn timer_def_values(record: &TimerRecord) -> Result<[Value; 3], String> {
    let def = serde_json::to_string(&record.def).map_err(|e| format!("timer definition: {e}"))?;
    Ok([
        Value::Text(record.def.id.to_string()),
        Value::Text(def),
        Value::Integer(record.created_at),
    ])
}

/// The `timer_state` row of a timer, in that table's column order (id first).
pub(crate) fn timer_state_values(record: &TimerRecord) -> Result<[Value; 10], String> {
    let last_status = match &record.last_status {
        Some(status) => {
            Value::Text(serde_json::to_string(status).map_err(|e| format!("last status: {e}"))?)
        }
        None => Value::Null,
    };
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let last_duration = match record.last_duration_ms {
        Some(ms) => Value::Integer(u64_to_sql("last_duration_ms", ms)?),
        None => Value::Null,
    };
    Ok([
        Value::Text(record.def.id.to_string()),
        Value::Text(lifecycle_str(record.lifecycle).to_string()),
        opt(record.next_scheduled_at),
        opt(record.next_fire_at),
        Value::Integer(record.updated_at),
        opt(record.last_run_at),
        last_status,
        last_duration,
        Value::Integer(u64_to_sql("run_count", record.run_count)?),
        Value::Integer(u64_to_sql("failure_count", record.failure_count)?),
    ])
}

/// A timer from a row selected as [`TIMER_COLUMNS`].
pub(crate) fn timer_from_row(row: &Row<'_>) -> Result<TimerRecord, DecodeError> {
    let id: String = row.get(0)?;
    let def_json: String = row.get(1)?;
    let def: TimerDef = serde_json::from_str(&def_json)
        .map_err(|e| invalid(format!("timer {id:?}: bad definition JSON: {e}")))?;
    if *def.id != *id {
        return Err(invalid(format!(
            "timer {id:?}: its definition names {:?}",
            def.id
        )));
    }
    let lifecycle_text: String = row.get(2)?;
    let lifecycle = parse_lifecycle(&lifecycle_text).ok_or_else(|| {
        invalid(format!(
            "timer {id:?}: unknown lifecycle {lifecycle_text:?}"
        ))
    })?;
    let last_status = match row.get::<_, Option<String>>(8)? {
        Some(json) => Some(
            serde_json::from_str::<LastStatus>(&json)
                .map_err(|e| invalid(format!("timer {id:?}: bad last_status JSON: {e}")))?,
        ),
        None => None,
    };
    let last_duration_ms = match row.get::<_, Option<i64>>(9)? {
        Some(ms) => Some(u64_from_sql("last_duration_ms", ms)?),
        None => None,
    };
    Ok(TimerRecord {
        def,
        lifecycle,
        next_scheduled_at: row.get(3)?,
        next_fire_at: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        last_run_at: row.get(7)?,
        last_status,
        last_duration_ms,
        run_count: u64_from_sql("run_count", row.get(10)?)?,
        failure_count: u64_from_sql("failure_count", row.get(11)?)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Runs

pub(crate) const RUN_COLUMNS: &str =
    "run_id, timer_id, scheduled_at, attempt, phase, fire_at, manual";

/// A run from a row selected as [`RUN_COLUMNS`].
pub(crate) fn run_from_row(row: &Row<'_>) -> Result<RunRecord, DecodeError> {
    let run_id: String = row.get(0)?;
    let phase_text: String = row.get(4)?;
    let phase = parse_phase(&phase_text)
        .ok_or_else(|| invalid(format!("run {run_id}: unknown phase {phase_text:?}")))?;
    Ok(RunRecord {
        timer_id: row.get(1)?,
        scheduled_at: row.get(2)?,
        attempt: u32_from_sql("attempt", row.get(3)?)?,
        phase,
        fire_at: row.get(5)?,
        manual: row.get::<_, i64>(6)? != 0,
        run_id: RunId::from(run_id),
    })
}

// ---------------------------------------------------------------------------------------------
// Events

pub(crate) const EVENT_COLUMNS: &str = "seq, ts, timer_id, kind, run_id, attempt, detail";

/// Writes the JSON of a non-empty detail into `buf` and returns it; `None` (stored as NULL)
/// for an empty one. Reuses `buf` to spare an allocation per event on the hot path.
pub(crate) fn detail_json<'b>(
    detail: &EventDetail,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b str>, String> {
    if detail.is_empty() {
        return Ok(None);
    }
    buf.clear();
    serde_json::to_writer(&mut *buf, detail).map_err(|e| format!("event detail: {e}"))?;
    std::str::from_utf8(buf)
        .map(Some)
        .map_err(|e| format!("event detail: {e}"))
}

/// An event from a row selected as [`EVENT_COLUMNS`].
pub(crate) fn event_from_row(row: &Row<'_>) -> Result<StoredEvent, DecodeError> {
    let seq: i64 = row.get(0)?;
    let kind_text: String = row.get(3)?;
    let kind = EventKind::parse(&kind_text)
        .ok_or_else(|| invalid(format!("event {seq}: unknown kind {kind_text:?}")))?;
    let detail = match row.get::<_, Option<String>>(6)? {
        Some(json) => serde_json::from_str::<EventDetail>(&json)
            .map_err(|e| invalid(format!("event {seq}: bad detail JSON: {e}")))?,
        None => EventDetail::default(),
    };
    let attempt = match row.get::<_, Option<i64>>(5)? {
        Some(n) => Some(u32_from_sql("attempt", n)?),
        None => None,
    };
    Ok(StoredEvent {
        seq,
        event: Event {
            ts: row.get(1)?,
            timer_id: row.get(2)?,
            kind,
            run_id: row.get::<_, Option<String>>(4)?.map(RunId::from),
            attempt,
            detail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column text of enums matches their serde names, so JSON and columns agree.
    #[test]
    fn enum_texts_match_serde_names() {
        for lifecycle in [
            Lifecycle::Active,
            Lifecycle::Paused,
            Lifecycle::Orphaned,
            Lifecycle::Completed,
            Lifecycle::Dead,
        ] {
            let text = lifecycle_str(lifecycle);
            assert_eq!(
                serde_json::to_string(&lifecycle).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(parse_lifecycle(text), Some(lifecycle));
        }
        for phase in [RunPhase::Due, RunPhase::Running, RunPhase::RetryWait] {
            let text = phase_str(phase);
            assert_eq!(
                serde_json::to_string(&phase).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(parse_phase(text), Some(phase));
        }
        assert_eq!(parse_phase("nope"), None);
    }

    #[test]
    fn detail_json_is_none_when_empty() {
        let mut buf = Vec::new();
        assert_eq!(
            detail_json(&EventDetail::default(), &mut buf).unwrap(),
            None
        );
        let detail = EventDetail {
            count: Some(3),
            manual: true,
            ..EventDetail::default()
        };
        assert_eq!(
            detail_json(&detail, &mut buf).unwrap(),
            Some(r#"{"count":3,"manual":true}"#)
        );
    }

    #[test]
    fn counters_above_i64_are_refused() {
        assert_eq!(u64_to_sql("n", 5), Ok(5));
        assert!(u64_to_sql("n", u64::MAX).is_err());
    }
}
