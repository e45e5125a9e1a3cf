//! A timer as the engine holds it: the same facts as a [`TimerRecord`], laid out compactly.
//!
//! Every registered timer carries one of these for the life of the process, so each byte counts
//! a million times over: optional instants use a reserved value instead of a tag, the status of
//! the last run keeps its error behind one pointer, and what many timers share (zone, function
//! name, retry and overlap policy) is one [`Policy`] they point to.

use std::sync::Arc;

use smol_str::SmolStr;

use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::{Catchup, LastStatus, Lifecycle, Overlap, TaskTarget, TimerDef, TimerRecord};

/// Everything a definition says besides the timer's name and schedule. Timers registered the
/// same way share one copy (see [`super::Engine::share_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Policy {
    pub(crate) timezone: Arc<str>,
    pub(crate) fn_name: Arc<str>,
    /// A server-mode timer's task (see [`TimerDef::task`]); each usually has a payload of its
    /// own, so only callback timers share policies in numbers.
    pub(crate) task: Option<Arc<TaskTarget>>,
    pub(crate) jitter_ms: u64,
    pub(crate) max_attempts: u32,
    pub(crate) overlap: Overlap,
    pub(crate) catchup: Catchup,
}

/// An optional instant in 8 bytes: `i64::MIN`, far outside every valid instant, stands for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptMs(i64);

impl OptMs {
    pub(crate) const NONE: OptMs = OptMs(i64::MIN);

    pub(crate) fn new(value: Option<EpochMs>) -> OptMs {
        // No instant or duration the engine computes is that far back; clamped all the same.
        value.map_or(OptMs::NONE, |v| OptMs(v.max(i64::MIN + 1)))
    }

    pub(crate) fn get(self) -> Option<EpochMs> {
        (self != OptMs::NONE).then_some(self.0)
    }
}

/// An optional duration in 8 bytes (`u64::MAX` stands for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptDuration(u64);

impl OptDuration {
    pub(crate) fn new(value: Option<u64>) -> OptDuration {
        OptDuration(value.map_or(u64::MAX, |v| v.min(u64::MAX - 1)))
    }

    pub(crate) fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }
}

/// [`Option<LastStatus>`] in 16 bytes: the error text behind one thin pointer.
// A `String` inline would make every timer 16 bytes larger; only failed timers pay the box.
#[allow(clippy::box_collection)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatusCell {
    Never,
    Ok,
    SkippedOverlap,
    Failed(Box<String>),
    Dead(Box<String>),
}

impl StatusCell {
    pub(crate) fn new(status: Option<LastStatus>) -> StatusCell {
        match status {
            None => StatusCell::Never,
            Some(LastStatus::Ok) => StatusCell::Ok,
            Some(LastStatus::SkippedOverlap) => StatusCell::SkippedOverlap,
            Some(LastStatus::Failed(e)) => StatusCell::Failed(Box::new(e)),
            Some(LastStatus::Dead(e)) => StatusCell::Dead(Box::new(e)),
        }
    }

    pub(crate) fn get(&self) -> Option<LastStatus> {
        match self {
            StatusCell::Never => None,
            StatusCell::Ok => Some(LastStatus::Ok),
            StatusCell::SkippedOverlap => Some(LastStatus::SkippedOverlap),
            StatusCell::Failed(e) => Some(LastStatus::Failed(String::clone(e))),
            StatusCell::Dead(e) => Some(LastStatus::Dead(String::clone(e))),
        }
    }
}

/// A registered timer in memory: its definition, durable state and in-flight counters.
#[derive(Debug, Clone)]
pub(crate) struct Timer {
    /// Names are short: up to 23 bytes are held inline, with no allocation of their own.
    pub(crate) id: SmolStr,
    pub(crate) schedule: Schedule,
    pub(crate) policy: Arc<Policy>,
    /// Catch-up "once": the pending occurrence stands for this many missed ones, up to `.1`.
    /// Boxed: rare, and every timer carries the field.
    pub(crate) coalesced: Option<Box<(u64, EpochMs)>>,
    /// The nominal time of the next occurrence, and when it fires (with jitter).
    pub(crate) next_scheduled_at: OptMs,
    pub(crate) next_fire_at: OptMs,
    pub(crate) created_at: EpochMs,
    pub(crate) updated_at: EpochMs,
    pub(crate) last_run_at: OptMs,
    pub(crate) last_duration_ms: OptDuration,
    pub(crate) run_count: u64,
    pub(crate) failure_count: u64,
    pub(crate) last_status: StatusCell,
    /// Runs of this timer in `Running`.
    pub(crate) running: u32,
    /// Runs of this timer in `RetryWait`.
    pub(crate) retrying: u32,
    /// Scheduled (not manual) runs of this timer in flight, in any phase. A `delay` timer has at
    /// most one but for a while after its overlap policy changed; its next occurrence is planned
    /// only once this is back to zero.
    pub(crate) scheduled_runs: u32,
    pub(crate) lifecycle: Lifecycle,
    /// No function is registered for the timer in this process (set at start for every timer the
    /// process did not register, cleared by a registration): it must not run, whatever its
    /// lifecycle says (a paused one is orphaned again when resumed).
    pub(crate) unregistered: bool,
    /// `start_due` held a scheduled run of this `delay` timer because another was running (only
    /// while more than one is in flight, after a change of overlap policy): requeued when no run
    /// of it is running any more.
    pub(crate) held: bool,
}

