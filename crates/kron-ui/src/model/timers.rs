//! The timers page (one filtered page of rows) and the timer page.

use std::collections::BTreeMap;

use kron_core::engine::TimerView;
use kron_core::event::StoredEvent;
use kron_core::schedule::{explain_cron, ScheduleSpec};
use kron_core::time::EpochMs;
use serde::{Deserialize, Serialize};

use super::activity::RunRow;
use super::chart::RunPoint;
use super::fires::Fire;

/// Largest page the timers page asks for.
pub const MAX_PER_PAGE: usize = 500;

/// `GET /ui/api/timers?state=&q=&page=&per_page=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TimerQuery {
    /// Only timers in this state (`scheduled`, `running`, `paused`, ...).
    #[serde(default)]
    pub state: Option<String>,
    /// Only timers whose name contains this, ignoring case.
    #[serde(default)]
    pub q: Option<String>,
    /// From 1.
    #[serde(default)]
    pub page: Option<usize>,
    #[serde(default)]
    pub per_page: Option<usize>,
}

/// One row of the timers page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerRow {
    pub name: String,
    pub state: &'static str,
    /// As written: the cron expression, or `every 30m`, `after 10s`, `at ...`.
    pub schedule: String,
    /// In words: cron's English description; the same as `schedule` for the other forms.
    pub schedule_words: String,
    pub timezone: String,
    pub next_run_at: Option<EpochMs>,
    pub last_run_at: Option<EpochMs>,
    /// `OK`, `FAILED: ...`, `DEAD: ...`, `SKIPPED_OVERLAP`.
    pub last_status: Option<String>,
    pub run_count: u64,
    pub failure_count: u64,
    pub active_runs: u32,
    /// Server mode: the task workers claim. Embedded: the function's qualified name.
    pub target: String,
}

impl TimerRow {
    pub fn from_view(view: &TimerView) -> TimerRow {
        let rec = &view.record;
        let (schedule, schedule_words) = match &rec.def.schedule {
            ScheduleSpec::Cron { expr, .. } => (
                expr.to_string(),
                explain_cron(expr).unwrap_or_else(|_| view.schedule.clone()),
            ),
            _ => (view.schedule.clone(), view.schedule.clone()),
        };
        TimerRow {
            name: rec.def.id.to_string(),
            state: view.state.as_str(),
            schedule,
            schedule_words,
            timezone: rec.def.timezone.to_string(),
            next_run_at: view.next_run_at,
            last_run_at: rec.last_run_at,
            last_status: rec.last_status.as_ref().map(|s| s.display()),
            run_count: rec.run_count,
            failure_count: rec.failure_count,
            active_runs: view.active_runs,
            target: match &rec.def.task {
                Some(task) => task.task.to_string(),
                None => rec.def.fn_name.to_string(),
            },
        }
    }
}

/// One page of the timers page: the rows shown, how many match, and how many are in each
/// state (for the filter), among the timers the viewer may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerPage {
    pub now: EpochMs,
    /// Visible timers, whatever the filter.
    pub all: usize,
    /// Visible timers in each state.
    pub counts: BTreeMap<&'static str, usize>,
    /// Timers matching the filter.
    pub matching: usize,
    pub page: usize,
    pub per_page: usize,
    pub rows: Vec<TimerRow>,
}

impl TimerPage {
    /// Filters and pages `views` (sorted by name), building full rows for the page only: a
    /// page of 50 out of 100,000 timers costs a pass over the views and 50 rows.
    pub fn build<'a>(
        views: impl IntoIterator<Item = &'a TimerView>,
        query: &TimerQuery,
        now: EpochMs,
    ) -> TimerPage {
        let per_page = query.per_page.unwrap_or(50).clamp(1, MAX_PER_PAGE);
        let page = query.page.unwrap_or(1).max(1);
        let needle = query
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let state = query.state.as_deref().filter(|s| !s.is_empty());
        let skip = (page - 1).saturating_mul(per_page);
        let mut counts = BTreeMap::new();
        let mut all = 0;
        let mut matching = 0;
        let mut rows = Vec::new();
        for view in views {
            all += 1;
            let view_state = view.state.as_str();
            *counts.entry(view_state).or_insert(0) += 1;
            if state.is_some_and(|s| s != view_state) {
                continue;
            }
            if let Some(needle) = &needle {
                if !contains_ignoring_case(&view.record.def.id, needle) {
                    continue;
                }
            }
            if matching >= skip && rows.len() < per_page {
                rows.push(TimerRow::from_view(view));
            }
            matching += 1;
        }
        TimerPage {
            now,
            all,
            counts,
            matching,
            page,
            per_page,
            rows,
        }
    }
}

