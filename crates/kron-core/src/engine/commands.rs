//! Registration and operator commands: register, orphan, pause, resume, trigger, remove.

use std::cmp::Reverse;

#[cfg(test)]
use super::TimerKey;
use super::{Engine, Timer};
use crate::error::CommandError;
use crate::event::{EventDetail, EventKind};
use crate::run::{RunId, RunPhase, RunRecord};
use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::{validate_timer_id, Lifecycle, Overlap, TimerDef, TimerRecord};
use crate::CoreError;

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registered {
    Created,
    Updated,
    /// Same definition as persisted: the stored state stands.
    Unchanged,
}

/// Validates a definition completely, so that bad input never reaches the engine or storage.
pub fn validate_def(def: &TimerDef) -> Result<Schedule, CoreError> {
    validate_timer_id(&def.id)?;
    if let Some(task) = &def.task {
        task.validate()?;
    }
    crate::time::validate_timezone(&def.timezone)?;
    if def.max_attempts == 0 {
        return Err(CoreError::invalid(
            "max_attempts",
            "0",
            "must be at least 1",
        ));
    }
    if def.jitter_ms > 0 {
        crate::schedule::check_interval("jitter", def.jitter_ms)?;
    }
    let schedule = Schedule::from_spec(def.schedule.clone())?;
    // Jitter delays an occurrence within its own interval; one as long as the interval would
    // push it past the next occurrence. (A cron's gaps vary: there, an occurrence planned with
    // a jitter longer than the gap fires no earlier than the one before it.)
    if let Some(interval) = schedule.every_ms().filter(|ms| def.jitter_ms >= *ms) {
        let format = crate::duration::format_duration;
        return Err(CoreError::invalid(
            "jitter",
            format(def.jitter_ms),
            format!(
                "must be shorter than the interval (every={:?})",
                format(interval)
            ),
        ));
    }
    Ok(schedule)
}

impl Engine {
    /// Registers or re-registers a timer. Same definition: the persisted state stands (a pending
    /// occurrence keeps its time, a finished one-shot stays finished). Changed definition:
    /// `TIMER_UPDATED`, and the next occurrence is recomputed when the schedule itself changed.
    /// An orphaned timer is revived (`TIMER_RESUMED`).
    pub(crate) fn register(
        &mut self,
        def: TimerDef,
        now: EpochMs,
    ) -> Result<Registered, CoreError> {
        let schedule = validate_def(&def)?;
        let Some(key) = self.timers.key(&def.id) else {
            self.create(def, schedule, now);
            return Ok(Registered::Created);
        };
        let policy = self.share_policy(&def);
        let id = def.id;
        let Some(timer) = self.timers.at(key) else {
            return Ok(Registered::Unchanged);
        };
        let old = &*timer.policy;
        let same_schedule = timer.schedule().to_spec() == def.schedule
            && old.timezone == policy.timezone
            && old.jitter_ms == policy.jitter_ms;
        let same_definition = same_schedule
            && old.max_attempts == policy.max_attempts
            && old.overlap == policy.overlap
            && old.catchup == policy.catchup
            && old.task == policy.task;
        let fn_changed = old.fn_name != policy.fn_name;
        let kind_changed = old.task.is_some() != policy.task.is_some();
        let spec = (!same_schedule).then(|| self.share_schedule(schedule));
        let Some(timer) = self.timers.at_mut(key) else {
            return Ok(Registered::Unchanged);
        };
        let revived = timer.lifecycle == Lifecycle::Orphaned;
        let held = timer.unregistered && !revived;
        timer.unregistered = false;
        let old_overlap = timer.policy.overlap;
        timer.policy = policy;
        if revived {
            timer.lifecycle = Lifecycle::Active;
        }
        let overlap = timer.policy.overlap;
        let recurring = !timer.schedule().is_one_shot();
        let mut planned = false;
        if let Some(spec) = spec {
            timer.schedule = spec;
            if matches!(timer.lifecycle, Lifecycle::Completed | Lifecycle::Dead) {
                timer.lifecycle = Lifecycle::Active;
            }
            self.replan(key, now);
            planned = true;
        } else if overlap != old_overlap && recurring {
            // The pending occurrence follows the new policy's rule: a `delay` timer with a run in
            // flight has none (the run's end plans it); a timer leaving `delay` with none gets
            // its grid back from now.
            let pending = timer.next_fire_at().is_some();
            let in_flight = timer.scheduled_runs > 0;
            if (overlap == Overlap::Delay && pending && in_flight)
                || (old_overlap == Overlap::Delay && !pending)
            {
                self.replan(key, now);
                planned = true;
            }
        }
        if revived && !planned {
            self.push_occurrence(key);
        }
        if kind_changed {
            // Parked runs wait for a worker only while the timer is a task timer; either way
            // its waiting runs go back to the start queue, which parks or starts them anew.
            self.unpark_runs_of(&id);
        }
        if revived || held || kind_changed {
            // Runs held while no function was registered (see `start_due`) may start.
            self.requeue_runs_of(&id);
        }
        if revived || !same_definition || fn_changed {
            self.touch_def(key, now);
        }
        self.bound_queues();
        if revived {
            self.emit(
                now,
                &id,
                EventKind::TimerResumed,
                None,
                EventDetail::default(),
            );
        }
        if same_definition {
            return Ok(Registered::Unchanged);
        }
        let (text, next) = match self.timers.at(key) {
            Some(t) => (t.schedule().describe(), t.next_fire_at()),
            None => (String::new(), None),
        };
        let detail = EventDetail {
            schedule: Some(text),
            next_run_at: next,
            ..Default::default()
        };
        self.emit(now, &id, EventKind::TimerUpdated, None, detail);
        Ok(Registered::Updated)
    }