impl Timer {
    /// The in-memory form of a record, with its definition's shared `policy` and its compiled
    /// schedule.
    pub(crate) fn new(rec: TimerRecord, policy: Arc<Policy>, schedule: Schedule) -> Timer {
        Timer {
            id: SmolStr::new(&*rec.def.id),
            schedule,
            policy,
            coalesced: None,
            next_scheduled_at: OptMs::new(rec.next_scheduled_at),
            next_fire_at: OptMs::new(rec.next_fire_at),
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            last_run_at: OptMs::new(rec.last_run_at),
            last_duration_ms: OptDuration::new(rec.last_duration_ms),
            run_count: rec.run_count,
            failure_count: rec.failure_count,
            last_status: StatusCell::new(rec.last_status),
            running: 0,
            retrying: 0,
            scheduled_runs: 0,
            lifecycle: rec.lifecycle,
            unregistered: rec.lifecycle == Lifecycle::Orphaned,
            held: false,
        }
    }

    /// The timer's schedule, compiled.
    pub(crate) fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub(crate) fn next_scheduled_at(&self) -> Option<EpochMs> {
        self.next_scheduled_at.get()
    }

    pub(crate) fn next_fire_at(&self) -> Option<EpochMs> {
        self.next_fire_at.get()
    }

    pub(crate) fn set_next(&mut self, scheduled: Option<EpochMs>, fire: Option<EpochMs>) {
        self.next_scheduled_at = OptMs::new(scheduled);
        self.next_fire_at = OptMs::new(fire);
    }

    /// A one-shot re-registered while its run was in flight has another occurrence to run: the
    /// end of the earlier run does not finish it.
    pub(crate) fn has_more_to_run(&self) -> bool {
        self.scheduled_runs > 0 || self.next_fire_at().is_some()
    }

    /// Whether runs held until no run of the timer is running (see `held`) may start now: true
    /// once, after which they are requeued.
    pub(crate) fn release_held(&mut self) -> bool {
        let release = self.held && self.running == 0;
        if release {
            self.held = false;
        }
        release
    }

    /// The definition, as registered.
    pub(crate) fn def(&self) -> TimerDef {
        let p = &*self.policy;
        TimerDef {
            id: Arc::from(self.id.as_str()),
            schedule: self.schedule.to_spec(),
            timezone: p.timezone.clone(),
            max_attempts: p.max_attempts,
            overlap: p.overlap,
            catchup: p.catchup,
            jitter_ms: p.jitter_ms,
            fn_name: p.fn_name.clone(),
            task: p.task.clone(),
        }
    }

    /// The durable record.
    pub(crate) fn record(&self) -> TimerRecord {
        TimerRecord {
            def: self.def(),
            lifecycle: self.lifecycle,
            next_scheduled_at: self.next_scheduled_at(),
            next_fire_at: self.next_fire_at(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_run_at: self.last_run_at.get(),
            last_status: self.last_status.get(),
            last_duration_ms: self.last_duration_ms.get(),
            run_count: self.run_count,
            failure_count: self.failure_count,
        }
    }
}

impl Policy {
    pub(crate) fn of(def: &TimerDef) -> Policy {
        Policy {
            timezone: def.timezone.clone(),
            fn_name: def.fn_name.clone(),
            task: def.task.clone(),
            jitter_ms: def.jitter_ms,
            max_attempts: def.max_attempts,
            overlap: def.overlap,
            catchup: def.catchup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleSpec;

    /// Memory per timer is a target: a field that grows the record should be a decision.
    #[test]
    fn the_record_stays_compact() {
        assert_eq!(std::mem::size_of::<Schedule>(), 16);
        assert_eq!(std::mem::size_of::<StatusCell>(), 16);
        assert!(
            std::mem::size_of::<Timer>() <= 160,
            "{}",
            std::mem::size_of::<Timer>()
        );
        assert_eq!(
            std::mem::size_of::<Option<Timer>>(),
            std::mem::size_of::<Timer>()
        );
    }

    #[test]
    fn optional_values_round_trip() {
        for v in [
            None,
            Some(0),
            Some(-1),
            Some(i64::MAX),
            Some(1_800_000_000_000),
        ] {
            assert_eq!(OptMs::new(v).get(), v);
        }
        assert_eq!(OptMs::new(Some(i64::MIN)).get(), Some(i64::MIN + 1));
        for v in [None, Some(0), Some(u64::MAX - 1)] {
            assert_eq!(OptDuration::new(v).get(), v);
        }
        for status in [
            None,
            Some(LastStatus::Ok),
            Some(LastStatus::SkippedOverlap),
            Some(LastStatus::Failed("boom".into())),
            Some(LastStatus::Dead("gone".into())),
        ] {
            assert_eq!(StatusCell::new(status.clone()).get(), status);
        }
    }

    #[test]
    fn schedules_round_trip_through_the_compact_form() {
        let specs = [
            ScheduleSpec::Every { ms: 1_000 },
            ScheduleSpec::After { ms: 10 },
            ScheduleSpec::at_ms(1_800_000_000_000),
            ScheduleSpec::at_micros(1_800_000_000_000_123),
            ScheduleSpec::at_micros(-1_500),
            ScheduleSpec::Cron {
                expr: "0 8 * * *".into(),
                timezone: "Europe/Berlin".into(),
            },
        ];
        for spec in specs {
            let schedule = Schedule::from_spec(spec.clone()).expect("valid");
            let compiled = Schedule::from_spec(spec.clone()).expect("valid");
            let compact = schedule;
            assert_eq!(compact.to_spec(), spec);
            assert_eq!(compact.exact_micros(), spec.exact_micros());
            let (a, b) = (&compact, &compiled);
            assert_eq!(a.describe(), b.describe());
            assert_eq!(a.first(1_700_000_000_000), b.first(1_700_000_000_000));
            assert_eq!(
                a.next_after(1_700_000_000_000),
                b.next_after(1_700_000_000_000)
            );
        }
    }
}
