//! Read-only views of timers for status and listing.

use std::collections::HashMap;

use super::{Engine, Timer};
use crate::run::RunPhase;
use crate::time::EpochMs;
use crate::timer::{Lifecycle, TimerRecord, TimerState};

/// A timer as users see it: its record plus what is derived from runs in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerView {
    pub record: TimerRecord,
    pub state: TimerState,
    /// "every 30m", "cron 0 8 * * * (Europe/Berlin)", ...
    pub schedule: String,
    /// The earliest of the next occurrence and any waiting run (a retry, a held due run).
    pub next_run_at: Option<EpochMs>,
    /// Runs of this timer in flight.
    pub active_runs: u32,
}

/// The state shown for a timer given its lifecycle and runs in flight.
pub fn derive_state(lifecycle: Lifecycle, running: u32, retrying: u32) -> TimerState {
    match lifecycle {
        Lifecycle::Paused => TimerState::Paused,
        Lifecycle::Orphaned => TimerState::Orphaned,
        _ if running > 0 => TimerState::Running,
        _ if retrying > 0 => TimerState::Retrying,
        Lifecycle::Completed => TimerState::Completed,
        Lifecycle::Dead => TimerState::Dead,
        Lifecycle::Active => TimerState::Scheduled,
    }
}

impl Engine {
    pub fn view(&self, id: &str) -> Option<TimerView> {
        let timer = self.timers.get(id)?;
        let waiting = self
            .runs
            .values()
            .filter(|r| r.timer_id == id && r.phase != RunPhase::Running)
            .map(|r| r.fire_at)
            .min();
        Some(make_view(
            timer,
            waiting,
            self.runs.values().filter(|r| r.timer_id == id).count() as u32,
        ))
    }

    /// All timers, sorted by id.
    pub fn views(&self) -> Vec<TimerView> {
        let mut waiting: HashMap<&str, (Option<EpochMs>, u32)> = HashMap::new();
        for run in self.runs.values() {
            let entry = waiting.entry(run.timer_id.as_str()).or_insert((None, 0));
            entry.1 += 1;
            if run.phase != RunPhase::Running {
                entry.0 = Some(
                    entry
                        .0
                        .map_or(run.fire_at, |at: EpochMs| at.min(run.fire_at)),
                );
            }
        }
        let mut timers: Vec<&Timer> = self.timers.iter().map(|(_, t)| t).collect();
        timers.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        timers
            .into_iter()
            .map(|timer| {
                let (first_waiting, active) =
                    waiting.get(timer.id.as_str()).copied().unwrap_or((None, 0));
                make_view(timer, first_waiting, active)
            })
            .collect()
    }
}

fn make_view(timer: &Timer, first_waiting: Option<EpochMs>, active_runs: u32) -> TimerView {
    let next_run_at = match (timer.next_fire_at(), first_waiting) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let next_run_at = match timer.lifecycle {
        Lifecycle::Paused | Lifecycle::Orphaned => None,
        _ => next_run_at,
    };
    let mut record = timer.record();
    // Attempts are persisted with their outcome; status also counts the ones running now.
    record.run_count += u64::from(timer.running);
    TimerView {
        record,
        state: derive_state(timer.lifecycle, timer.running, timer.retrying),
        schedule: timer.schedule().describe(),
        next_run_at,
        active_runs,
    }
}

/// How a timer registered before `start()` is shown: scheduled, never run, its first occurrence
/// computed from `now`.
pub fn provisional_view(
    def: &crate::timer::TimerDef,
    now: EpochMs,
) -> Result<TimerView, crate::CoreError> {
    let schedule = super::commands::validate_def(def)?;
    let first = schedule.first(now);
    let record = TimerRecord::created(def.clone(), now, first, first);
    Ok(TimerView {
        record,
        state: TimerState::Scheduled,
        schedule: schedule.describe(),
        next_run_at: first,
        active_runs: 0,
    })
}