fn contains_ignoring_case(name: &str, lower_needle: &str) -> bool {
    if name.is_ascii() && lower_needle.is_ascii() {
        // Names are almost always ASCII: no allocation per timer.
        name.as_bytes()
            .windows(lower_needle.len().max(1))
            .any(|w| w.eq_ignore_ascii_case(lower_needle.as_bytes()))
            || lower_needle.is_empty()
    } else {
        name.to_lowercase().contains(lower_needle)
    }
}

/// A timer's definition as the timer page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    pub max_attempts: u32,
    pub overlap: &'static str,
    pub catchup: &'static str,
    pub jitter_ms: u64,
    /// Server mode: the JSON payload handed to workers.
    pub payload: Option<String>,
    pub tenant: Option<String>,
    pub created_at: EpochMs,
    pub updated_at: EpochMs,
}

impl Definition {
    pub fn from_view(view: &TimerView) -> Definition {
        let rec = &view.record;
        Definition {
            max_attempts: rec.def.max_attempts,
            overlap: rec.def.overlap.as_str(),
            catchup: rec.def.catchup.as_str(),
            jitter_ms: rec.def.jitter_ms,
            payload: rec.def.task.as_ref().map(|t| t.payload.to_string()),
            tenant: rec
                .def
                .task
                .as_ref()
                .and_then(|t| t.tenant.as_ref().map(|s| s.to_string())),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
        }
    }
}

/// One history event as the timer page lists it (errors in full: tracebacks included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRow {
    pub seq: i64,
    pub ts: EpochMs,
    pub kind: &'static str,
    pub run_id: Option<String>,
    pub attempt: Option<u32>,
    pub scheduled_at: Option<EpochMs>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    pub worker: Option<String>,
    pub manual: bool,
}

impl EventRow {
    pub fn from_event(stored: &StoredEvent) -> EventRow {
        let e = &stored.event;
        EventRow {
            seq: stored.seq,
            ts: e.ts,
            kind: e.kind.as_str(),
            run_id: e.run_id.as_ref().map(|r| r.as_str().to_string()),
            attempt: e.attempt,
            scheduled_at: e.detail.scheduled_at,
            duration_ms: e.detail.duration_ms,
            error: e.detail.error.clone(),
            worker: e.detail.worker.clone(),
            manual: e.detail.manual,
        }
    }
}

/// What `kron job explain` says about the timer's latest occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// succeeded, dead, retrying, running, due, missed, paused, ...
    pub outcome: String,
    pub occurrence: Option<EpochMs>,
    pub summary: String,
}

/// Everything the timer page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerDetail {
    pub now: EpochMs,
    pub timer: TimerRow,
    pub definition: Definition,
    /// The next 10 fire times in the timer's zone, DST changes marked.
    pub next_fires: Vec<Fire>,
    /// Its runs in flight.
    pub in_flight: Vec<RunRow>,
    /// Finished attempts from the history read, oldest first: the chart's points.
    pub runs: Vec<RunPoint>,
    /// Its latest events, newest first.
    pub history: Vec<EventRow>,
    pub explanation: Option<Explanation>,
}

impl TimerDetail {
    /// Builds the page from the timer's view, its runs in flight (already as rows) and its
    /// latest events (oldest first).
    pub fn build(
        view: &TimerView,
        in_flight: Vec<RunRow>,
        events: &[StoredEvent],
        explanation: Option<Explanation>,
        now: EpochMs,
    ) -> TimerDetail {
        TimerDetail {
            now,
            timer: TimerRow::from_view(view),
            definition: Definition::from_view(view),
            next_fires: super::fires::next_fires(view, now, 10),
            in_flight,
            runs: super::chart::run_points(events),
            history: events.iter().rev().map(EventRow::from_event).collect(),
            explanation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::contains_ignoring_case;

    #[test]
    fn name_filter_ignores_case() {
        assert!(contains_ignoring_case("Nightly-Report", "report"));
        assert!(contains_ignoring_case("abc", ""));
        assert!(!contains_ignoring_case("abc", "abcd"));
        assert!(contains_ignoring_case("Zürich-job", "zürich"));
    }
}