    /// A new timer: `TIMER_CREATED`, first occurrence queued. The same steps as `set_next` and
    /// `touch_def` (and in the same order: one jitter draw), without looking the timer up again
    /// for each: registering many timers is a loop over this.
    fn create(&mut self, def: TimerDef, schedule: Schedule, now: EpochMs) {
        let scheduled = schedule.first(now);
        let text = schedule.describe();
        let jitter = self.rng.below_or_eq(def.jitter_ms) as i64;
        let next_fire_at = scheduled.map(|s| s.saturating_add(jitter));
        let timer_id = def.id.to_string();
        let rec = TimerRecord::created(def, now, scheduled, next_fire_at);
        let timer = self.make_timer(rec, schedule);
        let key = self.timers.insert(timer);
        if let Some(at) = next_fire_at {
            self.occurrences.push(Reverse((at, key)));
        }
        if !self.changes.removed_timers.is_empty() {
            self.changes.removed_timers.remove(&timer_id);
        }
        self.bound_queues();
        self.changes.timers.insert(key);
        self.changes.defs.insert(key);
        let detail = EventDetail {
            schedule: Some(text),
            next_run_at: next_fire_at,
            ..Default::default()
        };
        self.changes.events.push(crate::event::Event {
            ts: now,
            timer_id,
            kind: EventKind::TimerCreated,
            run_id: None,
            attempt: None,
            detail,
        });
    }

    /// Marks the named timers as lacking a function in the applying process (see
    /// [`Input::MarkOrphans`](crate::input::Input::MarkOrphans)): an active one becomes orphaned
    /// (`TIMER_ORPHANED`): it stays listed and never runs until a registration revives it.
    /// Timers in other states (paused, finished) keep their state but are remembered as lacking
    /// a function: resuming a paused one makes it an orphan, and none can be triggered. Returns
    /// the timers orphaned, in name order.
    pub(crate) fn mark_orphans(&mut self, mut ids: Vec<String>, now: EpochMs) -> Vec<String> {
        ids.sort_unstable();
        ids.dedup();
        let mut orphans: Vec<String> = Vec::new();
        for id in ids {
            let Some(timer) = self.timers.get_mut(&id) else {
                continue;
            };
            timer.unregistered = true;
            if timer.lifecycle == Lifecycle::Active {
                orphans.push(id);
            }
        }
        for id in &orphans {
            if let Some(timer) = self.timers.get_mut(id.as_str()) {
                timer.lifecycle = Lifecycle::Orphaned;
            }
            self.touch_timer(id, now);
            self.emit(
                now,
                id,
                EventKind::TimerOrphaned,
                None,
                EventDetail::default(),
            );
        }
        orphans
    }

