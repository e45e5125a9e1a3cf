//! The retention thread: keeps each timer's latest N runs while the runtime runs, off the commit
//! path.
//!
//! It owns a [`Retainer`] (a second connection) and deletes in transactions of at most
//! [`STEP_ROWS`] events and about [`STEP_BUDGET`], each ended early as soon as a commit waits for
//! its turn (see `kron_store`'s `retainer.rs`), so a commit waits for one statement of it at
//! worst. A transaction about to begin just before a due instant waits for it
//! to pass (once: under timers due every few milliseconds it then goes ahead), rests between
//! transactions three times as long as the last one took (at most a quarter of a core), asks
//! for a checkpoint every 5,000 deleted events, and gives free pages back to the file system
//! only when nothing is due soon. The first pass begins at start, in the background: `start()`
//! does not wait for a large history to be trimmed.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use kron_store::Retainer;

use crate::clock::Clock;
use crate::host::{Host, LogLevel};

/// A pass runs after `RetentionPolicy::every_events` new events, or this long after the last
/// pass if anything was written since.
const PASS_EVERY: Duration = Duration::from_secs(10 * 60);
/// How often the thread looks whether a pass is due.
const POLL: Duration = Duration::from_secs(1);
/// Work of one retention transaction, at most.
const STEP_BUDGET: Duration = Duration::from_millis(2);
/// Events one retention transaction deletes, at most.
const STEP_ROWS: usize = 1_000;
/// Between transactions retention rests this many times as long as the last one took...
const REST_FACTOR: u32 = 3;
/// ...and at least this long.
const MIN_REST: Duration = Duration::from_millis(2);
/// A transaction about to begin this close to the next due instant waits for it to pass.
const DUE_GUARD_MS: i64 = 20;
/// Free pages go back to the file system only with nothing due for this long...
const VACUUM_IDLE_MS: i64 = 100;
/// ...in steps of this many pages (256 KiB)...
const VACUUM_STEP_PAGES: u32 = 64;
/// ...once more than this share (1/n) of the file is free, and more than this many pages: below
/// that, new events reuse them.
const VACUUM_FREE_SHARE: u64 = 4;
const VACUUM_MIN_FREE_PAGES: u64 = 1_024;
/// Ask for a WAL checkpoint after this many deleted events: deleting fills the log as writing
/// does.
const CHECKPOINT_EVERY_DELETED: u64 = 5_000;

/// Keep each timer's latest `keep_runs` runs, in a pass after every `every_events` new events
/// (or [`PASS_EVERY`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetentionPolicy {
    pub keep_runs: NonZeroUsize,
    pub every_events: usize,
}

/// What the committer tells the retention thread (plain atomics: one store per commit).
#[derive(Debug)]
pub(crate) struct Signals {
    /// Events committed since start.
    pub events: AtomicU64,
    /// The scheduler's next due instant (clock ms; `i64::MAX`: nothing scheduled).
    pub next_due: AtomicI64,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            events: AtomicU64::new(0),
            next_due: AtomicI64::new(i64::MAX),
        }
    }
}

/// The running thread. Dropping `stop` (by [`RetentionThread::stop`]) ends it at the next
/// transaction boundary.
pub(crate) struct RetentionThread {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl RetentionThread {
    pub(crate) fn spawn<C: 'static, H: Host<C>>(
        retainer: Retainer,
        policy: RetentionPolicy,
        signals: Arc<Signals>,
        clock: Arc<dyn Clock>,
        host: Arc<H>,
        checkpoint: Option<SyncSender<()>>,
    ) -> std::io::Result<RetentionThread> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let mut worker = Worker {
            retainer,
            policy,
            signals,
            clock,
            stopped,
            checkpoint,
            deleted_since_checkpoint: 0,
        };
        let thread = std::thread::Builder::new()
            .name("kron-retention".to_string())
            .spawn(move || worker.run(&|level, message| Host::<C>::log(&*host, level, message)))?;
        Ok(RetentionThread { stop, thread })
    }

    /// Stops the thread and waits for it (at most one transaction): its connection must be
    /// closed before the store closes.
    pub(crate) fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

struct Worker {
    retainer: Retainer,
    policy: RetentionPolicy,
    signals: Arc<Signals>,
    clock: Arc<dyn Clock>,
    stopped: Receiver<()>,
    checkpoint: Option<SyncSender<()>>,
    deleted_since_checkpoint: u64,
}

