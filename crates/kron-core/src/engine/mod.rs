//! The scheduling state machine: a function of (state, input, now) to (new state, events).
//!
//! The engine owns every timer and every run in flight. Inputs are registrations, commands
//! (pause, resume, trigger, remove), the passage of time ([`Engine::poll`]) and run outcomes
//! ([`Engine::finish`]). It decides; the runtime executes: it commits [`Engine::take_changes`]
//! durably, then invokes the callbacks that `poll` handed out. Nothing here reads a clock or
//! touches storage, so tests drive it with a fake clock and a later replicated server can drive it
//! from a log.

mod apply;
mod claims;
mod commands;
mod fire;
mod outcome;
mod record;
mod settle;
mod snapshot;
mod table;
mod view;

#[cfg(test)]
mod command_tests;
#[cfg(test)]
mod redefine_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};
use smol_str::SmolStr;

use crate::changes::Changes;
use crate::event::{Event, EventDetail, EventKind};
use crate::rng::Rng;
use crate::run::{RunId, RunIdGen, RunPhase, RunRecord};
use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::{Lifecycle, Overlap, TimerDef, TimerRecord};

use crate::CoreError;
use record::{Policy, Timer};
use table::TimerTable;

pub use claims::{ClaimRequest, ClaimedRun, Lease, LeaseError, LEASE_EXPIRED, NEXT_TOKEN};
pub use commands::{validate_def, Registered};
pub use outcome::Outcome;
pub use settle::settle_taken_occurrences;
pub use snapshot::{SnapshotCopy, SNAPSHOT_VERSION};
pub use table::TimerKey;
pub use view::{derive_state, provisional_view, TimerView};

/// Stale queue entries tolerated beyond as many as there are live ones (see
/// [`Engine::bound_queues`]).
const QUEUE_SLACK: usize = 64;

/// Tunables. The defaults are what the embedded runtime uses. Part of a snapshot: engines that
/// must decide alike must be tuned alike.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dispatch {
    pub run_id: RunId,
    pub timer_id: String,
    /// The timer's slot in this engine, for tables the applying process keeps per timer (see
    /// [`Engine::key`]). A handle into this process's memory, not data: another engine holding
    /// the same state may use other slots, so it is not serialized (and reads back as 0).
    #[serde(skip)]
    pub timer: TimerKey,
    pub attempt: u32,
    pub scheduled_at: EpochMs,
    /// The exact instant to invoke at, in epoch microseconds: in the past unless the attempt
    /// started ahead ([`EngineConfig::start_ahead_ms`]).
    pub not_before_us: i64,
}

/// The engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    rng: Rng,
    ids: RunIdGen,
    timers: TimerTable,
    runs: HashMap<RunId, RunRecord>,
    /// (fire_at, slot) of each active timer's next occurrence: an entry is current while the
    /// timer in the slot is active and still fires at that instant (see [`Engine::materialize`]);
    /// any other entry is stale and dropped when it comes up. Entries due within the look-ahead
    /// move to `staged` before they are made due.
    occurrences: BinaryHeap<Reverse<(EpochMs, TimerKey)>>,
    /// (fire_at, timer name) of occurrences taken from `occurrences` because they are due within
    /// the look-ahead, sorted: at one instant, by name, so that the order (and with it each
    /// occurrence's jitter draw and run id) does not depend on slots (see `stage_due`).
    staged: VecDeque<(EpochMs, SmolStr)>,
    /// (fire_at, run id's sort key, run id) of runs waiting to start (Due, RetryWait): oldest
    /// first among runs due at the same instant. See [`Engine::queue_run`].
    waiting: BinaryHeap<Reverse<(EpochMs, u128, RunId)>>,
    /// (fire_at, run id's sort key, run id) of task timers' due runs, parked by a tick for
    /// workers to claim (see `claims.rs`). Ordered: claims take the oldest first.
    claimable: BTreeSet<(EpochMs, u128, RunId)>,
    /// Leases of runs claimed by workers, by run (ordered: expiry goes in run id order).
    leases: BTreeMap<RunId, Lease>,
    /// The highest fencing token a claim used: a claim must use a higher one.
    last_token: u64,
    /// When `recover` ran: catch-up "all" replays the grid up to here.
    recovered_at: Option<EpochMs>,
    changes: Pending,
    /// One copy of each distinct zone and function name, and of each distinct policy: thousands
    /// of timers usually share a handful (kept for the engine's life; there are only as many as
    /// distinct definitions).
    names: HashSet<Arc<str>>,
    policies: HashSet<Arc<Policy>>,
}

