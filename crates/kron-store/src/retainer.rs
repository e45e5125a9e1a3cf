//! History retention beside a running writer: a second connection that deletes old events in
//! short transactions, taking turns with the writer's commits.
//!
//! SQLite lets one connection write at a time. Left to SQLite, a commit that finds retention
//! writing would get `SQLITE_BUSY` and sleep in SQLite's busy handler, whose steps grow (1, 2,
//! 5, 10, 15, 20, 25 ... ms): a retention transaction of 3 ms would delay the commit by 8 ms,
//! and the runs that wait on it. Instead both take a [`WriteTurn`] around their write
//! transactions: the commit waits on a mutex, which wakes it the moment retention is done, and
//! it announces that it waits, so retention ends its transaction after the chunk in hand.
//! Finding what to delete is a read (it never blocks the writer in WAL mode) and happens
//! outside the turn.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{sql, StoreError};
use crate::retention::{self, Cutoffs};

/// Timers whose cutoffs one step finds (a read, outside the turn).
const TIMERS_PER_LISTING: usize = 64;
/// Events one statement deletes: the unit after which a transaction checks its budget and
/// whether the writer waits. About 0.1–0.3 ms of work.
const ROWS_PER_CHUNK: usize = 128;

/// How often retention looks whether the writers waiting for their turn have had it.
const YIELD_POLL: Duration = Duration::from_micros(100);

/// Whose turn it is to write. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct WriteTurn {
    lock: Mutex<()>,
    /// Writers waiting for the turn: retention yields at its next chunk while this is not 0.
    waiting: AtomicUsize,
}

impl WriteTurn {
    /// The writer's turn: waits for retention's transaction in hand (one chunk at most).
    pub(crate) fn writer(&self) -> MutexGuard<'_, ()> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        guard
    }

    /// Retention's turn, only when no writer waits: a mutex is not fair, and retention
    /// releasing it and taking it again at once could keep a woken writer waiting for several
    /// transactions.
    fn retention(&self) -> MutexGuard<'_, ()> {
        loop {
            while self.writer_waiting() {
                std::thread::sleep(YIELD_POLL);
            }
            let guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            if !self.writer_waiting() {
                return guard;
            }
        }
    }

    fn writer_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }
}

/// A timer whose old events are being deleted.
#[derive(Debug)]
struct Pending {
    timer_id: String,
    cut: Cutoffs,
    /// The last seq looked at: the next chunk starts after it.
    from: i64,
}

/// A pass over every timer with events, in id order.
#[derive(Debug, Default)]
struct Pass {
    /// The last timer listed.
    after: String,
    listed_all: bool,
    pending: VecDeque<Pending>,
}

/// What one [`Retainer::step`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStep {
    pub events_deleted: u64,
    /// The pass is over: every timer keeps only what the limit allows (as of when it was read).
    pub pass_done: bool,
}

/// Pages of the database file, for deciding whether to give free ones back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub total: u64,
    pub free: u64,
}

/// Retention for a running writer (see the module documentation): keeps each timer's latest
/// `keep` runs, by the rule of `retention.rs`. `Send`: give it a thread of its own; drop it
/// before the [`crate::Store`] closes, so that closing can leave WAL mode.
#[derive(Debug)]
pub struct Retainer {
    pub(crate) conn: Connection,
    pub(crate) db_path: PathBuf,
    pub(crate) turn: Arc<WriteTurn>,
    pub(crate) keep: NonZeroUsize,
    pass: Pass,
}

impl Retainer {
    pub(crate) fn new(
        conn: Connection,
        db_path: PathBuf,
        turn: Arc<WriteTurn>,
        keep: NonZeroUsize,
    ) -> Self {
        Retainer {
            conn,
            db_path,
            turn,
            keep,
            pass: Pass::default(),
        }
    }

    /// How many runs of each timer are kept.
    pub fn keep(&self) -> NonZeroUsize {
        self.keep
    }

    /// Starts a new pass from the first timer (dropping what is left of the last one).
    pub fn begin_pass(&mut self) {
        self.pass = Pass::default();
    }

    /// The next piece of the pass: when nothing is pending, finds the cutoffs of the next few
    /// timers (a read); then deletes what they let go in one transaction of at most `max_rows`
    /// events and about `budget`, ending early at the first chunk boundary where the writer
    /// waits for its turn. Event seqs are never reused (the high-water mark is recorded first).
    pub fn step(&mut self, budget: Duration, max_rows: usize) -> Result<RetentionStep, StoreError> {
        let path = self.db_path.as_path();
        if self.pass.pending.is_empty() && !self.pass.listed_all {
            let ids = retention::timers_with_events(
                &self.conn,
                path,
                &self.pass.after,
                TIMERS_PER_LISTING,
            )?;
            self.pass.listed_all = ids.len() < TIMERS_PER_LISTING;
            if let Some(last) = ids.last() {
                self.pass.after.clone_from(last);
            }
            for timer_id in ids {
                let cut = retention::cutoffs(&self.conn, path, &timer_id, self.keep)?;
                if !cut.is_empty() {
                    self.pass.pending.push_back(Pending {
                        timer_id,
                        cut,
                        from: 0,
                    });
                }
            }
        }
        let mut deleted = 0usize;
        if !self.pass.pending.is_empty() {
            let max_rows = max_rows.max(1);
            let began = Instant::now();
            let _turn = self.turn.retention();
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql(path, "starting retention"))?;
            retention::keep_max_seq(&tx, path, 0)?;
            while let Some(timer) = self.pass.pending.front_mut() {
                let limit = ROWS_PER_CHUNK.min(max_rows - deleted);
                let (n, last) = retention::delete_chunk(
                    &tx,
                    path,
                    &timer.timer_id,
                    timer.cut,
                    timer.from,
                    limit,
                )?;
                deleted += n;
                timer.from = last;
                if n < limit {
                    self.pass.pending.pop_front();
                }
                if deleted >= max_rows || began.elapsed() >= budget || self.turn.writer_waiting() {
                    break;
                }
            }
            tx.commit().map_err(sql(path, "committing retention"))?;
        }
        Ok(RetentionStep {
            events_deleted: deleted as u64,
            pass_done: self.pass.listed_all && self.pass.pending.is_empty(),
        })
    }

    /// The database file's pages, and how many of them are free (left by deleted events, reused
    /// by new ones).
    pub fn page_counts(&self) -> Result<PageCounts, StoreError> {
        let path = self.db_path.as_path();
        let read = |pragma: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(pragma, [], |row| row.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(sql(path, "counting pages"))
        };
        Ok(PageCounts {
            total: read("PRAGMA page_count")?,
            free: read("PRAGMA freelist_count")?,
        })
    }

    /// Gives up to `pages` free pages back to the file system (`PRAGMA incremental_vacuum`, one
    /// short transaction in the writer's turn).
    pub fn vacuum_step(&mut self, pages: u32) -> Result<(), StoreError> {
        let _turn = self.turn.retention();
        crate::writer::incremental_vacuum(&self.conn, &self.db_path, Some(pages.max(1)))
    }
}
