//! The points of a timer's run chart: one per finished attempt, from its history.

use std::collections::HashMap;

use kron_core::event::{EventKind, StoredEvent};
use kron_core::time::EpochMs;
use serde::Serialize;

/// One finished attempt: when it started, how long it took, how it ended and how late it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunPoint {
    pub run_id: String,
    pub attempt: Option<u32>,
    /// When the attempt started (or ended, when its start is older than the history read).
    pub at: EpochMs,
    pub duration_ms: Option<u64>,
    /// `succeeded`, `failed`, `interrupted`, `lease_expired`.
    pub outcome: &'static str,
    /// Start minus the occurrence's nominal time (first attempts of scheduled runs only).
    pub lateness_ms: Option<i64>,
    /// The error's first line, for the point's tooltip.
    pub error: Option<String>,
}

/// The chart's points from `events` (oldest first).
pub fn run_points(events: &[StoredEvent]) -> Vec<RunPoint> {
    // Run id and attempt -> (started at, nominal time, manual).
    let mut started: HashMap<(String, Option<u32>), (EpochMs, Option<EpochMs>)> = HashMap::new();
    let mut manual: HashMap<String, bool> = HashMap::new();
    let mut points = Vec::new();
    for stored in events {
        let e = &stored.event;
        let Some(run) = e.run_id.as_ref().map(|r| r.as_str().to_string()) else {
            continue;
        };
        let outcome = match e.kind {
            EventKind::RunDue => {
                manual.insert(run, e.detail.manual);
                continue;
            }
            EventKind::RunStarted => {
                started.insert((run, e.attempt), (e.ts, e.detail.scheduled_at));
                continue;
            }
            EventKind::RunSucceeded => "succeeded",
            EventKind::RunFailed => "failed",
            EventKind::RunInterrupted => "interrupted",
            EventKind::RunLeaseExpired => "lease_expired",
            _ => continue,
        };
        let start = started.remove(&(run.clone(), e.attempt));
        let scheduled = start.and_then(|s| s.1).or(e.detail.scheduled_at);
        let is_manual = manual.get(&run).copied().unwrap_or(false);
        let lateness_ms = match (start, scheduled) {
            (Some((at, _)), Some(nominal)) if !is_manual && e.attempt.unwrap_or(1) <= 1 => {
                Some(at - nominal)
            }
            _ => None,
        };
        points.push(RunPoint {
            run_id: run,
            attempt: e.attempt,
            at: start.map_or(e.ts, |s| s.0),
            duration_ms: e
                .detail
                .duration_ms
                .or_else(|| start.map(|s| u64::try_from(e.ts - s.0).unwrap_or(0))),
            outcome,
            lateness_ms,
            error: e
                .detail
                .error
                .as_deref()
                .map(|text| last_line(text).to_string()),
        });
    }
    points
}

/// A traceback's last line names the exception; a one-line message is itself.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}
