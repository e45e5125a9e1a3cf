//! The committer thread: makes each engine step durable, then acts on it (hands its attempts to
//! the workers). It is the only writer to storage; the scheduler thread decides the next step
//! while this one commits the last, so deciding and writing overlap.

use kron_core::input::Input;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use kron_core::changes::Changes;
use kron_store::Store;

use crate::clock::Clock;
use crate::host::{Host, Job, LogLevel};
use crate::pool::Pool;
use crate::retention::{RetentionPolicy, RetentionThread, Signals};
use crate::shared::{SchedulerState, Shared};

/// Delay before retrying a failed commit (disk full, I/O error).
const COMMIT_RETRY_MS: i64 = 1_000;
/// Ask for a WAL checkpoint after this many committed events (a few MiB of WAL)... A
/// checkpoint copies the latest version of every page written since the last one, so asking
/// less often copies the pages a burst rewrites in every commit (index, timer state) fewer
/// times: measured ~5% more runs/s in a burst of 50k than at 2,000 events.
const CHECKPOINT_EVERY_EVENTS: usize = 20_000;
/// ...or this many commits.
const CHECKPOINT_EVERY_COMMITS: usize = 32;
/// Finishing a background checkpoint (see `Store::finish_checkpoint`) copies and syncs on the
/// commit path, which takes milliseconds; it waits for a moment with no step waiting and
/// nothing due for this long...
const QUIET_MS: i64 = 100;
/// ...unless the log has grown past this many bytes...
const LOG_BOUND_BYTES: i64 = 16 * 1024 * 1024;
/// ...or past this fraction (1/n) of the space left on the disk.
const LOG_SHARE_OF_FREE_SPACE: u64 = 4;
/// SQLite's page size (the default, which Kron does not change): a WAL frame holds one page.
const PAGE_BYTES: i64 = 4096;
/// When to ask the checkpoint thread for a checkpoint: after so many events or commits.
#[derive(Default)]
struct CheckpointPacing {
    events: usize,
    commits: usize,
}

impl CheckpointPacing {
    /// A transaction that wrote (or deleted) `events` events committed.
    fn wrote(&mut self, events: usize, checkpoints: Option<&Checkpoints>) {
        self.events = self.events.saturating_add(events);
        self.commits += 1;
        if self.events >= CHECKPOINT_EVERY_EVENTS || self.commits >= CHECKPOINT_EVERY_COMMITS {
            if let Some(checkpoints) = checkpoints {
                let _ = checkpoints.request.try_send(());
            }
            *self = CheckpointPacing::default();
        }
    }
}

/// One engine step, decided by the scheduler thread, to be made durable and then acted on.
pub(crate) struct Step<C> {
    pub changes: Changes,
    /// Attempts whose `RUN_STARTED` is in `changes`: invoked only once that is durable.
    pub jobs: Vec<Job<C>>,
    /// `SchedulerState::taken_gen` once `changes` were taken.
    pub taken: u64,
    /// When the scheduler next has work (`None`: nothing scheduled), as of this step.
    pub next_due: Option<i64>,
}

pub(crate) struct Committer<C, H> {
    /// Committed changes go back to the scheduler thread to be freed: the committer paces a
    /// burst, and freeing a step's thousands of rows cost it ~3% of its time (more in
    /// allocator locks: they were allocated on the scheduler thread).
    pub spent: crossbeam_channel::Sender<Changes>,
    pub shared: Arc<Shared<C>>,
    pub store: Store,
    pub pool: Pool<C>,
    pub host: Arc<H>,
    pub clock: Arc<dyn Clock>,
    pub retention: Option<RetentionPolicy>,
}

/// The checkpoint thread, as the committer sees it.
struct Checkpoints {
    /// Asks for a checkpoint. Capacity 1: requests made while one runs coalesce into the next.
    request: SyncSender<()>,
    /// Set by the thread after each checkpoint it completed, for the committer to finish it.
    done: Arc<AtomicBool>,
    /// Pages in the log at the thread's last checkpoint.
    wal_pages: Arc<AtomicI64>,
    thread: JoinHandle<()>,
}

