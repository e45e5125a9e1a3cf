//! Deterministic snapshots: everything that drives an engine's future decisions, as bytes.
//!
//! A replicated node that installs a snapshot must go on exactly like one that applied every
//! input since the beginning: same jitter draws, same run ids, same order of occurrences due at
//! one instant, same catch-up. So the snapshot holds, beside every timer and run in flight, the
//! random generator's state, the run-id generator's, `recovered_at`, and the in-memory flags of
//! each timer (coalesced occurrences, runs in flight, no function registered, runs held), and
//! which waiting runs are out of the start queue until a command releases them. Queues are not in it:
//! they are rebuilt from the timers and runs, and their order depends on instants and names
//! only (see `Engine::stage_due`). Timers are listed by name and runs by id, so two engines in
//! the same state give the same bytes.
//!
//! Not in it: changes not yet taken ([`Engine::take_changes`]): they belong to the inputs
//! already applied, and are the applier's to commit before it snapshots.

use std::cmp::Reverse;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Engine, EngineConfig, Lease};
use crate::error::CoreError;
use crate::rng::Rng;
use crate::run::{RunId, RunIdGen, RunPhase, RunRecord};
use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::TimerRecord;

/// The version of the snapshot format written by this release.
pub const SNAPSHOT_VERSION: u32 = 1;

/// The serialized form of an engine (JSON). Field order is the byte order: do not reorder.
#[derive(Debug, Serialize, Deserialize)]
struct EngineImage {
    #[serde(rename = "v")]
    version: u32,
    config: EngineConfig,
    rng: Rng,
    run_ids: RunIdGen,
    recovered_at: Option<EpochMs>,
    timers: Vec<TimerImage>,
    runs: Vec<RunRecord>,
    /// Runs waiting (not running) that are out of the start queue: held by a pause, an
    /// orphaning, a missing function or a `delay` rule, until the command that releases them
    /// queues them again, or parked for workers. By id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    held_runs: Vec<RunId>,
    /// Task timers' runs parked for workers to claim, by id (entries left for runs whose timer
    /// is no longer a task timer are not: a claim drops them unseen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    claimable_runs: Vec<RunId>,
    /// Leases of claimed runs, by run id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leases: Vec<(RunId, Lease)>,
    /// The highest fencing token used so far.
    #[serde(default)]
    last_token: u64,
}

/// A timer as held in memory: its durable record and the flags only memory holds.
#[derive(Debug, Serialize, Deserialize)]
struct TimerImage {
    record: TimerRecord,
    /// Catch-up "once": the pending occurrence stands for this many missed ones, up to `.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    coalesced: Option<(u64, EpochMs)>,
    /// Its runs in flight by phase. Not derived from the runs listed: a run in progress of a
    /// removed timer finishes after a timer of the same name was created again, and counts
    /// for neither.
    running: u32,
    retrying: u32,
    scheduled_runs: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unregistered: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    held: bool,
}

/// An engine's state copied for a snapshot, not yet in its canonical order: see
/// [`Engine::snapshot_copy`].
#[derive(Debug)]
pub struct SnapshotCopy {
    image: EngineImage,
    /// The runs `held_runs` lists, listed in the order of the runs once sorted.
    held: HashSet<RunId>,
}

impl SnapshotCopy {
    /// The bytes of [`Engine::snapshot`]: timers by name, runs by id.
    pub fn encode(self) -> Vec<u8> {
        let SnapshotCopy { mut image, held } = self;
        image
            .timers
            .sort_unstable_by(|a, b| a.record.def.id.cmp(&b.record.def.id));
        image
            .runs
            .sort_by_cached_key(|r| (r.run_id.sort_key(), r.run_id.clone()));
        image.held_runs = image
            .runs
            .iter()
            .filter(|r| held.contains(&r.run_id))
            .map(|r| r.run_id.clone())
            .collect();
        image
            .claimable_runs
            .sort_by_cached_key(|id| (id.sort_key(), id.clone()));
        // Plain data with string keys: serializing into a vector cannot fail.
        serde_json::to_vec(&image).unwrap_or_default()
    }
}

impl Engine {
    /// Every timer's and every run's durable record (timers by name, runs by id): what a store
    /// must hold for this state, e.g. after a replica installed a snapshot.
    pub fn records(&self) -> (Vec<TimerRecord>, Vec<RunRecord>) {
        let mut timers: Vec<TimerRecord> = self.timers.iter().map(|(_, t)| t.record()).collect();
        timers.sort_unstable_by(|a, b| a.def.id.cmp(&b.def.id));
        let mut runs: Vec<RunRecord> = self.runs.values().cloned().collect();
        runs.sort_by_cached_key(|r| (r.run_id.sort_key(), r.run_id.clone()));
        (timers, runs)
    }

