//! The scheduling state machine: a function of (state, input, now) to (new state, events).
//!
//! The engine owns every timer and every run in flight. Inputs are registrations, commands
//! (pause, resume, trigger, remove), the passage of time ([`Engine::poll`]) and run outcomes
//! ([`Engine::finish`]). It decides; the runtime executes: it commits [`Engine::take_changes`]
//! durably, then invokes the callbacks that `poll` handed out. Nothing here reads a clock or
//! touches storage, so tests drive it with a fake clock and a later replicated server can drive it
//! from a log.

mod commands;
mod fire;
mod outcome;
mod settle;
mod view;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};

use crate::changes::Changes;
use crate::cron::CronSchedule;
use crate::event::{Event, EventDetail, EventKind};
use crate::rng::Rng;
use crate::run::{RunId, RunIdGen, RunPhase, RunRecord};
use crate::schedule::{Schedule, ScheduleRef};
use crate::time::EpochMs;
use crate::timer::{TimerDef, TimerRecord};
use crate::CoreError;

pub use commands::{validate_def, Registered};
pub use outcome::Outcome;
pub use settle::settle_taken_occurrences;
pub use view::{derive_state, provisional_view, TimerView};

/// Tunables. The defaults are what the embedded runtime uses.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far ahead of its instant an occurrence becomes a durable `RUN_DUE`, so the write is
    /// done before the instant and durability adds no lateness.
    pub lookahead_ms: i64,
    /// How far ahead of its instant an attempt may start: its `RUN_STARTED` committed and the
    /// attempt handed out, with [`Dispatch::not_before_us`] telling the runtime to invoke it at
    /// the exact instant. Takes the commit and the hand-over off the callback's lateness. 0: an
    /// attempt starts only once its instant has come.
    pub start_ahead_ms: i64,
    /// First retry delay; doubles per failed attempt.
    pub backoff_base_ms: u64,
    /// Upper bound of a retry delay.
    pub backoff_cap_ms: u64,
    /// A running runtime that finds a recurring timer's next occurrence later than this (the
    /// process was suspended, say) applies the timer's catch-up policy instead of replaying.
    pub late_grace_ms: i64,
    /// At most this many missed occurrences are counted one by one (cron); beyond, counts say
    /// "at least".
    pub count_cap: u64,
    /// At most this many occurrences become due, and this many runs start, per `poll`: keeps each
    /// group commit small so a large burst starts dispatching after the first batch is durable.
    pub max_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lookahead_ms: 50,
            start_ahead_ms: 0,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 300_000,
            late_grace_ms: 1_000,
            count_cap: 100_000,
            max_batch: 2_048,
        }
    }
}

/// A callback the runtime must invoke, at `not_before_us` or as soon as possible after it. Its
/// `RUN_STARTED` is in the same [`Changes`] as the decision, so the runtime commits before
/// invoking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub run_id: RunId,
    pub timer_id: String,
    pub attempt: u32,
    pub scheduled_at: EpochMs,
    /// The exact instant to invoke at, in epoch microseconds: in the past unless the attempt
    /// started ahead ([`EngineConfig::start_ahead_ms`]).
    pub not_before_us: i64,
}

/// A registered timer in memory: its durable record, compiled schedule and in-flight counters.
#[derive(Debug, Clone)]
pub(crate) struct Timer {
    pub(crate) rec: TimerRecord,
    /// The compiled cron of `rec.def.schedule` (see [`Timer::schedule`]).
    pub(crate) cron: Option<Box<CronSchedule>>,
    /// Runs of this timer in `Running`.
    pub(crate) running: u32,
    /// Runs of this timer in `RetryWait`.
    pub(crate) retrying: u32,
    /// Heap entries carrying another generation are stale.
    pub(crate) gen: u64,
    /// Catch-up "once": the pending occurrence stands for this many missed ones, up to `.1`.
    /// Boxed: rare, and every timer carries the field.
    pub(crate) coalesced: Option<Box<(u64, EpochMs)>>,
}

impl Timer {
    /// The timer's schedule, compiled: its definition (in the record) with its compiled cron.
    pub(crate) fn schedule(&self) -> ScheduleRef<'_> {
        ScheduleRef::new(&self.rec.def.schedule, self.cron.as_deref())
    }
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    rng: Rng,
    ids: RunIdGen,
    // Boxed: a timer is a few hundred bytes, and a map sized for growth would otherwise reserve
    // that much per empty slot too.
    // Keys are shared with the occurrence heap: one copy of each id, not two.
    timers: HashMap<Arc<str>, Box<Timer>>,
    runs: HashMap<RunId, RunRecord>,
    /// (fire_at, generation, timer id) of each active timer's next occurrence. Generations are
    /// unique, so entries due at the same instant are ordered by generation (the order they were
    /// queued) and the ids are never compared.
    occurrences: BinaryHeap<Reverse<(EpochMs, u64, Arc<str>)>>,
    /// (fire_at, run id's sort key, run id) of runs waiting to start (Due, RetryWait): oldest
    /// first among runs due at the same instant. See [`Engine::queue_run`].
    waiting: BinaryHeap<Reverse<(EpochMs, u128, RunId)>>,
    next_gen: u64,
    /// When `recover` ran: catch-up "all" replays the grid up to here.
    recovered_at: Option<EpochMs>,
    changes: Pending,
    /// One copy of each distinct zone and function name: thousands of timers usually share a
    /// handful (kept for the engine's life; there are only as many as distinct names).
    names: HashSet<Arc<str>>,
}