/// What is waiting to be committed: changes merged in order, with the attempts they start.
struct Pending<C> {
    changes: Changes,
    jobs: Vec<Job<C>>,
    taken: u64,
}

impl<C> Default for Pending<C> {
    fn default() -> Self {
        Pending {
            changes: Changes::default(),
            jobs: Vec::new(),
            taken: 0,
        }
    }
}

impl<C> Pending<C> {
    fn add(&mut self, step: Step<C>) {
        self.changes.merge(step.changes);
        self.jobs.extend(step.jobs);
        self.taken = self.taken.max(step.taken);
    }
}

impl<C: Clone + Send + Sync + 'static, H: Host<C>> Committer<C, H> {
    /// Commits the steps the scheduler sends until it hangs up (after its last step), then
    /// closes the pool's queue and, when dropped, the store.
    pub fn run(mut self, steps: Receiver<Step<C>>) {
        let checkpoints = self.start_checkpointer();
        let retention = self.start_retention(checkpoints.as_ref());
        let signals = retention.as_ref().map(|(_, signals)| signals.clone());
        self.run_loop(&steps, checkpoints.as_ref(), signals.as_deref());
        self.commit_last_changes();
        // The retention and checkpoint connections must be closed before the store closes.
        if let Some((thread, _)) = retention {
            thread.stop();
        }
        if let Some(Checkpoints {
            request, thread, ..
        }) = checkpoints
        {
            drop(request);
            let _ = thread.join();
        }
        self.pool.close();
    }

    /// Batches for the workers from attempts whose `RUN_STARTED` is now durable, registered so
    /// that shutdown can cancel them. Once shutdown began none is handed out: each is recorded
    /// as not started (see `Engine::not_started`) instead, so no callback begins after it.
    fn hand_out(
        &self,
        core: &mut SchedulerState<C>,
        jobs: Vec<Job<C>>,
        now: i64,
    ) -> Vec<Arc<crate::batch::Batch<C>>> {
        if jobs.is_empty() {
            return Vec::new();
        }
        if core.accepting {
            return self.pool.batches(&mut core.dispatched, jobs);
        }
        core.in_flight = core.in_flight.saturating_sub(jobs.len());
        for job in &jobs {
            let run = job.dispatch.run_id.clone();
            core.engine.apply_fact(Input::NotStarted { at: now, run });
        }
        Vec::new()
    }

    /// Commits what was decided after the scheduler's last step: attempts of that step recorded
    /// as not started because shutdown had begun (see `hand_out`).
    fn commit_last_changes(&mut self) {
        let changes = self.shared.lock().engine.take_changes();
        if changes.is_empty() {
            return;
        }
        if let Err(err) = self.store.commit(&changes) {
            // Not durable: the next start finds those attempts running and records them as
            // interrupted.
            self.host.log(
                LogLevel::Error,
                &format!("could not write to storage at shutdown: {err}"),
            );
        }
    }

    /// Starts the retention thread when there is a history limit (see `retention.rs`). Without
    /// it (the second connection or the thread could not be had) history is not trimmed while
    /// running, which the log says.
    fn start_retention(
        &mut self,
        checkpoints: Option<&Checkpoints>,
    ) -> Option<(RetentionThread, Arc<Signals>)> {
        let policy = self.retention?;
        let failed = |err: &dyn std::fmt::Display| {
            format!(
                "history retention is off until the next start (history grows meanwhile): {err}"
            )
        };
        let retainer = match self.store.retainer(policy.keep_runs) {
            Ok(retainer) => retainer,
            Err(err) => {
                self.host.log(LogLevel::Warning, &failed(&err));
                return None;
            }
        };
        let signals = Arc::new(Signals::default());
        match RetentionThread::spawn(
            retainer,
            policy,
            signals.clone(),
            self.clock.clone(),
            self.host.clone(),
            checkpoints.map(|c| c.request.clone()),
        ) {
            Ok(thread) => Some((thread, signals)),
            Err(err) => {
                self.host.log(LogLevel::Warning, &failed(&err));
                None
            }
        }
    }

    /// Moves WAL checkpoints to a thread of their own, so no commit pays for one. Without it
    /// (the second connection could not be opened) SQLite checkpoints inside commits, as usual.
    fn start_checkpointer(&mut self) -> Option<Checkpoints> {
        let checkpointer = match self.store.checkpointer() {
            Ok(c) => c,
            Err(err) => {
                self.host.log(
                    LogLevel::Warning,
                    &format!("checkpoints stay on the writer: {err}"),
                );
                return None;
            }
        };
        let (request, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let done = Arc::new(AtomicBool::new(false));
        let done_by_thread = done.clone();
        let wal_pages = Arc::new(AtomicI64::new(0));
        let wal_pages_by_thread = wal_pages.clone();
        let host = self.host.clone();
        let spawned = std::thread::Builder::new()
            .name("kron-checkpoint".to_string())
            .spawn(move || {
                while rx.recv().is_ok() {
                    match checkpointer.checkpoint() {
                        Ok(report) => {
                            wal_pages_by_thread.store(report.wal_pages, Ordering::Relaxed);
                            done_by_thread.store(true, Ordering::Release);
                        }
                        Err(err) => host.log(
                            LogLevel::Warning,
                            &format!("checkpoint failed (will retry): {err}"),
                        ),
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(Checkpoints {
                request,
                done,
                wal_pages,
                thread,
            }),
            Err(err) => {
                self.host.log(
                    LogLevel::Warning,
                    &format!("checkpoints stay on the writer: {err}"),
                );
                None
            }
        }
    }

    fn run_loop(
        &mut self,
        steps: &Receiver<Step<C>>,
        checkpoints: Option<&Checkpoints>,
        retention: Option<&Signals>,
    ) {
        // A failed commit is kept and retried together with later steps; its attempts are not
        // started until it is durable.
        let mut pending: Pending<C> = Pending::default();
        let mut retry_at: Option<i64> = None;
        let mut hung_up = false;
        let mut next_due: Option<i64> = None;
        // See `finish_checkpoint_when_due`.
        let mut finish_now: Option<(i64, bool)> = None;
        let mut pacing = CheckpointPacing::default();
        while !hung_up {
            // Wait for a step (or for the retry); then take every step already waiting, so that
            // whatever was decided during the last commit goes into one group commit.
            match self.wait(steps, retry_at) {
                Ok(step) => {
                    next_due = step.next_due;
                    pending.add(step);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => hung_up = true,
            }
            loop {
                match steps.try_recv() {
                    Ok(step) => {
                        next_due = step.next_due;
                        pending.add(step);
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        hung_up = true;
                        break;
                    }
                }
            }
            if let Some(signals) = retention {
                // Retention starts no transaction just before this instant.
                signals
                    .next_due
                    .store(next_due.unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            let now = self.clock.now_ms();
            let retry_due = retry_at.is_none_or(|at| now >= at);
            // The last step is tried once more even before its retry is due.
            if !pending.changes.is_empty() && (retry_due || hung_up) {
                if retry_at.is_some() {
                    // The last commit failed. On a full disk the log is often what fills it.
                    // A failure here only means the log could not be emptied yet: the commit
                    // below reports the state of storage.
                    let _ = self.store.reclaim_log();
                }
                match self.store.commit(&pending.changes) {
                    Ok(()) => {
                        retry_at = None;
                        let events = pending.changes.events.len();
                        if let Some(signals) = retention {
                            signals.events.fetch_add(events as u64, Ordering::Relaxed);
                        }
                        pacing.wrote(events, checkpoints);
                        let done = std::mem::take(&mut pending);
                        // The scheduler is woken below; if it has exited, freed here.
                        let _ = self.spent.send(done.changes);
                        let mut core = self.shared.lock();
                        let batches = self.hand_out(&mut core, done.jobs, now);
                        core.committed_gen = core.committed_gen.max(done.taken);
                        core.commit_failing = false;
                        if core.storage_error.take().is_some() {
                            self.host.log(
                                LogLevel::Warning,
                                "storage is writable again; pending changes were committed",
                            );
                        }
                        drop(core);
                        self.pool.submit(batches);
                        self.shared.notify();
                    }
                    Err(err) => {
                        let message = format!("could not write to storage, will retry: {err}");
                        self.host.log(LogLevel::Error, &message);
                        let mut core = self.shared.lock();
                        core.storage_error = Some(err.to_string());
                        // The scheduler decides nothing new until this is durable.
                        core.commit_failing = true;
                        drop(core);
                        retry_at = Some(now + COMMIT_RETRY_MS);
                    }
                }
            } else if pending.changes.is_empty() && !pending.jobs.is_empty() {
                // Nothing to write (cannot happen: attempts come with their RUN_STARTED), but
                // never hold attempts back for it.
                let mut core = self.shared.lock();
                let batches = self.hand_out(&mut core, std::mem::take(&mut pending.jobs), now);
                drop(core);
                self.pool.submit(batches);
                self.shared.notify();
            }
            if let Some(checkpoints) = checkpoints {
                let quiet = steps.is_empty()
                    && next_due.is_none_or(|at| at.saturating_sub(now) >= QUIET_MS);
                self.finish_checkpoint_when_due(checkpoints, quiet, &mut finish_now);
            }
            if hung_up {
                break;
            }
        }
    }

    /// Finishes the checkpoint thread's last checkpoint (see `Store::finish_checkpoint`) at a
    /// `quiet` moment, or at once when its log is too large to wait. Whether it is too large is
    /// decided once per checkpoint report (it reads the free disk space), not once per commit.
    fn finish_checkpoint_when_due(
        &mut self,
        checkpoints: &Checkpoints,
        quiet: bool,
        finish_now: &mut Option<(i64, bool)>,
    ) {
        if !checkpoints.done.load(Ordering::Acquire) {
            return;
        }
        let wal_pages = checkpoints.wal_pages.load(Ordering::Relaxed);
        let urgent = match *finish_now {
            Some((pages, urgent)) if pages == wal_pages => urgent,
            _ => {
                let urgent = self.log_too_large(wal_pages);
                *finish_now = Some((wal_pages, urgent));
                urgent
            }
        };
        if quiet || urgent {
            checkpoints.done.store(false, Ordering::Release);
            self.finish_checkpoint();
        }
    }

    /// The next step, waiting at most until the retry instant when a commit failed.
    fn wait(
        &self,
        steps: &Receiver<Step<C>>,
        retry_at: Option<i64>,
    ) -> Result<Step<C>, RecvTimeoutError> {
        match retry_at {
            None => steps.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => {
                let micros = at
                    .saturating_mul(1_000)
                    .saturating_sub(self.clock.now_micros());
                if micros <= 0 {
                    return Err(RecvTimeoutError::Timeout);
                }
                steps.recv_timeout(Duration::from_micros(micros as u64))
            }
        }
    }

    /// Whether the log must be finished now rather than at a quiet moment: a busy runtime never
    /// has one, and the log must not fill the disk meanwhile.
    fn log_too_large(&self, wal_pages: i64) -> bool {
        let bytes = wal_pages.saturating_mul(PAGE_BYTES);
        let share = self
            .store
            .available_bytes()
            .map_or(LOG_BOUND_BYTES, |free| {
                i64::try_from(free / LOG_SHARE_OF_FREE_SPACE).unwrap_or(i64::MAX)
            });
        bytes >= LOG_BOUND_BYTES.min(share)
    }

    /// Copies what was committed while the checkpoint thread worked, so that the next commit
    /// starts the log over instead of growing it (see `Store::finish_checkpoint`).
    fn finish_checkpoint(&mut self) {
        if let Err(err) = self.store.finish_checkpoint() {
            self.host.log(
                LogLevel::Warning,
                &format!("checkpoint failed (will retry): {err}"),
            );
        }
    }
}
