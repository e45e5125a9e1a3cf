//! Registration and operator commands: register, orphan, pause, resume, trigger, remove.

use std::cmp::Reverse;

use super::{Engine, Timer};
use crate::error::CommandError;
use crate::event::{EventDetail, EventKind};
use crate::run::{RunId, RunPhase, RunRecord};
use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::{validate_timer_id, Lifecycle, TimerDef, TimerRecord};
use crate::CoreError;

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    Updated,
    /// Same definition as persisted: the stored state stands.
    Unchanged,
}

/// Validates a definition completely, so that bad input never reaches the engine or storage.
pub fn validate_def(def: &TimerDef) -> Result<Schedule, CoreError> {
    validate_timer_id(&def.id)?;
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
    Schedule::from_spec(def.schedule.clone())
}

impl Engine {
    /// Registers or re-registers a timer. Same definition: the persisted state stands (a pending
    /// occurrence keeps its time, a finished one-shot stays finished). Changed definition:
    /// `TIMER_UPDATED`, and the next occurrence is recomputed when the schedule itself changed.
    /// An orphaned timer is revived (`TIMER_RESUMED`).
    pub fn register(&mut self, mut def: TimerDef, now: EpochMs) -> Result<Registered, CoreError> {
        let schedule = validate_def(&def)?;
        self.share_names(&mut def);
        // A known timer keeps its id shared with the engine's map (one copy, not two).
        if let Some((key, _)) = self.timers.get_key_value(&*def.id) {
            def.id = key.clone();
        }
        let id = def.id.clone();
        let Some(timer) = self.timers.get_mut(&*id) else {
            self.create(def, schedule, now);
            return Ok(Registered::Created);
        };

        let revived = timer.rec.lifecycle == Lifecycle::Orphaned;
        let same_definition = timer.rec.def.same_definition_as(&def);
        let same_schedule = timer.rec.def.same_schedule_as(&def);
        let fn_changed = timer.rec.def.fn_name != def.fn_name;
        timer.rec.def = def;
        if revived {
            timer.rec.lifecycle = Lifecycle::Active;
        }
        if !same_schedule {
            timer.cron = schedule.into_cron();
            timer.coalesced = None;
            if matches!(timer.rec.lifecycle, Lifecycle::Completed | Lifecycle::Dead) {
                timer.rec.lifecycle = Lifecycle::Active;
            }
            let next = timer.schedule().first(now);
            self.set_next(&id, next);
        } else if revived {
            self.push_occurrence(&id);
            self.requeue_runs_of(&id);
        }
        if revived || !same_definition || fn_changed {
            self.touch_def(&id, now);
        }
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
        let (text, next) = match self.timers.get(&*id) {
            Some(t) => (t.schedule().describe(), t.rec.next_fire_at),
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
    /// `touch_def` (and in the same order: one jitter draw, one generation), without looking the
    /// timer up again for each: registering many timers is a loop over this.
    fn create(&mut self, def: TimerDef, schedule: Schedule, now: EpochMs) {
        let id = def.id.clone();
        let scheduled = schedule.first(now);
        let text = schedule.describe();
        let jitter = self.rng.below_or_eq(def.jitter_ms) as i64;
        let next_fire_at = scheduled.map(|s| s.saturating_add(jitter));
        self.next_gen += 1;
        let gen = self.next_gen;
        let rec = TimerRecord::created(def, now, scheduled, next_fire_at);
        let timer = Timer {
            rec,
            cron: schedule.into_cron(),
            running: 0,
            retrying: 0,
            gen,
            coalesced: None,
        };
        // The record's id is the map's key and the queue's: one copy.
        let key = id.clone();
        if let Some(at) = next_fire_at {
            self.occurrences.push(Reverse((at, gen, key.clone())));
        }
        if !self.changes.removed_timers.is_empty() {
            self.changes.removed_timers.remove(&*id);
        }
        self.changes.timers.insert(id.clone());
        self.changes.defs.insert(id.clone());
        let detail = EventDetail {
            schedule: Some(text),
            next_run_at: next_fire_at,
            ..Default::default()
        };
        self.changes.events.push(crate::event::Event {
            ts: now,
            timer_id: id.to_string(),
            kind: EventKind::TimerCreated,
            run_id: None,
            attempt: None,
            detail,
        });
        self.timers.insert(key, Box::new(timer));
    }

    /// Marks every active timer for which `registered` is false as orphaned (`TIMER_ORPHANED`):
    /// it stays listed and never runs until a registration revives it.
    pub fn mark_orphans(&mut self, registered: impl Fn(&str) -> bool, now: EpochMs) -> Vec<String> {
        let mut orphans: Vec<String> = self
            .timers
            .iter()
            .filter(|(id, t)| t.rec.lifecycle == Lifecycle::Active && !registered(id))
            .map(|(id, _)| id.to_string())
            .collect();
        orphans.sort();
        for id in &orphans {
            if let Some(timer) = self.timers.get_mut(id.as_str()) {
                timer.rec.lifecycle = Lifecycle::Orphaned;
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
    pub fn pause(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        let timer = self
            .timers
            .get_mut(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        match timer.rec.lifecycle {
            Lifecycle::Paused => return Ok(()),
            Lifecycle::Completed | Lifecycle::Dead => {
                return Err(CommandError::NotRunnable {
                    id: id.to_string(),
                    reason: "it is a one-shot that has finished: there is nothing to pause",
                })
            }
            Lifecycle::Active | Lifecycle::Orphaned => {}
        }
        timer.rec.lifecycle = Lifecycle::Paused;
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
    pub fn resume(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        let timer = self
            .timers
            .get_mut(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        if timer.rec.lifecycle != Lifecycle::Paused {
            return Ok(());
        }
        timer.rec.lifecycle = Lifecycle::Active;
        let passed = timer.rec.next_fire_at.is_some_and(|at| at < now);
        if passed && !timer.schedule().is_one_shot() {
            timer.coalesced = None;
            let next = timer.schedule().first(now);
            self.set_next(id, next);
        } else {
            self.push_occurrence(id);
        }
        self.requeue_runs_of(id);
        self.touch_timer(id, now);
        let next = self.timers.get(id).and_then(|t| t.rec.next_fire_at);
        let detail = EventDetail {
            next_run_at: next,
            ..Default::default()
        };
        self.emit(now, id, EventKind::TimerResumed, None, detail);
        Ok(())
    }

    /// Runs the timer now, off-schedule, once (with its retry budget). The schedule is not
    /// touched, overlap and pause do not hold it back. Returns the new run's id.
    pub fn trigger(&mut self, id: &str, now: EpochMs) -> Result<RunId, CommandError> {
        let timer = self
            .timers
            .get(id)
            .ok_or_else(|| CommandError::UnknownTimer(id.to_string()))?;
        if timer.rec.lifecycle == Lifecycle::Orphaned {
            return Err(CommandError::NotRunnable {
                id: id.to_string(),
                reason: "it is orphaned: no function is registered for it in this process",
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
        self.touch_run(&run_id);
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
    pub fn remove(&mut self, id: &str, now: EpochMs) -> Result<(), CommandError> {
        if self.timers.remove(id).is_none() {
            return Err(CommandError::UnknownTimer(id.to_string()));
        }
        self.changes.timers.remove(id);
        self.changes.defs.remove(id);
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
    fn requeue_runs_of(&mut self, id: &str) {
        let entries: Vec<(EpochMs, RunId)> = self
            .runs
            .values()
            .filter(|r| r.timer_id == id && r.phase != RunPhase::Running)
            .map(|r| (r.fire_at, r.run_id.clone()))
            .collect();
        for (fire_at, run_id) in entries {
            self.queue_run(fire_at, run_id);
        }
    }
}