/// Changes accumulated since the last `take_changes`.
#[derive(Debug, Default)]
struct Pending {
    events: Vec<Event>,
    /// The engine's shared copies of the ids (no allocation per touched timer).
    timers: HashSet<Arc<str>>,
    /// Timers whose definition changed (a subset of `timers`): written in full.
    defs: HashSet<Arc<str>>,
    removed_timers: HashSet<String>,
    runs: HashSet<RunId>,
    finished_runs: Vec<RunId>,
}

impl Pending {
    /// Most entries reserved ahead for the next step, per collection.
    const RESERVE_CAP: usize = 4_096;

    /// Reserves room for as many changes as `last` held (up to [`Pending::RESERVE_CAP`]): during
    /// a burst every step is about as large as the one before, and growing each collection from
    /// empty again reallocated (and rehashed) it several times per step.
    fn reserve_like(&mut self, last: &Pending) {
        let cap = |n: usize| n.min(Self::RESERVE_CAP);
        self.events.reserve(cap(last.events.len()));
        self.timers.reserve(cap(last.timers.len()));
        self.defs.reserve(cap(last.defs.len()));
        self.runs.reserve(cap(last.runs.len()));
        self.finished_runs.reserve(cap(last.finished_runs.len()));
    }
}

impl Engine {
    pub fn new(config: EngineConfig, seed: u64) -> Engine {
        Engine {
            config,
            rng: Rng::new(seed),
            ids: RunIdGen::default(),
            timers: HashMap::new(),
            runs: HashMap::new(),
            occurrences: BinaryHeap::new(),
            waiting: BinaryHeap::new(),
            next_gen: 0,
            recovered_at: None,
            changes: Pending::default(),
            names: HashSet::default(),
        }
    }

    /// Makes the definition's zone and function name (and a cron's zone) the engine's shared
    /// copies.
    fn share_names(&mut self, def: &mut TimerDef) {
        let cron_zone = match &mut def.schedule {
            crate::schedule::ScheduleSpec::Cron { timezone, .. } => Some(timezone),
            _ => None,
        };
        let names = [Some(&mut def.timezone), Some(&mut def.fn_name), cron_zone];
        for name in names.into_iter().flatten() {
            match self.names.get(&**name) {
                Some(shared) => *name = shared.clone(),
                None => {
                    self.names.insert(name.clone());
                }
            }
        }
    }

    /// Queues a run to start at `fire_at`.
    fn queue_run(&mut self, fire_at: EpochMs, run_id: RunId) {
        self.waiting
            .push(Reverse((fire_at, run_id.sort_key(), run_id)));
    }

    /// Loads persisted state (no events are written). Runs found `Running` were interrupted by
    /// the end of the previous process; [`Engine::recover`] settles them.
    pub fn restore(
        &mut self,
        timers: Vec<TimerRecord>,
        runs: Vec<RunRecord>,
    ) -> Result<(), CoreError> {
        let taken = settle::taken_occurrences(&runs);
        for mut rec in timers {
            let schedule = Schedule::from_spec(rec.def.schedule.clone())?;
            let id = rec.def.id.clone();
            settle::settle_record(&mut rec, schedule.view(), |at| taken.contains(&(&*id, at)));
            self.share_names(&mut rec.def);
            let timer = Timer {
                rec,
                cron: schedule.into_cron(),
                running: 0,
                retrying: 0,
                gen: 0,
                coalesced: None,
            };
            // The record's id is the map's key: one copy.
            self.timers.insert(id.clone(), Box::new(timer));
            self.push_occurrence(&id);
        }
        for run in runs {
            if let Some(timer) = self.timers.get_mut(run.timer_id.as_str()) {
                match run.phase {
                    RunPhase::Running => timer.running += 1,
                    RunPhase::RetryWait => timer.retrying += 1,
                    RunPhase::Due => {}
                }
            }
            if run.phase != RunPhase::Running {
                self.queue_run(run.fire_at, run.run_id.clone());
            }
            self.runs.insert(run.run_id.clone(), run);
        }
        Ok(())
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn contains(&self, id: &str) -> bool {
        self.timers.contains_key(id)
    }

    /// The timer's current definition.
    pub fn definition(&self, id: &str) -> Option<&crate::timer::TimerDef> {
        self.timers.get(id).map(|t| &t.rec.def)
    }

    /// The timer's id as the engine holds it, shared: a map keyed by timer id elsewhere can
    /// hold the same copy instead of another.
    pub fn shared_id(&self, id: &str) -> Option<Arc<str>> {
        self.timers.get_key_value(id).map(|(key, _)| key.clone())
    }

    pub fn timer_ids(&self) -> impl Iterator<Item = &str> {
        self.timers.keys().map(|id| &**id)
    }

    /// Runs in flight (any phase).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    pub fn has_changes(&self) -> bool {
        let p = &self.changes;
        !(p.events.is_empty()
            && p.timers.is_empty()
            && p.removed_timers.is_empty()
            && p.runs.is_empty()
            && p.finished_runs.is_empty())
    }