    /// Everything that drives this engine's future decisions, as bytes: equal for equal states.
    /// See the module documentation.
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_copy().encode()
    }

    /// The copy [`Engine::snapshot`] is made of. Taking it clones every timer and run, which
    /// needs the engine; sorting and serializing it ([`SnapshotCopy::encode`]) does not, so a
    /// caller that holds the engine under a lock others wait on (a replicated node, whose
    /// entries wait to be applied) takes the copy under the lock and encodes it after.
    pub fn snapshot_copy(&self) -> SnapshotCopy {
        let timers: Vec<TimerImage> = self
            .timers
            .iter()
            .map(|(_, t)| TimerImage {
                record: t.record(),
                coalesced: t.coalesced.as_deref().copied(),
                running: t.running,
                retrying: t.retrying,
                scheduled_runs: t.scheduled_runs,
                unregistered: t.unregistered,
                held: t.held,
            })
            .collect();
        let runs: Vec<RunRecord> = self.runs.values().cloned().collect();
        let queued: HashSet<&RunId> = self
            .waiting
            .iter()
            .filter(|Reverse((at, _, id))| {
                self.runs
                    .get(id)
                    .is_some_and(|r| r.phase != RunPhase::Running && r.fire_at == *at)
            })
            .map(|Reverse((_, _, id))| id)
            .collect();
        let held: HashSet<RunId> = runs
            .iter()
            .filter(|r| r.phase != RunPhase::Running && !queued.contains(&r.run_id))
            .map(|r| r.run_id.clone())
            .collect();
        let claimable: Vec<RunId> = self
            .claimable
            .iter()
            .filter(|(at, _, id)| {
                self.runs.get(id).is_some_and(|r| {
                    r.phase != RunPhase::Running
                        && r.fire_at == *at
                        && self
                            .timers
                            .get(&r.timer_id)
                            .is_some_and(|t| t.policy.task.is_some())
                })
            })
            .map(|(_, _, id)| id.clone())
            .collect::<HashSet<RunId>>()
            .into_iter()
            .collect();
        let leases = self
            .leases
            .iter()
            .map(|(run, lease)| (run.clone(), lease.clone()))
            .collect();
        SnapshotCopy {
            image: EngineImage {
                version: SNAPSHOT_VERSION,
                config: self.config.clone(),
                rng: self.rng.clone(),
                run_ids: self.ids.clone(),
                recovered_at: self.recovered_at,
                timers,
                runs,
                held_runs: Vec::new(),
                claimable_runs: claimable,
                leases,
                last_token: self.last_token,
            },
            held,
        }
    }

    /// The engine a [`Engine::snapshot`] was taken of: it decides exactly as that engine would
    /// have from the same point.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Engine, CoreError> {
        let bad = |reason: String| CoreError::invalid("snapshot", preview(bytes), reason);
        let image: EngineImage = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if image.version == 0 || image.version > SNAPSHOT_VERSION {
            return Err(bad(format!(
                "version {} is not readable by this release (reads 1 to {SNAPSHOT_VERSION})",
                image.version
            )));
        }
        let mut engine = Engine::new(image.config, 0);
        engine.rng = image.rng;
        engine.ids = image.run_ids;
        engine.recovered_at = image.recovered_at;
        for image in image.timers {
            let schedule = Schedule::from_spec(image.record.def.schedule.clone())?;
            if engine.timers.key(&image.record.def.id).is_some() {
                return Err(bad(format!(
                    "timer {:?} is listed twice",
                    image.record.def.id
                )));
            }
            let mut timer = engine.make_timer(image.record, schedule);
            timer.coalesced = image.coalesced.map(Box::new);
            timer.unregistered = image.unregistered;
            timer.held = image.held;
            timer.running = image.running;
            timer.retrying = image.retrying;
            timer.scheduled_runs = image.scheduled_runs;
            let key = engine.timers.insert(timer);
            engine.push_occurrence(key);
        }
        let held: HashSet<RunId> = image.held_runs.into_iter().collect();
        let parked: HashSet<RunId> = image.claimable_runs.into_iter().collect();
        engine.last_token = image.last_token;
        engine.leases = image.leases.into_iter().collect();
        for run in image.runs {
            // A run may be both parked and queued (its timer became a task timer again while
            // it was queued): it is restored to both.
            if parked.contains(&run.run_id) {
                engine.park(run.fire_at, run.run_id.clone());
            }
            if run.phase != RunPhase::Running && !held.contains(&run.run_id) {
                engine.queue_run(run.fire_at, run.run_id.clone());
            }
            engine.runs.insert(run.run_id.clone(), run);
        }
        Ok(engine)
    }
}

/// The start of an unreadable snapshot, for its error message.
fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}
