//! The scheduler thread: decides each engine step (what becomes due, which attempts start) and
//! hands it to the committer thread, which makes it durable and only then starts the attempts;
//! then sleeps until the next due instant or until something changes. While the committer
//! writes one step the scheduler decides the next, so a burst is paced by the slower of the two,
//! not by their sum.

use kron_core::input::Input;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use kron_core::changes::Changes;
use kron_core::engine::Outcome;
use kron_store::Store;

use crate::clock::Clock;
use crate::committer::{Committer, Step};
use crate::host::{Host, Job};
use crate::pool::Pool;
use crate::retention::RetentionPolicy;
use crate::shared::Shared;

/// Longest single sleep. The runtime sleeps until the next due instant; this bound only limits how
/// long a wall-clock jump (NTP step, suspend) can go unnoticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Runs started (and occurrences made due) by the first engine step after a quiet moment. Small,
/// so the commit that must precede the first callback of a burst takes well under a millisecond;
/// each full step doubles it, up to the engine's `max_batch`, so a long burst is still committed
/// in large groups. Look-ahead steps (nothing due yet) stay this small too, so the committer is
/// never in the middle of a long commit when the instant arrives.
const FIRST_BATCH: usize = 32;

pub(crate) struct Scheduler<C, H> {
    pub shared: Arc<Shared<C>>,
    pub store: Store,
    pub pool: Pool<C>,
    pub host: Arc<H>,
    pub clock: Arc<dyn Clock>,
    /// Most attempts in flight at once (handed to workers, not yet reported).
    pub capacity: usize,
    pub retention: Option<RetentionPolicy>,
}

/// The deciding half, on the scheduler thread.
struct Decider<C> {
    shared: Arc<Shared<C>>,
    clock: Arc<dyn Clock>,
    capacity: usize,
}

impl<C: Clone + Send + Sync + 'static, H: Host<C>> Scheduler<C, H> {
    /// Starts the committer thread, then the scheduler thread. Joining the returned thread joins
    /// both: the runtime has stopped and the store is closed.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        // Capacity 1: the scheduler runs at most one step ahead of storage.
        let (steps, received) = crossbeam_channel::bounded::<Step<C>>(1);
        let (spent, spent_received) = crossbeam_channel::unbounded::<Changes>();
        let committer = Committer {
            spent,
            shared: self.shared.clone(),
            store: self.store,
            pool: self.pool,
            host: self.host,
            clock: self.clock.clone(),
            retention: self.retention,
        };
        let committer = std::thread::Builder::new()
            .name("kron-committer".to_string())
            .spawn(move || committer.run(received))?;
        let decider = Decider {
            shared: self.shared,
            clock: self.clock,
            capacity: self.capacity,
        };
        // If this spawn fails the sender is dropped with the closure: the committer commits
        // what it has, closes the store and exits.
        std::thread::Builder::new()
            .name("kron-scheduler".to_string())
            .spawn(move || {
                decider.run(&steps, &spent_received);
                drop(steps);
                // The committer only panics on a bug; shutdown must still complete.
                let _ = committer.join();
            })
    }
}

impl<C: Clone + Send + 'static> Decider<C> {
    fn run(&self, steps: &Sender<Step<C>>, spent: &Receiver<Changes>) {
        let mut batch = FIRST_BATCH;
        loop {
            // Freed here, by the thread that allocated them, and off the committer's path.
            for changes in spent.try_iter() {
                drop(changes);
            }
            let now = self.clock.now_ms();
            let mut core = self.shared.lock();
            let stopping = core.stop;
            let mut jobs = Vec::new();
            // While a commit is failing nothing new is decided: its attempts could not start.
            if core.accepting && !stopping && !core.commit_failing {
                let free = self.capacity.saturating_sub(core.in_flight);
                let tick = Input::Tick {
                    at: now,
                    capacity: u32::try_from(free).unwrap_or(u32::MAX),
                    batch: u32::try_from(batch).unwrap_or(u32::MAX),
                };
                let dispatches = core.engine.apply_fact(tick).into_dispatched();
                // Slow start: a step that filled its batch is followed by one twice as large; a
                // step held back by busy workers keeps its size (the burst is not over: the next
                // step takes as many as have finished); any other step (caught up, look-ahead
                // only) is followed by a small one again. Resetting on busy workers made a long
                // burst commit in steps of 32, 64, ... again and again: measured ~10% fewer
                // runs/s in a burst of 50k.
                batch = if dispatches.len() >= batch {
                    batch.saturating_mul(2)
                } else if free < batch && dispatches.len() >= free {
                    batch
                } else {
                    FIRST_BATCH
                };
                jobs.reserve_exact(dispatches.len());
                for dispatch in dispatches {
                    match core.callbacks.get(dispatch.timer) {
                        Some(callback) => jobs.push(Job {
                            callback: callback.clone(),
                            dispatch,
                        }),
                        None => {
                            let error = "no function is registered for this timer".to_string();
                            core.engine.apply_fact(Input::Finish {
                                at: now,
                                run: dispatch.run_id.clone(),
                                outcome: Outcome::Failed {
                                    error,
                                    duration_ms: 0,
                                },
                            });
                        }
                    }
                }
                core.in_flight += jobs.len();
            }
            let changes = core.engine.take_changes();
            if !changes.is_empty() {
                core.taken_gen += 1;
            }
            if stopping {
                // Outcomes reported from now on are not recorded (see `SchedulerState::closed`).
                core.closed = true;
            }
            let taken = core.taken_gen;
            let next_due = core.engine.next_wakeup(true);
            drop(core);

            if !changes.is_empty() || !jobs.is_empty() {
                let step = Step {
                    changes,
                    jobs,
                    taken,
                    next_due,
                };
                // Blocks while the committer is busy with the step before: back-pressure. It
                // fails only if the committer is gone (it panicked): nothing can be made durable.
                if steps.send(step).is_err() {
                    break;
                }
            }
            if stopping {
                break;
            }
            self.sleep(spent);
        }
    }

    /// Sleeps until the next due instant or a notification. Not while committed changes wait to
    /// be freed: the committer sends them before it takes the lock to publish its commit (and
    /// wakes this thread after), so checking under the lock misses none.
    fn sleep(&self, spent: &Receiver<Changes>) {
        let core = self.shared.lock();
        if core.stop || core.engine.has_changes() || !spent.is_empty() {
            return;
        }
        let free = core.in_flight < self.capacity;
        // While a commit is failing nothing new is decided: only a notification (the commit
        // went through, a registration, shutdown) can give this loop work.
        let next = if core.commit_failing {
            None
        } else {
            core.engine.next_wakeup(free && core.accepting)
        };
        let wait = match next {
            Some(at) => {
                let micros = at
                    .saturating_mul(1_000)
                    .saturating_sub(self.clock.now_micros());
                if micros <= 0 {
                    return;
                }
                Duration::from_micros(micros as u64).min(MAX_SLEEP)
            }
            None => MAX_SLEEP,
        };
        drop(self.shared.wait_wake(core, wait));
    }
}
