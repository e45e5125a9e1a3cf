//! The API's JSON shapes: a timer's status dict and history events (embedded mode's dicts, with
//! instants as ISO 8601 UTC strings such as `"2026-11-18T11:06:40.123Z"`), a claimed run, and a
//! timer's definition read from `POST /v1/timers` with kron-core's own parsing and messages.

use kron_core::duration::parse_duration;
use kron_core::engine::{validate_def, ClaimedRun, TimerView};
use kron_core::event::StoredEvent;
use kron_core::schedule::ScheduleSpec;
use kron_core::time::{format_utc, parse_datetime_micros, validate_timezone, EpochMs};
use kron_core::timer::{Catchup, Overlap, TaskTarget, TimerDef};
use serde_json::{json, Map, Value};

use super::error::ApiError;

/// Largest `max_attempts`, as in embedded mode.
pub const MAX_ATTEMPTS_LIMIT: u64 = 1_000_000;

/// The fields `POST /v1/timers` reads.
pub const TIMER_FIELDS: [&str; 13] = [
    "name",
    "task",
    "payload",
    "cron",
    "every",
    "after",
    "at",
    "timezone",
    "max_attempts",
    "overlap",
    "catchup",
    "jitter",
    "tenant_id",
];

fn instant(ms: Option<EpochMs>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_utc(ms)))
}

/// The tenant of a timer (`None`: no tenant, or not a task timer).
pub fn tenant_of(def: &TimerDef) -> Option<&str> {
    def.task.as_ref().and_then(|t| t.tenant.as_deref())
}

/// A timer's status dict: embedded mode's keys, plus `task`, `payload` and `tenant_id`.
pub fn status_json(view: &TimerView) -> Value {
    let rec = &view.record;
    let def = &rec.def;
    let task = def.task.as_deref();
    let payload = task
        .and_then(|t| serde_json::from_str::<Value>(&t.payload).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": &*def.id,
        "state": view.state.as_str(),
        "schedule": view.schedule,
        "timezone": &*def.timezone,
        "fn_name": &*def.fn_name,
        "task": task.map(|t| &*t.task),
        "payload": payload,
        "tenant_id": task.and_then(|t| t.tenant.as_deref()),
        "next_run_at": instant(view.next_run_at),
        "last_run_at": instant(rec.last_run_at),
        "last_status": rec.last_status.as_ref().map(|s| s.display()),
        "last_error": rec.last_status.as_ref().and_then(|s| s.error()),
        "last_duration_ms": rec.last_duration_ms,
        "run_count": rec.run_count,
        "failure_count": rec.failure_count,
        "max_attempts": def.max_attempts,
        "overlap": def.overlap.as_str(),
        "catchup": def.catchup.as_str(),
        "jitter_ms": def.jitter_ms,
        "active_runs": view.active_runs,
        "created_at": format_utc(rec.created_at),
        "updated_at": format_utc(rec.updated_at),
        "storage_error": Value::Null,
        "active_pid": Value::Null,
    })
}

/// A history event: embedded mode's keys, plus `worker_id` and `fencing_token` (of
/// `RUN_CLAIMED` and `RUN_LEASE_EXPIRED`; `null` on other events).
pub fn event_json(stored: &StoredEvent) -> Value {
    let e = &stored.event;
    let d = &e.detail;
    json!({
        "seq": stored.seq,
        "ts": format_utc(e.ts),
        "timer_id": e.timer_id,
        "kind": e.kind.as_str(),
        "run_id": e.run_id.as_ref().map(|r| r.as_str()),
        "attempt": e.attempt,
        "scheduled_at": instant(d.scheduled_at),
        "error": d.error,
        "duration_ms": d.duration_ms,
        "next_attempt_at": instant(d.next_attempt_at),
        "count": d.count,
        "until": instant(d.until),
        "manual": d.manual,
        "schedule": d.schedule,
        "next_run_at": instant(d.next_run_at),
        "worker_id": d.worker,
        "fencing_token": d.fencing_token,
    })
}

/// A claimed run as a poll answers it.
pub fn claimed_json(run: &ClaimedRun) -> Value {
    json!({
        "run_id": run.run_id.as_str(),
        "timer_id": run.timer_id,
        "task": run.task,
        "payload": serde_json::from_str::<Value>(&run.payload).unwrap_or(Value::Null),
        "attempt": run.attempt,
        "scheduled_at": format_utc(run.scheduled_at),
        "fencing_token": run.token,
        "lease_expires_at": format_utc(run.lease_until),
    })
}

/// JSON's name for the type of `value`, for messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 80 {
        text
    } else {
        let mut end = 77;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    }
}

