//! Python values to core types and core views to Python dicts. Instants cross the boundary as
//! epoch milliseconds; `kron/__init__.py` turns them into aware datetimes.

use kron_core::duration::parse_duration;
use kron_core::engine::TimerView;
use kron_core::event::StoredEvent;
use kron_core::schedule::ScheduleSpec;
use kron_core::time::parse_datetime_micros;
use kron_core::timer::{Catchup, Overlap, TimerDef};
use kron_core::CoreError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A duration given as text (parsed) or as whole milliseconds (from a `timedelta`).
fn duration_ms(arg: &'static str, value: &Bound<'_, PyAny>) -> Result<u64, CoreError> {
    if let Ok(text) = value.extract::<String>() {
        return parse_duration(arg, &text);
    }
    match value.extract::<i64>() {
        Ok(ms) if ms > 0 => Ok(ms as u64),
        Ok(ms) => Err(CoreError::invalid(
            arg,
            format!("{ms}ms"),
            "must be greater than zero",
        )),
        Err(_) => Err(CoreError::invalid(
            arg,
            repr(value),
            "must be a duration string such as \"30m\" or a timedelta",
        )),
    }
}

fn repr(value: &Bound<'_, PyAny>) -> String {
    value
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".to_string())
}

/// `kron._args.TimerOptions`: a timer's definition as `schedule()`'s keywords give it, checked
/// by Python for types, read here by attribute. Values that need parsing are checked here.
#[derive(FromPyObject)]
pub struct TimerOptions<'py> {
    /// "cron", "every", "after" or "at".
    kind: String,
    /// The cron expression, the duration (str, or int milliseconds) or the instant (ISO str, or
    /// int epoch microseconds).
    value: Bound<'py, PyAny>,
    timezone: String,
    max_attempts: i64,
    overlap: String,
    catchup: String,
    /// Like a duration; `None` or 0 for none.
    jitter: Bound<'py, PyAny>,
}

/// `kron._args.Function`: a callback and how to call it.
#[derive(FromPyObject)]
pub struct Function {
    #[pyo3(attribute("fn"))]
    pub function: Py<PyAny>,
    pub fn_name: String,
    pub takes_context: bool,
    pub is_async: bool,
}

impl TimerOptions<'_> {
    /// The definition of the timer `id` calling the function named `fn_name`.
    pub fn timer_def(self, id: &str, fn_name: &str) -> Result<TimerDef, CoreError> {
        let schedule = self.schedule_spec()?;
        let jitter_ms = jitter_ms(&self.jitter)?;
        let max_attempts = u32::try_from(self.max_attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                CoreError::invalid(
                    "max_attempts",
                    self.max_attempts.to_string(),
                    "must be an integer from 1 to 4294967295",
                )
            })?;
        Ok(TimerDef {
            id: id.into(),
            schedule,
            timezone: self.timezone.into(),
            max_attempts,
            overlap: Overlap::parse(&self.overlap)?,
            catchup: Catchup::parse(&self.catchup)?,
            jitter_ms,
            fn_name: fn_name.into(),
            task: None,
        })
    }

    fn schedule_spec(&self) -> Result<ScheduleSpec, CoreError> {
        let (value, timezone) = (&self.value, self.timezone.as_str());
        match self.kind.as_str() {
            "cron" => match value.extract::<String>() {
                Ok(expr) => Ok(ScheduleSpec::Cron {
                    expr: expr.trim().into(),
                    timezone: timezone.into(),
                }),
                Err(_) => Err(CoreError::invalid("cron", repr(value), "must be a string")),
            },
            "every" => Ok(ScheduleSpec::Every {
                ms: duration_ms("every", value)?,
            }),
            "after" => Ok(ScheduleSpec::After {
                ms: duration_ms("after", value)?,
            }),
            "at" => {
                if let Ok(text) = value.extract::<String>() {
                    kron_core::time::validate_timezone(timezone)?;
                    let us = parse_datetime_micros("at", &text, timezone)?;
                    return Ok(ScheduleSpec::at_micros(us));
                }
                // An aware datetime arrives as epoch microseconds (see `kron._args`).
                match value.extract::<i64>() {
                    Ok(us) => Ok(ScheduleSpec::at_micros(us)),
                    Err(_) => Err(CoreError::invalid(
                        "at",
                        repr(value),
                        "must be a datetime or an ISO 8601 string",
                    )),
                }
            }
            other => Err(CoreError::invalid(
                "kind",
                other,
                "must be one of cron, every, after, at",
            )),
        }
    }
}

