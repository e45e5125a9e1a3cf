//! A timer as the engine holds it: the same facts as a [`TimerRecord`], laid out compactly.
//!
//! Every registered timer carries one of these for the life of the process, so each byte counts
//! a million times over: optional instants use a reserved value instead of a tag, the status of
//! the last run keeps its error behind one pointer, and what many timers share (zone, function
//! name, retry and overlap policy) is one [`Policy`] they point to.

use std::sync::Arc;

use smol_str::SmolStr;

use crate::cron::CronSchedule;
use crate::schedule::{ScheduleRef, ScheduleSpec};
use crate::time::EpochMs;
use crate::timer::{Catchup, LastStatus, Lifecycle, Overlap, TimerDef, TimerRecord};

/// Everything a definition says besides the timer's name and schedule. Timers registered the
/// same way share one copy (see [`super::Engine::share_policy`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Policy {
    pub(crate) timezone: Arc<str>,
    pub(crate) fn_name: Arc<str>,
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
    pub(crate) spec: ScheduleSpec,
    pub(crate) policy: Arc<Policy>,
    /// The compiled cron of `spec` (see [`Timer::schedule`]).
    pub(crate) cron: Option<Box<CronSchedule>>,
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
    pub(crate) lifecycle: Lifecycle,
}

impl Timer {
    /// The in-memory form of a record, with its definition's shared `policy` and compiled cron.
    pub(crate) fn new(
        rec: TimerRecord,
        policy: Arc<Policy>,
        cron: Option<Box<CronSchedule>>,
    ) -> Timer {
        Timer {
            id: SmolStr::new(&*rec.def.id),
            spec: rec.def.schedule,
            policy,
            cron,
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
            lifecycle: rec.lifecycle,
        }
    }

    /// The timer's schedule, compiled: its definition with its compiled cron.
    pub(crate) fn schedule(&self) -> ScheduleRef<'_> {
        ScheduleRef::new(&self.spec, self.cron.as_deref())
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

    /// The definition, as registered.
    pub(crate) fn def(&self) -> TimerDef {
        let p = &*self.policy;
        TimerDef {
            id: Arc::from(self.id.as_str()),
            schedule: self.spec.clone(),
            timezone: p.timezone.clone(),
            max_attempts: p.max_attempts,
            overlap: p.overlap,
            catchup: p.catchup,
            jitter_ms: p.jitter_ms,
            fn_name: p.fn_name.clone(),
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
            jitter_ms: def.jitter_ms,
            max_attempts: def.max_attempts,
            overlap: def.overlap,
            catchup: def.catchup,
        }
    }
}