fn type_error(arg: &str, expected: &str, value: &Value) -> ApiError {
    ApiError::BadRequest(format!(
        "{arg} must be {expected}, got {} {}",
        type_name(value),
        shown(value)
    ))
}

/// The field `arg`, absent and `null` alike as `None`.
fn field<'a>(body: &'a Map<String, Value>, arg: &str) -> Option<&'a Value> {
    body.get(arg).filter(|v| !v.is_null())
}

fn string<'a>(body: &'a Map<String, Value>, arg: &str) -> Result<Option<&'a str>, ApiError> {
    match field(body, arg) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(arg, "a string", other)),
    }
}

/// A duration: text such as "30m" (kron-core's parser), or whole milliseconds.
fn duration_ms(arg: &'static str, value: &Value) -> Result<u64, ApiError> {
    match value {
        Value::String(text) => Ok(parse_duration(arg, text)?),
        Value::Number(n) => match n.as_u64() {
            Some(ms) if ms > 0 => Ok(ms),
            _ => Err(ApiError::BadRequest(format!(
                "invalid {arg} {n}: must be greater than zero (a number is milliseconds)"
            ))),
        },
        other => Err(type_error(
            arg,
            "a duration string such as \"30m\" or whole milliseconds",
            other,
        )),
    }
}

/// The timer definition of a `POST /v1/timers` body, validated as embedded mode validates
/// (same messages), for a timer of `tenant`.
pub fn timer_def(body: &Value, tenant: Option<&str>) -> Result<TimerDef, ApiError> {
    let Value::Object(body) = body else {
        return Err(type_error("body", "a JSON object", body));
    };
    if let Some(unknown) = body.keys().find(|k| !TIMER_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown field {unknown:?}: the fields are {}",
            TIMER_FIELDS.join(", ")
        )));
    }
    let name = string(body, "name")?
        .ok_or_else(|| ApiError::BadRequest("name is required".to_string()))?;
    let task = string(body, "task")?
        .ok_or_else(|| ApiError::BadRequest("task is required".to_string()))?;
    let payload = body.get("payload").cloned().unwrap_or(Value::Null);
    let timezone = string(body, "timezone")?.unwrap_or("UTC");
    let schedule = schedule_spec(body, timezone)?;
    let max_attempts = match field(body, "max_attempts") {
        None => 3,
        Some(value) => match value.as_u64() {
            Some(n) if (1..=MAX_ATTEMPTS_LIMIT).contains(&n) => n as u32,
            _ if value.is_number() => {
                return Err(ApiError::BadRequest(format!(
                    "invalid max_attempts {value}: must be between 1 and {MAX_ATTEMPTS_LIMIT}"
                )))
            }
            _ => return Err(type_error("max_attempts", "an integer", value)),
        },
    };
    let overlap = Overlap::parse(string(body, "overlap")?.unwrap_or("delay"))?;
    let catchup = Catchup::parse(string(body, "catchup")?.unwrap_or("once"))?;
    let jitter_ms = match field(body, "jitter") {
        None => 0,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => 0,
        Some(value) => duration_ms("jitter", value)?,
    };
    let target = TaskTarget::new(task, &payload, tenant)?;
    let def = TimerDef {
        id: name.into(),
        schedule,
        timezone: timezone.into(),
        max_attempts,
        overlap,
        catchup,
        jitter_ms,
        fn_name: task.into(),
        task: Some(target.into()),
    };
    validate_def(&def)?;
    Ok(def)
}

fn schedule_spec(body: &Map<String, Value>, timezone: &str) -> Result<ScheduleSpec, ApiError> {
    let given: Vec<&str> = ["cron", "every", "after", "at"]
        .into_iter()
        .filter(|k| field(body, k).is_some())
        .collect();
    let [kind] = given.as_slice() else {
        let which = if given.is_empty() {
            "none".to_string()
        } else {
            given.join(", ")
        };
        return Err(ApiError::BadRequest(format!(
            "exactly one of cron, every, after, at is required (given: {which})"
        )));
    };
    let value = field(body, kind).unwrap_or(&Value::Null);
    Ok(match *kind {
        "cron" => match value {
            Value::String(expr) => ScheduleSpec::Cron {
                expr: expr.trim().into(),
                timezone: timezone.into(),
            },
            other => return Err(type_error("cron", "a cron expression string", other)),
        },
        "every" => ScheduleSpec::Every {
            ms: duration_ms("every", value)?,
        },
        "after" => ScheduleSpec::After {
            ms: duration_ms("after", value)?,
        },
        _ => match value {
            Value::String(text) => {
                validate_timezone(timezone)?;
                ScheduleSpec::at_micros(parse_datetime_micros("at", text, timezone)?)
            }
            other => return Err(type_error("at", "an ISO 8601 string", other)),
        },
    })
}
