//! The passage of time: occurrences become durable due runs ahead of their instant, due runs
//! start, and occurrences missed while no runtime was up follow the timer's catch-up policy.

use std::cmp::Reverse;

use super::record::StatusCell;
use super::settle::next_after_due;
use smol_str::SmolStr;

use super::{Dispatch, Engine, TimerKey};
use crate::event::{EventDetail, EventKind};
use crate::run::{RunId, RunPhase, RunRecord};
use crate::time::EpochMs;
use crate::timer::{Catchup, Lifecycle, Overlap};

/// Occurrences staged one by one, in their place, when this few come due during a step.
const STAGE_BY_INSERTION: usize = 16;

impl Engine {
    /// Advances to `now`: every occurrence due by `now + lookahead` becomes a run with a durable
    /// `RUN_DUE`, and up to `capacity` runs due by `now` start (`RUN_STARTED`). Returns the
    /// runs to invoke; commit [`Engine::take_changes`] before invoking them.
    #[cfg(test)]
    pub(crate) fn poll(&mut self, now: EpochMs, capacity: usize) -> Vec<Dispatch> {
        self.poll_batch(now, capacity, self.config.max_batch)
    }

    /// [`Engine::poll`] with a smaller step: at most `batch` occurrences become due and at most
    /// `batch` runs start (never more than `max_batch`). The runtime starts a burst with small
    /// steps so the first commit, and with it the first callback, comes quickly, then grows them.
    pub(crate) fn poll_batch(
        &mut self,
        now: EpochMs,
        capacity: usize,
        batch: usize,
    ) -> Vec<Dispatch> {
        let batch = batch.clamp(1, self.config.max_batch.max(1));
        self.materialize(now, batch);
        self.start_due(now, capacity.min(batch))
    }

    /// Turns up to `limit` occurrences due within the look-ahead into `Due` runs, in the order
    /// of their instants and, at one instant, of their timers' names (see [`Engine::stage_due`]).
    /// A staged entry is current while the timer of its name is active and fires at the entry's
    /// instant; any other (the timer moved on, was paused or removed) is dropped and does not
    /// count. Should two current entries for one instant exist (a timer requeued without
    /// moving), the first makes the run and moves the timer on, which leaves the second stale.
    fn materialize(&mut self, now: EpochMs, limit: usize) {
        let horizon = now.saturating_add(self.config.lookahead_ms);
        self.stage_due(horizon);
        let mut made = 0;
        while made < limit {
            // Occurrences planned by this loop (a catch-up plans the next one at once) are
            // staged as they come due.
            if self
                .occurrences
                .peek()
                .is_some_and(|Reverse((at, _))| *at <= horizon)
            {
                self.stage_due(horizon);
            }
            match self.staged.front() {
                Some((at, _)) if *at <= horizon => {}
                _ => break,
            }
            let Some((at, id)) = self.staged.pop_front() else {
                break;
            };
            let Some(key) = self.timers.key(&id) else {
                continue;
            };
            let Some(timer) = self.timers.at(key) else {
                continue;
            };
            if timer.lifecycle != Lifecycle::Active || timer.next_fire_at() != Some(at) {
                continue;
            }
            let Some(scheduled_at) = timer.next_scheduled_at() else {
                continue;
            };
            made += 1;
            // Running late by more than the grace (a suspended process): apply the catch-up
            // policy rather than replaying every occurrence in a burst.
            let late = now.saturating_sub(at) > self.config.late_grace_ms;
            if late
                && timer.coalesced.is_none()
                && !timer.schedule().is_one_shot()
                && timer.policy.catchup != Catchup::All
            {
                self.catch_up(key, now);
                continue;
            }
            self.make_due(key, scheduled_at, at, now);
        }
    }

