//! Outcomes of attempts: success, failure with retries and backoff, and the interruptions found
//! at start-up after the previous process ended mid-run.

use super::record::{OptDuration, OptMs, StatusCell};
use super::{Engine, TimerKey};
use crate::event::{EventDetail, EventKind};
use crate::run::{RunId, RunPhase, RunRecord};
use crate::time::EpochMs;
use crate::timer::{Catchup, Lifecycle, Overlap};

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded {
        duration_ms: u64,
    },
    /// `error`: type, message and (truncated) traceback.
    Failed {
        error: String,
        duration_ms: u64,
    },
}

/// Why a run found `Running` at start-up failed.
pub const INTERRUPTED: &str = "interrupted: the process ended while this attempt was running";

impl Engine {
    /// Settles the previous process's end and missed time. Every run that was `Running` gets
    /// `RUN_INTERRUPTED` and is retried at once under its attempt budget (or `RUN_DEAD`); every
    /// recurring timer whose occurrence passed while no runtime was up follows its catch-up policy.
    /// One-shots that fell due run now.
    pub(crate) fn recover(&mut self, now: EpochMs) {
        self.recovered_at = Some(now);
        let mut interrupted: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| r.phase == RunPhase::Running)
            .map(|r| r.run_id.clone())
            .collect();
        interrupted.sort();
        for run_id in interrupted {
            if let Some(run) = self.runs.get(&run_id) {
                let detail = EventDetail {
                    scheduled_at: Some(run.scheduled_at),
                    error: Some(INTERRUPTED.to_string()),
                    ..Default::default()
                };
                let (timer_id, attempt) = (run.timer_id.clone(), run.attempt);
                self.emit(
                    now,
                    &timer_id,
                    EventKind::RunInterrupted,
                    Some((&run_id, attempt)),
                    detail,
                );
                self.settle_failure(&run_id, INTERRUPTED.to_string(), now, false);
            }
        }
        let mut late: Vec<(&str, TimerKey)> = self
            .timers
            .iter()
            .filter(|(_, t)| {
                t.lifecycle == Lifecycle::Active
                    && !t.schedule().is_one_shot()
                    && t.next_fire_at().is_some_and(|at| at < now)
            })
            .map(|(key, t)| (t.id.as_str(), key))
            .collect();
        late.sort_unstable();
        let late: Vec<TimerKey> = late.into_iter().map(|(_, key)| key).collect();
        for key in late {
            self.catch_up(key, now);
        }
    }

    /// Records the outcome of a started attempt. Unknown or not-running runs are ignored (a
    /// duplicate report cannot double-count).
    pub(crate) fn finish(&mut self, run_id: &RunId, outcome: Outcome, now: EpochMs) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        if run.phase != RunPhase::Running {
            return;
        }
        // An attempt started ahead is stamped with its instant in whole milliseconds; one that
        // ends within that millisecond must not be recorded as ending before it started.
        let now = now.max(run.fire_at);
        let (timer_id, attempt, scheduled_at) =
            (run.timer_id.clone(), run.attempt, run.scheduled_at);
        match outcome {
            Outcome::Succeeded { duration_ms } => {
                let detail = EventDetail {
                    scheduled_at: Some(scheduled_at),
                    duration_ms: Some(duration_ms),
                    ..Default::default()
                };
                self.emit(
                    now,
                    &timer_id,
                    EventKind::RunSucceeded,
                    Some((run_id, attempt)),
                    detail,
                );
                let Some(run) = self.drop_run(run_id) else {
                    return;
                };
                let mut release = false;
                if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
                    timer.running = timer.running.saturating_sub(1);
                    timer.run_count += 1;
                    timer.last_run_at = OptMs::new(Some(run.fire_at));
                    timer.last_status = StatusCell::Ok;
                    timer.last_duration_ms = OptDuration::new(Some(duration_ms));
                    if !run.manual {
                        timer.scheduled_runs = timer.scheduled_runs.saturating_sub(1);
                        if timer.schedule().is_one_shot() && !timer.has_more_to_run() {
                            timer.lifecycle = Lifecycle::Completed;
                        }
                    }
                    release = timer.release_held();
                }
                if release {
                    self.requeue_runs_of(&timer_id);
                }
                self.after_final(&run, now);
            }
            Outcome::Failed { error, duration_ms } => {
                let detail = EventDetail {
                    scheduled_at: Some(scheduled_at),
                    duration_ms: Some(duration_ms),
                    error: Some(error.clone()),
                    ..Default::default()
                };
                self.emit(
                    now,
                    &timer_id,
                    EventKind::RunFailed,
                    Some((run_id, attempt)),
                    detail,
                );
                if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
                    timer.last_duration_ms = OptDuration::new(Some(duration_ms));
                }
                self.settle_failure(run_id, error, now, true);
            }
        }
        self.touch_timer(&timer_id, now);
    }

    /// An attempt handed out by [`Engine::poll`] whose callback never began (the runtime shut
    /// down first): `RUN_NOT_STARTED` undoes its `RUN_STARTED`. The run waits again, due at once,
    /// with the same attempt number: the attempt is not counted. Runs not `Running` are ignored.
    pub(crate) fn not_started(&mut self, run_id: &RunId, now: EpochMs) {
        let Some(run) = self.runs.get_mut(run_id) else {
            return;
        };
        if run.phase != RunPhase::Running {
            return;
        }
        // Attempt 1 was a due run; a later one was waiting to retry.
        let retrying = run.attempt > 1;
        if !self.leases.is_empty() {
            self.leases.remove(run_id);
        }
        run.phase = if retrying {
            RunPhase::RetryWait
        } else {
            RunPhase::Due
        };
        let (timer_id, attempt, scheduled_at, fire_at) = (
            run.timer_id.clone(),
            run.attempt,
            run.scheduled_at,
            run.fire_at,
        );
        if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
            timer.running = timer.running.saturating_sub(1);
            if retrying {
                timer.retrying += 1;
            }
        }
        self.queue_run(fire_at, run_id.clone());
        self.touch_run(run_id);
        let detail = EventDetail {
            scheduled_at: Some(scheduled_at),
            ..Default::default()
        };
        // Never before its `RUN_STARTED`, which may carry an instant ahead of `now`.
        self.emit(
            now.max(fire_at),
            &timer_id,
            EventKind::RunNotStarted,
            Some((run_id, attempt)),
            detail,
        );
    }

    /// After a failed or interrupted attempt: retry (backoff, or at once after an interruption)
    /// while attempts remain, else `RUN_DEAD`.
    pub(super) fn settle_failure(
        &mut self,
        run_id: &RunId,
        error: String,
        now: EpochMs,
        backoff: bool,
    ) {
        self.end_lease(run_id);
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        let timer_id = run.timer_id.clone();
        let attempt = run.attempt;
        let started_at = run.fire_at;
        let max_attempts = self
            .timers
            .get(timer_id.as_str())
            .map_or(1, |t| t.policy.max_attempts);
        if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
            timer.running = timer.running.saturating_sub(1);
            timer.run_count += 1;
            timer.last_run_at = OptMs::new(Some(started_at));
            timer.failure_count += 1;
        }
        // Retries of a run follow the timer's current `max_attempts` (read here, when an attempt
        // has failed), also when it changed while the run was in flight.
        if attempt < max_attempts {
            let delay = if backoff { self.backoff_ms(attempt) } else { 0 };
            let fire_at = now.saturating_add(delay);
            if let Some(run) = self.runs.get_mut(run_id) {
                run.phase = RunPhase::RetryWait;
                run.attempt = attempt + 1;
                run.fire_at = fire_at;
            }
            let mut release = false;
            if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
                timer.retrying += 1;
                timer.last_status = StatusCell::Failed(Box::new(error));
                release = timer.release_held();
            }
            if release {
                self.requeue_runs_of(&timer_id);
            }
            self.queue_run(fire_at, run_id.clone());
            self.touch_run(run_id);
            let detail = EventDetail {
                next_attempt_at: Some(fire_at),
                ..Default::default()
            };
            self.emit(
                now,
                &timer_id,
                EventKind::RunRetrying,
                Some((run_id, attempt + 1)),
                detail,
            );
        } else {
            let detail = EventDetail {
                error: Some(error.clone()),
                ..Default::default()
            };
            self.emit(
                now,
                &timer_id,
                EventKind::RunDead,
                Some((run_id, attempt)),
                detail,
            );
            let Some(run) = self.drop_run(run_id) else {
                return;
            };
            let mut release = false;
            if let Some(timer) = self.timers.get_mut(timer_id.as_str()) {
                timer.last_status = StatusCell::Dead(Box::new(error));
                if !run.manual {
                    timer.scheduled_runs = timer.scheduled_runs.saturating_sub(1);
                    if timer.schedule().is_one_shot() && !timer.has_more_to_run() {
                        timer.lifecycle = Lifecycle::Dead;
                    }
                }
                release = timer.release_held();
            }
            if release {
                self.requeue_runs_of(&timer_id);
            }
            self.after_final(&run, now);
        }
        self.touch_timer(&timer_id, now);
    }

    /// A scheduled run is over: a `delay` timer's next occurrence is computed from now (its
    /// finish), except while catching up with "all", which replays the grid up to start-up.
    fn after_final(&mut self, run: &RunRecord, now: EpochMs) {
        if run.manual {
            return;
        }
        let recovered_at = self.recovered_at;
        let Some(key) = self.timers.key(&run.timer_id) else {
            return;
        };
        let Some(timer) = self.timers.at(key) else {
            return;
        };
        // Planned once the last scheduled run in flight is over: never two chains of runs.
        if timer.policy.overlap != Overlap::Delay
            || timer.schedule().is_one_shot()
            || timer.next_fire_at().is_some()
            || timer.scheduled_runs > 0
        {
            return;
        }
        let on_grid = timer.schedule().next_after(run.scheduled_at);
        let next = match (timer.policy.catchup, on_grid, recovered_at) {
            (Catchup::All, Some(n), Some(r)) if n <= r => Some(n),
            _ => match timer.schedule().every_ms() {
                Some(ms) => Some(now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))),
                None => timer.schedule().next_after(now),
            },
        };
        self.set_next(key, next);
    }

    /// About 1 s, 2 s, 4 s ... (x0.8 to x1.2 jitter), capped.
    fn backoff_ms(&mut self, failed_attempt: u32) -> i64 {
        let exp = failed_attempt.saturating_sub(1).min(30);
        let base = self.config.backoff_base_ms.saturating_mul(1u64 << exp);
        let jittered = (base as f64 * (0.8 + 0.4 * self.rng.unit())) as u64;
        jittered.min(self.config.backoff_cap_ms) as i64
    }
}
