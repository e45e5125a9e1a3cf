//! The scheduler thread: decide (engine), make it durable (store), then act (pool); sleep until
//! the next due instant or until something changes. It is the only writer to storage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kron_core::changes::Changes;
use kron_core::engine::Outcome;
use kron_store::Store;

use crate::clock::Clock;
use crate::host::{Host, Job, LogLevel};
use crate::pool::Pool;
use crate::shared::Shared;

/// Longest single sleep. The runtime sleeps until the next due instant; this bound only limits how
/// long a wall-clock jump (NTP step, suspend) can go unnoticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Delay before retrying a failed commit (disk full, I/O error).
const COMMIT_RETRY_MS: i64 = 1_000;
/// Ask for a WAL checkpoint after this many committed events (about a few MiB of WAL)...
const CHECKPOINT_EVERY_EVENTS: usize = 2_000;
/// ...or this many commits.
const CHECKPOINT_EVERY_COMMITS: usize = 32;
/// With a history limit, retention runs after this many new events...
const COMPACT_EVERY_EVENTS: usize = 200_000;
/// ...or this long after the last retention, if anything was written since.
const COMPACT_EVERY_MS: i64 = 10 * 60 * 1_000;

/// The checkpoint thread, as the scheduler sees it.
struct Checkpoints {
    /// Asks for a checkpoint. Capacity 1: requests made while one runs coalesce into the next.
    request: SyncSender<()>,
    /// Set by the thread after each checkpoint it completed, for the writer to finish it.
    done: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub(crate) struct Scheduler<C, H> {
    pub shared: Arc<Shared<C>>,
    pub store: Store,
    pub pool: Pool<C>,
    pub host: Arc<H>,
    pub clock: Arc<dyn Clock>,
    /// Most attempts in flight at once (handed to workers, not yet reported).
    pub capacity: usize,
    pub history_limit: Option<usize>,
}

impl<C: Clone + Send + 'static, H: Host<C>> Scheduler<C, H> {
    pub fn run(mut self) {
        let checkpoints = self.start_checkpointer();
        self.run_loop(checkpoints.as_ref());
        // The checkpointer's connection must be closed before the store closes.
        if let Some(Checkpoints {
            request, thread, ..
        }) = checkpoints
        {
            drop(request);
            let _ = thread.join();
        }
        self.pool.close();
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
        let host = self.host.clone();
        let done_by_thread = done.clone();
        let spawned = std::thread::Builder::new()
            .name("kron-checkpoint".to_string())
            .spawn(move || {
                while rx.recv().is_ok() {
                    match checkpointer.checkpoint() {
                        Ok(_) => done_by_thread.store(true, Ordering::Release),
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

    fn run_loop(&mut self, checkpoints: Option<&Checkpoints>) {
        // A failed commit is kept and retried together with later changes; its decisions are not
        // acted on until it is durable.
        let mut unflushed: Option<Changes> = None;
        let mut held: Vec<Job<C>> = Vec::new();
        let mut retry_at: Option<i64> = None;
        let mut events_since_compact = 0usize;
        let (mut events_since_checkpoint, mut commits_since_checkpoint) = (0usize, 0usize);
        let mut last_compact = self.clock.now_ms();
        loop {
            let now = self.clock.now_ms();
            let retry_due = retry_at.is_none_or(|at| now >= at);
            let mut core = self.shared.lock();
            let stopping = core.stop;
            let mut jobs = Vec::new();
            if core.accepting && !stopping && unflushed.is_none() {
                let free = self.capacity.saturating_sub(core.in_flight);
                for dispatch in core.engine.poll(now, free) {
                    match core.callbacks.get(&dispatch.timer_id) {
                        Some(callback) => jobs.push(Job {
                            callback: callback.clone(),
                            dispatch,
                        }),
                        None => {
                            let error = "no function is registered for this timer".to_string();
                            core.engine.finish(
                                &dispatch.run_id,
                                Outcome::Failed {
                                    error,
                                    duration_ms: 0,
                                },
                                now,
                            );
                        }
                    }
                }
                core.in_flight += jobs.len();
            }
            let fresh = core.engine.take_changes();
            if !fresh.is_empty() {
                core.taken_gen += 1;
            }
            if stopping {
                core.closed = true;
            }
            let taken = core.taken_gen;
            drop(core);

            let mut batch = unflushed.take().unwrap_or_default();
            batch.merge(fresh);
            held.append(&mut jobs);
            if !batch.is_empty() && (retry_due || stopping) {
                if retry_at.is_some() {
                    // The last commit failed. On a full disk the log is often what fills it.
                    // A failure here only means the log could not be emptied yet: the commit
                    // below reports the state of storage.
                    let _ = self.store.reclaim_log();
                }
                match self.store.commit(&batch) {
                    Ok(()) => {
                        retry_at = None;
                        events_since_compact += batch.events.len();
                        events_since_checkpoint += batch.events.len();
                        commits_since_checkpoint += 1;
                        if events_since_checkpoint >= CHECKPOINT_EVERY_EVENTS
                            || commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS
                        {
                            if let Some(checkpoints) = checkpoints {
                                let _ = checkpoints.request.try_send(());
                            }
                            events_since_checkpoint = 0;
                            commits_since_checkpoint = 0;
                        }
                        let mut core = self.shared.lock();
                        core.committed_gen = taken;
                        if core.storage_error.take().is_some() {
                            self.host.log(
                                LogLevel::Warning,
                                "storage is writable again; pending changes were committed",
                            );
                        }
                        drop(core);
                        self.shared.notify();
                    }
                    Err(err) => {
                        let message = format!("could not write to storage, will retry: {err}");
                        self.host.log(LogLevel::Error, &message);
                        self.shared.lock().storage_error = Some(err.to_string());
                        retry_at = Some(now + COMMIT_RETRY_MS);
                        unflushed = Some(batch);
                    }
                }
            } else if !batch.is_empty() {
                unflushed = Some(batch);
            }
            if unflushed.is_none() && !held.is_empty() {
                self.pool.submit(std::mem::take(&mut held));
            }
            if let Some(checkpoints) = checkpoints {
                if checkpoints.done.swap(false, Ordering::Acquire) {
                    self.finish_checkpoint();
                }
            }
            if stopping {
                break;
            }
            let compact_due = events_since_compact >= COMPACT_EVERY_EVENTS
                || (events_since_compact > 0 && now - last_compact >= COMPACT_EVERY_MS);
            if let (Some(limit), true, None) = (self.history_limit, compact_due, &unflushed) {
                self.compact(limit);
                events_since_compact = 0;
                last_compact = self.clock.now_ms();
            }
            self.sleep(retry_at);
        }
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

    /// Applies the history limit. Runs on this thread (the store's only writer) between commits.
    fn compact(&mut self, keep_runs: usize) {
        match self.store.compact(Some(keep_runs), None) {
            Ok(report) if report.events_deleted > 0 => self.host.log(
                LogLevel::Info,
                &format!(
                    "history limit {keep_runs}: removed {} old events ({} -> {} bytes)",
                    report.events_deleted, report.bytes_before, report.bytes_after
                ),
            ),
            Ok(_) => {}
            Err(err) => self.host.log(
                LogLevel::Warning,
                &format!("history retention failed (will retry later): {err}"),
            ),
        }
    }

    /// Sleeps until the next due instant, a commit retry, or a notification.
    fn sleep(&self, retry_at: Option<i64>) {
        let core = self.shared.lock();
        if core.stop || core.engine.has_changes() {
            return;
        }
        let free = core.in_flight < self.capacity;
        // While a failed commit waits for its retry nothing new is decided, so only the retry
        // (or a notification) can give the loop work.
        let next = match retry_at {
            Some(at) => Some(at),
            None => core.engine.next_wakeup(free && core.accepting),
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