fn jitter_ms(value: &Bound<'_, PyAny>) -> Result<u64, CoreError> {
    if value.is_none() {
        return Ok(0);
    }
    if let Ok(0) = value.extract::<i64>() {
        return Ok(0);
    }
    duration_ms("jitter", value)
}

/// What every status dict of one call shares: the last storage error and the pid of the process
/// that owns the data directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct ViewContext<'a> {
    pub storage_error: Option<&'a str>,
    pub active_pid: Option<u32>,
}

pub fn view_dict<'py>(
    py: Python<'py>,
    view: &TimerView,
    context: ViewContext<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    let rec = &view.record;
    let d = PyDict::new(py);
    d.set_item("id", &*rec.def.id)?;
    d.set_item("state", view.state.as_str())?;
    d.set_item("schedule", &view.schedule)?;
    d.set_item("timezone", &*rec.def.timezone)?;
    d.set_item("fn_name", &*rec.def.fn_name)?;
    d.set_item("next_run_at", view.next_run_at)?;
    d.set_item("last_run_at", rec.last_run_at)?;
    d.set_item("last_status", rec.last_status.as_ref().map(|s| s.display()))?;
    d.set_item(
        "last_error",
        rec.last_status.as_ref().and_then(|s| s.error()),
    )?;
    d.set_item("last_duration_ms", rec.last_duration_ms)?;
    d.set_item("run_count", rec.run_count)?;
    d.set_item("failure_count", rec.failure_count)?;
    d.set_item("max_attempts", rec.def.max_attempts)?;
    d.set_item("overlap", rec.def.overlap.as_str())?;
    d.set_item("catchup", rec.def.catchup.as_str())?;
    d.set_item("jitter_ms", rec.def.jitter_ms)?;
    d.set_item("active_runs", view.active_runs)?;
    d.set_item("created_at", rec.created_at)?;
    d.set_item("updated_at", rec.updated_at)?;
    d.set_item("storage_error", context.storage_error)?;
    d.set_item("active_pid", context.active_pid)?;
    Ok(d)
}

pub fn event_dict<'py>(py: Python<'py>, stored: &StoredEvent) -> PyResult<Bound<'py, PyDict>> {
    let e = &stored.event;
    let d = PyDict::new(py);
    d.set_item("seq", stored.seq)?;
    d.set_item("ts", e.ts)?;
    d.set_item("timer_id", &e.timer_id)?;
    d.set_item("kind", e.kind.as_str())?;
    d.set_item("run_id", e.run_id.as_ref().map(|r| r.as_str()))?;
    d.set_item("attempt", e.attempt)?;
    let detail = &e.detail;
    d.set_item("scheduled_at", detail.scheduled_at)?;
    d.set_item("error", detail.error.as_deref())?;
    d.set_item("duration_ms", detail.duration_ms)?;
    d.set_item("next_attempt_at", detail.next_attempt_at)?;
    d.set_item("count", detail.count)?;
    d.set_item("until", detail.until)?;
    d.set_item("manual", detail.manual)?;
    d.set_item("schedule", detail.schedule.as_deref())?;
    d.set_item("next_run_at", detail.next_run_at)?;
    Ok(d)
}

/// `kron.runtime_info()`'s dict (instants as ms since the epoch; the Python layer makes them
/// datetimes).
pub fn runtime_info_dict<'py>(
    py: Python<'py>,
    info: &kron_runtime::RuntimeInfo,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("role", info.role.as_str())?;
    d.set_item("pid", std::process::id())?;
    d.set_item("since", info.since)?;
    d.set_item(
        "data_dir",
        info.data_dir.as_ref().map(|dir| dir.display().to_string()),
    )?;
    d.set_item("active_pid", info.active_pid)?;
    let standbys = info
        .standbys
        .iter()
        .map(|standby| {
            let s = PyDict::new(py);
            s.set_item("pid", standby.pid)?;
            s.set_item("since", standby.started_at)?;
            Ok(s)
        })
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("standbys", standbys)?;
    d.set_item("error", info.error.as_deref())?;
    Ok(d)
}