/// Changes accumulated since the last `take_changes`.
#[derive(Debug, Default)]
struct Pending {
    events: Vec<Event>,
    /// Timers whose row changed, by slot.
    timers: HashSet<TimerKey>,
    /// Timers whose definition changed (a subset of `timers`): written in full.
    defs: HashSet<TimerKey>,
    removed_timers: HashSet<String>,
    /// Runs whose row changed; `true` for runs created since the last take (no row yet: it is
    /// inserted, not updated).
    runs: HashMap<RunId, bool>,
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
            timers: TimerTable::default(),
            runs: HashMap::new(),
            occurrences: BinaryHeap::new(),
            staged: VecDeque::new(),
            waiting: BinaryHeap::new(),
            claimable: BTreeSet::new(),
            leases: BTreeMap::new(),
            last_token: 0,
            recovered_at: None,
            changes: Pending::default(),
            names: HashSet::default(),
            policies: HashSet::default(),
        }
    }

    /// The engine's shared copy of `name`.
    fn share_name(&mut self, name: &Arc<str>) -> Arc<str> {
        match self.names.get(&**name) {
            Some(shared) => shared.clone(),
            None => {
                self.names.insert(name.clone());
                name.clone()
            }
        }
    }

    /// The schedule with a cron's zone replaced by the engine's shared copy.
    fn share_schedule(&mut self, mut schedule: Schedule) -> Schedule {
        schedule.share_timezone(|name| self.share_name(name));
        schedule
    }

    /// The engine's shared copy of the definition's policy.
    fn share_policy(&mut self, def: &TimerDef) -> Arc<Policy> {
        let mut policy = Policy::of(def);
        if let Some(shared) = self.policies.get(&policy) {
            return shared.clone();
        }
        policy.timezone = self.share_name(&policy.timezone);
        policy.fn_name = self.share_name(&policy.fn_name);
        let policy = Arc::new(policy);
        self.policies.insert(policy.clone());
        policy
    }

    /// The in-memory form of a record; `schedule` is its definition's, compiled.
    fn make_timer(&mut self, rec: TimerRecord, schedule: Schedule) -> Timer {
        let spec = self.share_schedule(schedule);
        let policy = self.share_policy(&rec.def);
        Timer::new(rec, policy, spec)
    }

    /// Queues a run to start at `fire_at`.
    fn queue_run(&mut self, fire_at: EpochMs, run_id: RunId) {
        self.waiting
            .push(Reverse((fire_at, run_id.sort_key(), run_id)));
    }

    /// An engine holding the stored state (no events are written). Runs found `Running` were
    /// interrupted by the end of the previous process: apply [`Input::Recover`] to settle them.
    /// `seed` starts the random generator (jitter, run ids).
    ///
    /// [`Input::Recover`]: crate::input::Input::Recover
    pub fn restored(
        config: EngineConfig,
        seed: u64,
        timers: Vec<TimerRecord>,
        runs: Vec<RunRecord>,
    ) -> Result<Engine, CoreError> {
        let mut engine = Engine::new(config, seed);
        engine.restore(timers, runs)?;
        Ok(engine)
    }

    /// Loads stored state into this (new) engine; see [`Engine::restored`].
    pub(crate) fn restore(
        &mut self,
        timers: Vec<TimerRecord>,
        runs: Vec<RunRecord>,
    ) -> Result<(), CoreError> {
        let taken = settle::taken_occurrences(&runs);
        for mut rec in timers {
            let schedule = Schedule::from_spec(rec.def.schedule.clone())?;
            let id = rec.def.id.clone();
            settle::settle_record(&mut rec, &schedule, |at| taken.contains(&(&*id, at)));
            if let Some((key, _)) = self.timers.remove(&id) {
                // A record listed twice: the last one stands.
                self.changes.timers.remove(&key);
            }
            let timer = self.make_timer(rec, schedule);
            let key = self.timers.insert(timer);
            self.push_occurrence(key);
        }
        for run in runs {
            if let Some(timer) = self.timers.get_mut(run.timer_id.as_str()) {
                match run.phase {
                    RunPhase::Running => timer.running += 1,
                    RunPhase::RetryWait => timer.retrying += 1,
                    RunPhase::Due => {}
                }
                if !run.manual {
                    timer.scheduled_runs += 1;
                    // A `delay` timer plans its next occurrence when its run is over, never
                    // while one is in flight (a record written otherwise would start a second
                    // chain of runs).
                    if timer.policy.overlap == Overlap::Delay && !timer.schedule().is_one_shot() {
                        timer.coalesced = None;
                        timer.set_next(None, None);
                    }
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
        self.timers.key(id).is_some()
    }

    /// The timer's slot: stable while the timer exists, reused for another timer after it is
    /// removed. Lets the runtime keep per-timer data in a table indexed by slot instead of a map
    /// keyed by name.
    pub fn key(&self, id: &str) -> Option<TimerKey> {
        self.timers.key(id)
    }

    /// The timer's current definition.
    pub fn definition(&self, id: &str) -> Option<TimerDef> {
        self.timers.get(id).map(Timer::def)
    }

    pub fn timer_ids(&self) -> impl Iterator<Item = &str> {
        self.timers.iter().map(|(_, t)| t.id.as_str())
    }

    /// Timers held.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
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

    /// Everything changed since the last call, for one durable commit, in a canonical order:
    /// events in the order they happened, timer rows by name, run rows by id. Two engines that
    /// applied the same inputs to the same state give equal `Changes`, whatever their memory
    /// layout (the pending sets are hashed).
    pub fn take_changes(&mut self) -> Changes {
        let pending = std::mem::take(&mut self.changes);
        self.changes.reserve_like(&pending);
        // Sized exactly: a step's collections are large in a burst or a batch of registrations,
        // and growing them by doubling leaves the allocator holes (measured in memory per timer).
        let mut timers = Vec::with_capacity(pending.defs.len());
        let mut timer_states =
            Vec::with_capacity(pending.timers.len().saturating_sub(pending.defs.len()));
        for key in &pending.timers {
            if let Some(t) = self.timers.at(*key) {
                if pending.defs.contains(key) {
                    timers.push(t.record());
                } else {
                    timer_states.push(t.record());
                }
            }
        }
        let created = pending.runs.values().filter(|new| **new).count();
        let mut new_runs = Vec::with_capacity(created);
        let mut runs = Vec::with_capacity(pending.runs.len() - created);
        for (id, new) in &pending.runs {
            if let Some(run) = self.runs.get(id) {
                if *new {
                    new_runs.push(run.clone());
                } else {
                    runs.push(run.clone());
                }
            }
        }
        timers.sort_unstable_by(|a, b| a.def.id.cmp(&b.def.id));
        timer_states.sort_unstable_by(|a, b| a.def.id.cmp(&b.def.id));
        // Ids of runs made by the engine order like their sort keys: compare two integers, not
        // two strings, per step (a burst sorts thousands).
        new_runs.sort_by_cached_key(|r| (r.run_id.sort_key(), r.run_id.clone()));
        runs.sort_by_cached_key(|r| (r.run_id.sort_key(), r.run_id.clone()));
        let mut removed_timers: Vec<String> = pending.removed_timers.into_iter().collect();
        removed_timers.sort_unstable();
        let mut finished_runs = pending.finished_runs;
        finished_runs.sort_by_cached_key(|id| (id.sort_key(), id.clone()));
        Changes {
            events: pending.events,
            timers,
            timer_states,
            removed_timers,
            new_runs,
            runs,
            finished_runs,
        }
    }

    /// The earliest instant at which [`Engine::poll`] has something to do, ignoring runs that wait
    /// for a free worker (`workers_free` false: the runtime waits for a completion instead).
    pub fn next_wakeup(&self, workers_free: bool) -> Option<EpochMs> {
        let queued = self.occurrences.peek().map(|Reverse((at, _))| *at);
        let staged = self.staged.front().map(|(at, _)| *at);
        let occurrence = match (queued, staged) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|at| at.saturating_sub(self.config.lookahead_ms));
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
        if let Some(key) = self.timers.key(id) {
            self.touch_key(key, now);
        }
    }

    fn touch_key(&mut self, key: TimerKey, now: EpochMs) {
        if let Some(timer) = self.timers.at_mut(key) {
            timer.updated_at = now;
            self.changes.timers.insert(key);
        }
    }

    /// Marks the timer's definition as changed (and its row as touched).
    fn touch_def(&mut self, key: TimerKey, now: EpochMs) {
        self.touch_key(key, now);
        self.changes.defs.insert(key);
    }

    fn touch_run(&mut self, id: &RunId) {
        if !self.changes.runs.contains_key(id) {
            self.changes.runs.insert(id.clone(), false);
        }
    }

    /// A run created now: its row is inserted with the next commit.
    fn touch_new_run(&mut self, id: &RunId) {
        self.changes.runs.insert(id.clone(), true);
    }

    fn drop_run(&mut self, id: &RunId) -> Option<RunRecord> {
        let run = self.runs.remove(id)?;
        self.end_lease(id);
        if !self.claimable.is_empty() {
            self.claimable
                .remove(&(run.fire_at, run.run_id.sort_key(), run.run_id.clone()));
        }
        // A run created since the last take has no row to delete.
        if self.changes.runs.remove(id) != Some(true) {
            self.changes.finished_runs.push(id.clone());
        }
        Some(run)
    }

    /// (Re)queues the timer's next occurrence. Entries queued before for another instant become
    /// stale.
    fn push_occurrence(&mut self, key: TimerKey) {
        if let Some(at) = self.timers.at(key).and_then(Timer::next_fire_at) {
            self.occurrences.push(Reverse((at, key)));
        }
    }

    /// Sets the timer's next occurrence (nominal `scheduled`, jitter drawn here) and queues it.
    fn set_next(&mut self, key: TimerKey, scheduled: Option<EpochMs>) {
        self.set_next_not_before(key, scheduled, EpochMs::MIN);
    }

    /// [`Engine::set_next`], the fire time kept at or after `floor`: an occurrence planned when
    /// the previous one fires never fires before it, however large the jitter (a cron whose gaps
    /// are shorter than its jitter). Else its fire time could be in the past already, and the
    /// occurrence taken for one missed while no runtime was up.
    fn set_next_not_before(&mut self, key: TimerKey, scheduled: Option<EpochMs>, floor: EpochMs) {
        let Some(timer) = self.timers.at_mut(key) else {
            return;
        };
        let jitter = self.rng.below_or_eq(timer.policy.jitter_ms) as i64;
        timer.set_next(
            scheduled,
            scheduled.map(|s| s.saturating_add(jitter).max(floor)),
        );
        self.push_occurrence(key);
    }

    /// Plans the timer's next occurrence from `now` after its schedule or overlap policy changed
    /// (or a pause let it pass). A recurring `delay` timer with a scheduled run in flight gets
    /// none: the run's end plans it (see `after_final`), so there is never a second chain of
    /// runs. `skip` and `allow` timers take the schedule's first occurrence after `now` at once.
    fn replan(&mut self, key: TimerKey, now: EpochMs) {
        let Some(timer) = self.timers.at_mut(key) else {
            return;
        };
        timer.coalesced = None;
        let waits_for_run = timer.policy.overlap == Overlap::Delay
            && timer.scheduled_runs > 0
            && !timer.schedule().is_one_shot();
        let next = if waits_for_run {
            None
        } else {
            timer.schedule().first(now)
        };
        self.set_next(key, next);
    }

    /// Rebuilds a queue from what is live once stale entries outnumber live ones. Commands push
    /// entries without removing the ones they make stale (repeated pause/resume, or schedule and
    /// remove, of one timer push one each), and a stale entry would otherwise stay until its
    /// instant comes up, however far ahead. Each rebuild costs as much as the pushes since the
    /// last one at least, so this is amortized O(1) per command; the run path (`poll`,
    /// `finish`) pops one entry for each it pushes and does not call it.
    fn bound_queues(&mut self) {
        if self.occurrences.len() > 2 * self.timers.len() + QUEUE_SLACK {
            let live: Vec<_> = self
                .timers
                .iter()
                .filter(|(_, t)| t.lifecycle == Lifecycle::Active)
                .filter_map(|(key, t)| t.next_fire_at().map(|at| Reverse((at, key))))
                .collect();
            self.occurrences = BinaryHeap::from(live);
            // Every live occurrence is queued again, the staged ones included.
            self.staged.clear();
        }
        if self.waiting.len() > 2 * self.runs.len() + QUEUE_SLACK {
            // The current entries stay, once each; runs held out of the queue (a pause, a
            // missing function, a `delay` rule) stay out until what holds them releases them.
            // Queueing them again here would make when a held run is looked at again depend on
            // when the queue grew too large: an engine restored from a snapshot, whose queue
            // has no stale entries, would decide otherwise.
            let runs = &self.runs;
            let mut seen: HashSet<RunId> = HashSet::default();
            let live: Vec<_> = std::mem::take(&mut self.waiting)
                .into_vec()
                .into_iter()
                .filter(|Reverse((at, _, id))| {
                    runs.get(id)
                        .is_some_and(|r| r.phase != RunPhase::Running && r.fire_at == *at)
                        && seen.insert(id.clone())
                })
                .collect();
            self.waiting = BinaryHeap::from(live);
        }
    }

    /// The run's attempt is over or undone: its lease, if a worker held one, with it.
    fn end_lease(&mut self, id: &RunId) {
        if !self.leases.is_empty() {
            self.leases.remove(id);
        }
    }

    fn new_run_id(&mut self, now: EpochMs) -> RunId {
        self.ids.next(now, &mut self.rng)
    }
}