    /// Moves every queued occurrence due by `horizon` to the staged ones, which are sorted by
    /// instant, then timer name. Slots follow the order timers were loaded or created in, which
    /// differs between an engine restored from a snapshot and one that never stopped; names do
    /// not, so occurrences due at one instant draw jitter and run ids in the same order in both.
    /// Entries already stale are dropped here rather than sorted.
    fn stage_due(&mut self, horizon: EpochMs) {
        let mut fresh: Vec<(EpochMs, SmolStr)> = Vec::new();
        while let Some(Reverse((at, _))) = self.occurrences.peek() {
            if *at > horizon {
                break;
            }
            let Some(Reverse((at, key))) = self.occurrences.pop() else {
                break;
            };
            if let Some(timer) = self.timers.at(key) {
                if timer.lifecycle == Lifecycle::Active && timer.next_fire_at() == Some(at) {
                    fresh.push((at, timer.id.clone()));
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        fresh.sort_unstable();
        if self.staged.is_empty() {
            self.staged = fresh.into();
        } else if fresh.len() <= STAGE_BY_INSERTION {
            // A few planned while a step is under way (catch-up): each goes in its place, usually
            // near the end, rather than sorting the whole stage again for each.
            for entry in fresh {
                let at = self.staged.partition_point(|staged| *staged < entry);
                self.staged.insert(at, entry);
            }
        } else {
            fresh.extend(self.staged.drain(..));
            fresh.sort_unstable();
            self.staged = fresh.into();
        }
    }

    /// Creates the `Due` run for the timer's pending occurrence and moves the timer on.
    fn make_due(&mut self, key: TimerKey, scheduled_at: EpochMs, fire_at: EpochMs, now: EpochMs) {
        let run_id = self.new_run_id(now);
        let Some(timer) = self.timers.at_mut(key) else {
            return;
        };
        let coalesced = timer.coalesced.take().map(|c| *c);
        let after = coalesced.map_or(scheduled_at, |(_, until)| until);
        let next = next_after_due(timer.schedule(), timer.policy.overlap, after);
        // The timer's row is rewritten with the run's outcome; until then the run row tells a
        // restart that this occurrence is taken (see `settle`). Not when restoring could not
        // tell the same next occurrence: one drawn with jitter, or one after coalesced ones.
        let rewrite_row = coalesced.is_some() || timer.policy.jitter_ms > 0;
        timer.scheduled_runs += 1;
        let timer_id = timer.id.to_string();
        let run = RunRecord {
            run_id: run_id.clone(),
            timer_id,
            scheduled_at,
            attempt: 1,
            phase: RunPhase::Due,
            fire_at,
            manual: false,
        };
        self.queue_run(fire_at, run_id.clone());
        self.runs.insert(run_id.clone(), run);
        self.touch_new_run(&run_id);
        self.set_next_not_before(key, next, fire_at);
        if rewrite_row {
            self.touch_key(key, now);
        }
        let detail = EventDetail {
            scheduled_at: Some(scheduled_at),
            count: coalesced.map(|(count, _)| count),
            until: coalesced.map(|(_, until)| until),
            ..Default::default()
        };
        let timer_id = self
            .timers
            .at(key)
            .map(|t| t.id.clone())
            .unwrap_or_default();
        self.emit(
            now,
            &timer_id,
            EventKind::RunDue,
            Some((&run_id, 1)),
            detail,
        );
    }

    /// Starts due runs, oldest first, up to `capacity`: those due by `now`, and those due within
    /// the start-ahead, stamped with their instant (they are invoked at it). Due runs of task
    /// timers are parked for workers to claim instead (see `claims.rs`), whatever the capacity.
    fn start_due(&mut self, now: EpochMs, capacity: usize) -> Vec<Dispatch> {
        let horizon = now.saturating_add(self.config.start_ahead_ms);
        let mut out = Vec::with_capacity(capacity.min(self.waiting.len()));
        while let Some(Reverse((at, _, next))) = self.waiting.peek() {
            if *at > horizon {
                break;
            }
            // At capacity only task runs (parked for workers, not started here) go on, and
            // stale entries are dropped: whether one is in the queue must not decide whether a
            // task run behind it is parked (an engine restored from a snapshot has none).
            if out.len() >= capacity && !self.is_task_run(next) && self.is_current(*at, next) {
                break;
            }
            let Some(Reverse((at, _, run_id))) = self.waiting.pop() else {
                break;
            };
            let Some(run) = self.runs.get(&run_id) else {
                continue;
            };
            if run.phase == RunPhase::Running || run.fire_at != at {
                continue;
            }
            let Some(key) = self.timers.key(&run.timer_id) else {
                continue;
            };
            let Some(timer) = self.timers.at(key) else {
                continue;
            };
            // Paused or orphaned timers, and timers without a function, hold their runs;
            // resume/revival requeues them.
            if timer.lifecycle == Lifecycle::Orphaned
                || timer.unregistered
                || (timer.lifecycle == Lifecycle::Paused && !run.manual)
            {
                continue;
            }
            // A `delay` timer with more than one scheduled run in flight (its policy changed
            // while runs of another were in flight) starts none of them while one is running:
            // held, and requeued when no run of it is running (see `Timer::release_held`).
            if timer.scheduled_runs > 1
                && timer.running > 0
                && !run.manual
                && timer.policy.overlap == Overlap::Delay
            {
                if let Some(timer) = self.timers.at_mut(key) {
                    timer.held = true;
                }
                continue;
            }
            let busy = timer.running + timer.retrying > 0;
            let first_attempt = run.phase == RunPhase::Due;
            let is_task = timer.policy.task.is_some();
            if first_attempt && !run.manual && busy && timer.policy.overlap == Overlap::Skip {
                let timer_id = run.timer_id.clone();
                self.skip_for_overlap(&run_id, &timer_id, now);
                continue;
            }
            if is_task {
                self.park(at, run_id);
                continue;
            }
            if let Some(dispatch) = self.begin_attempt(key, &run_id, at, now) {
                out.push(dispatch);
            }
        }
        out
    }

    /// Whether a start-queue entry still stands for a waiting run (not a stale entry).
    fn is_current(&self, at: EpochMs, run_id: &RunId) -> bool {
        self.runs
            .get(run_id)
            .is_some_and(|run| run.phase != RunPhase::Running && run.fire_at == at)
    }

    /// Whether the run belongs to a task timer (claimed by workers, not started by a tick).
    fn is_task_run(&self, run_id: &RunId) -> bool {
        self.runs
            .get(run_id)
            .and_then(|run| self.timers.get(&run.timer_id))
            .is_some_and(|timer| timer.policy.task.is_some())
    }

    /// Starts an attempt of a waiting run due at `at`: `RUN_STARTED`, the run `Running`.
    pub(super) fn begin_attempt(
        &mut self,
        key: TimerKey,
        run_id: &RunId,
        at: EpochMs,
        now: EpochMs,
    ) -> Option<Dispatch> {
        let timer = self.timers.at(key)?;
        let run = self.runs.get_mut(run_id)?;
        let first_attempt = run.phase == RunPhase::Due;
        // The exact instant of an `at` one-shot, when its run was not moved (jitter, manual).
        let exact_us = timer
            .schedule()
            .exact_micros()
            .filter(|_| first_attempt && !run.manual && at == run.scheduled_at);
        let timer_id = run.timer_id.clone();
        let was_retrying = run.phase == RunPhase::RetryWait;
        let start = at.max(now);
        run.phase = RunPhase::Running;
        run.fire_at = start;
        let (attempt, scheduled_at) = (run.attempt, run.scheduled_at);
        // The timer row is not rewritten here: the attempt is counted, and `last_run_at`
        // persisted, with its outcome (a run is durable through its own row meanwhile).
        if let Some(timer) = self.timers.at_mut(key) {
            timer.running += 1;
            if was_retrying {
                timer.retrying = timer.retrying.saturating_sub(1);
            }
        }
        self.touch_run(run_id);
        let detail = EventDetail {
            scheduled_at: Some(scheduled_at),
            ..Default::default()
        };
        self.emit(
            start,
            &timer_id,
            EventKind::RunStarted,
            Some((run_id, attempt)),
            detail,
        );
        Some(Dispatch {
            run_id: run_id.clone(),
            timer_id,
            timer: key,
            attempt,
            scheduled_at,
            not_before_us: exact_us.unwrap_or_else(|| at.saturating_mul(1_000)),
        })
    }

    fn skip_for_overlap(&mut self, run_id: &crate::run::RunId, timer_id: &str, now: EpochMs) {
        let Some(run) = self.drop_run(run_id) else {
            return;
        };
        if let Some(timer) = self.timers.get_mut(timer_id) {
            timer.last_status = StatusCell::SkippedOverlap;
            timer.scheduled_runs = timer.scheduled_runs.saturating_sub(1);
        }
        self.touch_timer(timer_id, now);
        let detail = EventDetail {
            scheduled_at: Some(run.scheduled_at),
            ..Default::default()
        };
        self.emit(
            now,
            timer_id,
            EventKind::RunSkippedOverlap,
            Some((run_id, run.attempt)),
            detail,
        );
    }

    /// Applies the catch-up policy to a recurring timer whose pending occurrence is in the past:
    /// "once" makes that occurrence stand for all missed ones (its `RUN_DUE` carries the count),
    /// "skip" records them as one `RUN_MISSED` and moves to the first future occurrence, "all"
    /// leaves them to run in order.
    pub(super) fn catch_up(&mut self, key: TimerKey, now: EpochMs) {
        let cap = self.config.count_cap;
        let Some(timer) = self.timers.at_mut(key) else {
            return;
        };
        let Some(first) = timer.next_scheduled_at() else {
            return;
        };
        if timer.schedule().is_one_shot() || first > now {
            return;
        }
        let (more, last) = timer.schedule().count_between(first, now, cap);
        let count = more.saturating_add(1);
        let until = last.unwrap_or(first);
        match timer.policy.catchup {
            Catchup::All => {}
            Catchup::Once => {
                timer.coalesced = (count > 1).then(|| Box::new((count, until)));
                timer.set_next(Some(first), Some(now));
                self.push_occurrence(key);
                self.touch_key(key, now);
            }
            Catchup::Skip => {
                let next = timer.schedule().next_after(until);
                let id = timer.id.to_string();
                self.set_next(key, next);
                self.touch_key(key, now);
                let next_run_at = self.timers.at(key).and_then(|t| t.next_fire_at());
                let detail = EventDetail {
                    scheduled_at: Some(first),
                    count: Some(count),
                    until: Some(until),
                    next_run_at,
                    ..Default::default()
                };
                self.emit(now, &id, EventKind::RunMissed, None, detail);
            }
        }
    }
}