impl Worker {
    fn run(&mut self, log: &dyn Fn(LogLevel, &str)) {
        let keep = self.retainer.keep();
        let mut last_events = 0u64;
        let mut last_pass = Instant::now();
        let mut first = true;
        loop {
            if !first {
                // Wait for the next pass.
                loop {
                    if !self.sleep(POLL) {
                        return;
                    }
                    let written = self
                        .signals
                        .events
                        .load(Ordering::Relaxed)
                        .saturating_sub(last_events);
                    let every = self.policy.every_events as u64;
                    if written >= every || (written > 0 && last_pass.elapsed() >= PASS_EVERY) {
                        break;
                    }
                }
            }
            first = false;
            last_events = self.signals.events.load(Ordering::Relaxed);
            last_pass = Instant::now();
            match self.pass() {
                Ok(Some(0)) => {}
                Ok(Some(deleted)) => log(
                    LogLevel::Info,
                    &format!("history limit {keep}: removed {deleted} old events"),
                ),
                Ok(None) => return,
                Err(err) => log(
                    LogLevel::Warning,
                    &format!("history retention failed (will retry later): {err}"),
                ),
            }
            if !self.vacuum() {
                return;
            }
        }
    }

    /// One pass over every timer, in small transactions. `None`: stopped meanwhile.
    fn pass(&mut self) -> Result<Option<u64>, kron_store::StoreError> {
        self.retainer.begin_pass();
        let mut deleted = 0u64;
        loop {
            if !self.clear_of_due() {
                return Ok(None);
            }
            let began = Instant::now();
            let step = self.retainer.step(STEP_BUDGET, STEP_ROWS)?;
            deleted += step.events_deleted;
            self.deleted(step.events_deleted);
            if step.pass_done {
                return Ok(Some(deleted));
            }
            // At most a quarter of a core: the committer, the scheduler and the workers share
            // the machine, and the log needs checkpoints to keep up with the deletes.
            if !self.sleep((began.elapsed() * REST_FACTOR).max(MIN_REST)) {
                return Ok(None);
            }
        }
    }

    /// Gives free pages back in small steps while nothing is due soon. False: stopped meanwhile.
    fn vacuum(&mut self) -> bool {
        let mut last_free = u64::MAX;
        loop {
            let Ok(pages) = self.retainer.page_counts() else {
                return true;
            };
            // A database created without incremental auto-vacuum (by an older Kron) frees
            // nothing this way: stop rather than try again and again.
            if pages.free >= last_free
                || pages.free <= VACUUM_MIN_FREE_PAGES
                || pages.free * VACUUM_FREE_SHARE <= pages.total
            {
                return true;
            }
            last_free = pages.free;
            let now = self.clock.now_ms();
            if self
                .signals
                .next_due
                .load(Ordering::Relaxed)
                .saturating_sub(now)
                < VACUUM_IDLE_MS
            {
                // Not idle: the pages are reused by new events, or given back after a later pass.
                return true;
            }
            let began = Instant::now();
            if self.retainer.vacuum_step(VACUUM_STEP_PAGES).is_err() {
                return true;
            }
            self.deleted(u64::from(VACUUM_STEP_PAGES));
            if !self.sleep(began.elapsed().max(Duration::from_millis(1))) {
                return false;
            }
        }
    }

    /// Waits for the next due instant to pass when it is near, once: under timers due every few
    /// milliseconds another is always near, and retention then goes ahead (a commit waits for
    /// one statement of it at most). False: stopped meanwhile.
    fn clear_of_due(&self) -> bool {
        let left = self
            .signals
            .next_due
            .load(Ordering::Relaxed)
            .saturating_sub(self.clock.now_ms());
        if left >= DUE_GUARD_MS {
            return true;
        }
        // Past the instant and a little more: its commit is usually done by then.
        let wait = u64::try_from(left.max(0)).unwrap_or(0) + 2;
        self.sleep(Duration::from_millis(wait))
    }

    /// Deleting (or vacuuming) dirties pages, which the log must hold until a checkpoint.
    fn deleted(&mut self, n: u64) {
        self.deleted_since_checkpoint += n;
        if self.deleted_since_checkpoint >= CHECKPOINT_EVERY_DELETED {
            self.deleted_since_checkpoint = 0;
            if let Some(checkpoint) = &self.checkpoint {
                let _ = checkpoint.try_send(());
            }
        }
    }

    /// Sleeps, waking at once when stopped. False: stopped.
    fn sleep(&self, how_long: Duration) -> bool {
        matches!(
            self.stopped.recv_timeout(how_long),
            Err(RecvTimeoutError::Timeout)
        )
    }
}