    /// Stops the timer from starting runs (runs already started finish). Pausing a paused timer
    /// changes nothing; an orphaned timer can be paused (it stays held after revival); a finished
    /// one-shot has nothing to pause.
    pub(crate) fn pause(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        let timer = self
            .timers
            .get_mut(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        match timer.lifecycle {
            Lifecycle::Paused => return Ok(()),
            Lifecycle::Completed | Lifecycle::Dead => {
                return Err(CommandError::NotRunnable {
                    id: id.to_string(),
                    reason: "it is a one-shot that has finished: there is nothing to pause",
                })
            }
            Lifecycle::Active | Lifecycle::Orphaned => {}
        }
        timer.lifecycle = Lifecycle::Paused;
        self.touch_timer(id, now);
        self.emit(
            now,
            id,
            EventKind::TimerPaused,
            None,
            EventDetail::default(),
        );
        Ok(())
    }

    /// Resumes a paused timer. A recurring timer whose next occurrence passed while paused goes
    /// on from now (occurrences during a pause are not run: pausing said so); a one-shot that
    /// fell due while paused runs now. Runs held by the pause start.
    pub(crate) fn resume(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        let key = self
            .timers
            .key(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        let Some(timer) = self.timers.at_mut(key) else {
            return Ok(());
        };
        if timer.lifecycle != Lifecycle::Paused {
            return Ok(());
        }
        if timer.unregistered {
            // No function to run it with: the pause is lifted, and the timer is an orphan again
            // (it never runs until a registration revives it).
            timer.lifecycle = Lifecycle::Orphaned;
            self.touch_key(key, now);
            self.emit(
                now,
                id,
                EventKind::TimerResumed,
                None,
                EventDetail::default(),
            );
            self.emit(
                now,
                id,
                EventKind::TimerOrphaned,
                None,
                EventDetail::default(),
            );
            return Ok(());
        }
        timer.lifecycle = Lifecycle::Active;
        let passed = timer.next_fire_at().is_some_and(|at| at < now);
        if passed && !timer.schedule().is_one_shot() {
            self.replan(key, now);
        } else {
            self.push_occurrence(key);
        }
        self.requeue_runs_of(id);
        self.touch_key(key, now);
        self.bound_queues();
        let next = self.timers.at(key).and_then(Timer::next_fire_at);
        let detail = EventDetail {
            next_run_at: next,
            ..Default::default()
        };
        self.emit(now, id, EventKind::TimerResumed, None, detail);
        Ok(())
    }

    /// Runs the timer now, off-schedule, once (with its retry budget). The schedule is not
    /// touched, overlap and pause do not hold it back. Returns the new run's id.
    pub(crate) fn trigger(&mut self, id: &str, now: EpochMs) -> Result<RunId, CommandError> {
        let timer = self
            .timers
            .get(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        if timer.lifecycle == Lifecycle::Orphaned {
            return Err(CommandError::NotRunnable {
                id: id.to_string(),
                reason: "it is orphaned: no function is registered for it in this process",
            });
        }
        if timer.unregistered {
            return Err(CommandError::NotRunnable {
                id: id.to_string(),
                reason: "no function is registered for it in this process",
            });
        }
        let run_id = self.new_run_id(now);
        let run = RunRecord {
            run_id: run_id.clone(),
            timer_id: id.to_string(),
            scheduled_at: now,
            attempt: 1,
            phase: RunPhase::Due,
            fire_at: now,
            manual: true,
        };
        self.queue_run(now, run_id.clone());
        self.runs.insert(run_id.clone(), run);
        self.touch_new_run(&run_id);
        self.bound_queues();
        let detail = EventDetail {
            scheduled_at: Some(now),
            manual: true,
            ..Default::default()
        };
        self.emit(now, id, EventKind::RunDue, Some((&run_id, 1)), detail);
        Ok(run_id)
    }

    /// Deletes the timer (its history stays). Runs not yet started are dropped; a run in
    /// progress finishes and records its outcome.
    pub(crate) fn remove(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        let Some((key, _)) = self.timers.remove(id) else {
            return Err(CommandError::UnknownTimer(id.to_string()));
        };
        self.changes.timers.remove(&key);
        self.changes.defs.remove(&key);
        self.changes.removed_timers.insert(id.to_string());
        let waiting: Vec<RunId> = self
            .runs
            .values()
            .filter(|r| r.timer_id == id && r.phase != RunPhase::Running)
            .map(|r| r.run_id.clone())
            .collect();
        for run_id in waiting {
            self.drop_run(&run_id);
        }
        self.bound_queues();
        self.emit(
            now,
            id,
            EventKind::TimerRemoved,
            None,
            EventDetail::default(),
        );
        Ok(())
    }

    /// Puts the timer's waiting runs back in the queue (after a pause or orphaning held them).
    pub(super) fn requeue_runs_of(&mut self, id: &str) {
        // Runs still queued are not queued twice: whether a run is in the queue is part of the
        // state a snapshot captures, and a second entry would keep it there after the first
        // came up and was held.
        let queued: std::collections::HashSet<&RunId> = self
            .waiting
            .iter()
            .filter(|Reverse((at, _, run))| {
                self.runs
                    .get(run)
                    .is_some_and(|r| r.timer_id == id && r.fire_at == *at)
            })
            .map(|Reverse((_, _, run))| run)
            .collect();
        let entries: Vec<(EpochMs, RunId)> = self
            .runs
            .values()
            .filter(|r| r.timer_id == id && r.phase != RunPhase::Running)
            .filter(|r| !queued.contains(&r.run_id))
            .map(|r| (r.fire_at, r.run_id.clone()))
            .collect();
        for (fire_at, run_id) in entries {
            self.queue_run(fire_at, run_id);
        }
    }
}

#[cfg(test)]
impl Engine {
    /// Marks every timer `registered` says no to, as a runtime does at start.
    pub(crate) fn mark_orphans_where(
        &mut self,
        registered: impl Fn(TimerKey, &str) -> bool,
        now: EpochMs,
    ) -> Vec<String> {
        let ids = self
            .timers
            .iter()
            .filter(|(key, t)| !registered(*key, &t.id))
            .map(|(_, t)| t.id.to_string())
            .collect();
        self.mark_orphans(ids, now)
    }
}