    /// Everything changed since the last call, for one durable commit.
    pub fn take_changes(&mut self) -> Changes {
        let pending = std::mem::take(&mut self.changes);
        self.changes.reserve_like(&pending);
        // Sized exactly: a step's collections are large in a burst or a batch of registrations,
        // and growing them by doubling leaves the allocator holes (measured in memory per timer).
        let mut timers = Vec::with_capacity(pending.defs.len());
        let mut timer_states =
            Vec::with_capacity(pending.timers.len().saturating_sub(pending.defs.len()));
        for id in &pending.timers {
            if let Some(t) = self.timers.get(&**id) {
                if pending.defs.contains(id) {
                    timers.push(t.rec.clone());
                } else {
                    timer_states.push(t.rec.clone());
                }
            }
        }
        let runs = pending
            .runs
            .iter()
            .filter_map(|id| self.runs.get(id).cloned())
            .collect();
        Changes {
            events: pending.events,
            timers,
            timer_states,
            removed_timers: pending.removed_timers.into_iter().collect(),
            runs,
            finished_runs: pending.finished_runs,
        }
    }

    /// The earliest instant at which [`Engine::poll`] has something to do, ignoring runs that wait
    /// for a free worker (`workers_free` false: the runtime waits for a completion instead).
    pub fn next_wakeup(&self, workers_free: bool) -> Option<EpochMs> {
        let occurrence = self
            .occurrences
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_sub(self.config.lookahead_ms));
        let run = if workers_free {
            self.waiting
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_sub(self.config.start_ahead_ms))
        } else {
            None
        };
        match (occurrence, run) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ---- shared helpers -------------------------------------------------------------------

    fn emit(
        &mut self,
        ts: EpochMs,
        timer_id: &str,
        kind: EventKind,
        run: Option<(&RunId, u32)>,
        detail: EventDetail,
    ) {
        self.changes.events.push(Event {
            ts,
            timer_id: timer_id.to_string(),
            kind,
            run_id: run.map(|(id, _)| id.clone()),
            attempt: run.map(|(_, attempt)| attempt),
            detail,
        });
    }

    fn touch_timer(&mut self, id: &str, now: EpochMs) {
        if let Some(timer) = self.timers.get_mut(id) {
            timer.rec.updated_at = now;
            if !self.changes.timers.contains(id) {
                self.changes.timers.insert(timer.rec.def.id.clone());
            }
        }
    }

    /// Marks the timer's definition as changed (and its row as touched).
    fn touch_def(&mut self, id: &str, now: EpochMs) {
        self.touch_timer(id, now);
        if let Some(timer) = self.timers.get(id) {
            if !self.changes.defs.contains(id) {
                self.changes.defs.insert(timer.rec.def.id.clone());
            }
        }
    }

    fn touch_run(&mut self, id: &RunId) {
        if !self.changes.runs.contains(id) {
            self.changes.runs.insert(id.clone());
        }
    }

    fn drop_run(&mut self, id: &RunId) -> Option<RunRecord> {
        let run = self.runs.remove(id)?;
        self.changes.runs.remove(id);
        self.changes.finished_runs.push(id.clone());
        Some(run)
    }

    /// (Re)queues the timer's next occurrence, invalidating older heap entries.
    fn push_occurrence(&mut self, id: &str) {
        self.next_gen += 1;
        let gen = self.next_gen;
        let Some((key, _)) = self.timers.get_key_value(id) else {
            return;
        };
        let key = key.clone();
        if let Some(timer) = self.timers.get_mut(id) {
            timer.gen = gen;
            if let Some(at) = timer.rec.next_fire_at {
                self.occurrences.push(Reverse((at, gen, key)));
            }
        }
    }

    /// Sets the timer's next occurrence (nominal `scheduled`, jitter drawn here) and queues it.
    fn set_next(&mut self, id: &str, scheduled: Option<EpochMs>) {
        let Some(timer) = self.timers.get_mut(id) else {
            return;
        };
        let jitter = self.rng.below_or_eq(timer.rec.def.jitter_ms) as i64;
        timer.rec.next_scheduled_at = scheduled;
        timer.rec.next_fire_at = scheduled.map(|s| s.saturating_add(jitter));
        self.push_occurrence(id);
    }

    fn new_run_id(&mut self, now: EpochMs) -> RunId {
        self.ids.next(now, &mut self.rng)
    }
}
