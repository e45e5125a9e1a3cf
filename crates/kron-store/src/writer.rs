//! The [`Store`]: the single writer of a data directory, owned by the runtime.
//!
//! Opening takes the directory's writer lock before anything else, then checks, opens and
//! migrates the database. Start-up reads the current state ([`Store::load`]: timers and runs in
//! flight), never replays history. Every engine step is written by [`Store::commit`] as one
//! transaction, so a timer's state and the events that produced it are durable together.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kron_core::changes::Changes;
use kron_core::event::StoredEvent;
use kron_core::run::RunRecord;
use kron_core::time::EpochMs;
use kron_core::timer::TimerRecord;
use rusqlite::{Connection, TransactionBehavior};

use crate::checkpoint::{self, CheckpointReport, Checkpointer};
use crate::db::{self, BUSY_TIMEOUT};
use crate::error::{file_in_the_way, io_error, sql, sql_error, StoreError};
use crate::grouped::{self, WriteError};
use crate::history_copy::{self, HistoryCopy};
use crate::lock::DirLock;
use crate::query;
use crate::retainer::{Retainer, WriteTurn};
use crate::retention;
use crate::schema::{self, DbState, SCHEMA_VERSION};

/// How hard a commit tries to survive a power loss. Chosen at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `PRAGMA synchronous=NORMAL`: a commit survives the process crashing; after a power loss or
    /// OS crash the last commits may be lost (never corrupted). No fsync per commit.
    #[default]
    Normal,
    /// `PRAGMA synchronous=FULL`: the write-ahead log is fsynced at every commit, so a commit
    /// that returned survives a power loss.
    Full,
}

/// What start-up needs: the current state, not the history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Sorted by id.
    pub timers: Vec<TimerRecord>,
    /// Sorted by run id (creation order).
    pub runs: Vec<RunRecord>,
    /// The highest event `seq` ever assigned (0 for none); the next event gets `max_seq + 1`.
    pub max_seq: i64,
}

/// What [`Store::compact`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub events_deleted: u64,
    /// `kron.db` plus `kron.db-wal` before (after a checkpoint) and after compaction.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// `PRAGMA cache_size`: 2 MiB of page cache (SQLite's default, set explicitly because it is a
/// measured choice). The cache fills with the rows written and stays full, so it is part of the
/// memory each timer costs (about 20 bytes per timer at 100k timers). Measured against 8 MiB
/// (burst of 50k, 100k registrations, restart with 100k timers): no slower, 70 bytes less per
/// timer; the operating system's page cache serves what falls out of it.
const CACHE_KIB: i64 = 2 * 1024;
/// `PRAGMA journal_size_limit`: after a checkpoint the WAL is truncated to at most this.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// `PRAGMA wal_autocheckpoint`, in pages: checkpoint once the WAL holds 16 MiB (default 4 MiB).
/// Fewer checkpoints (each syncs the database file) measured ~20% more events/s for commits of
/// a few thousand events; readers pay a little more to search a longer WAL.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;
/// How long closing waits for readers before leaving the database in WAL mode.
const CLOSE_BUSY_TIMEOUT: Duration = Duration::from_millis(200);
/// How long [`Store::reclaim_log`] waits for readers: it runs between commit retries, which must
/// stay about a second apart.
const RECLAIM_BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// The single writer of a data directory. `Send`: open it, then move it to the runtime thread.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    data_dir: PathBuf,
    db_path: PathBuf,
    /// The last `seq` assigned; the writer assigns seqs itself (see `schema.rs`).
    max_seq: i64,
    /// Set once we switched the database to WAL: closing switches it back (see `reader.rs`).
    restore_rollback_journal: bool,
    closed: bool,
    /// Shared with the [`Retainer`] once there is one: each write transaction takes it.
    turn: Option<Arc<WriteTurn>>,
    // Declared last so it is dropped last: the lock outlives the connection.
    _lock: DirLock,
}

impl Store {
    /// Opens (creating if needed) the data directory and its database, as its only writer.
    ///
    /// Takes the writer lock first: if another process holds it, returns `StoreError::Locked`
    /// having created or changed nothing. Refuses files that are not Kron databases, are damaged
    /// or truncated (`Corrupt`), or come from a newer Kron (`SchemaTooNew`), without writing to
    /// them. A zero-length or missing `kron.db` is initialized.
    pub fn open(data_dir: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(file) = file_in_the_way(data_dir) {
            return Err(StoreError::NotADirectory {
                data_dir: data_dir.to_path_buf(),
                file,
            });
        }
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, e))?;
        let lock = DirLock::acquire(data_dir)?;
        Store::open_locked(data_dir, durability, lock)
    }

    /// [`Store::open`] for a caller that already holds the directory's writer lock (a standby
    /// granted it by [`DirLock::wait`]).
    pub fn open_locked(
        data_dir: &Path,
        durability: Durability,
        lock: DirLock,
    ) -> Result<Store, StoreError> {
        let db_path = db::db_path(data_dir);
        db::check_file(&db_path)?;
        let conn = db::open_read_write(&db_path)?;
        let state = schema::inspect(&conn, &db_path)?;
        if state != DbState::Empty {
            probe_tables(&conn, &db_path)?;
            quick_check_if_small(&conn, &db_path)?;
        }
        if conn
            .is_readonly("main")
            .map_err(sql(&db_path, "opening the database"))?
        {
            return Err(StoreError::ReadOnly {
                path: db_path,
                detail: "the database file is not writable".to_string(),
            });
        }
        let mut store = Store {
            conn,
            data_dir: data_dir.to_path_buf(),
            db_path,
            max_seq: 0,
            restore_rollback_journal: false,
            closed: false,
            turn: None,
            _lock: lock,
        };
        store.prepare(state, durability)?;
        Ok(store)
    }

    /// Settings, migration, and the seq high-water mark. From here on, dropping the store on
    /// error also restores the journal mode.
    fn prepare(&mut self, state: DbState, durability: Durability) -> Result<(), StoreError> {
        let path = self.db_path.as_path();
        let conn = &mut self.conn;
        if state == DbState::Empty {
            // Must be chosen before the first table exists. INCREMENTAL keeps a map of pages so
            // `compact` can return freed pages to the file system without rewriting the file.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(sql(path, "setting auto_vacuum"))?;
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql(path, "switching to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
                detail: format!("could not switch to WAL mode (journal_mode stayed {mode:?})"),
            });
        }
        self.restore_rollback_journal = true;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(sql(path, "setting synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "OFF")
            .map_err(sql(path, "setting foreign_keys"))?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(sql(path, "setting cache_size"))?;
        // Statement journals and sorts stay in memory: by default one past 64 KiB spills to a
        // temporary file, whose writes cost a burst of 50k runs ~12% of its throughput.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(sql(path, "setting temp_store"))?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sql(path, "setting journal_size_limit"))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(sql(path, "setting wal_autocheckpoint"))?;
        conn.set_prepared_statement_cache_capacity(32);
        let from = match state {
            DbState::Empty => 0,
            DbState::Version(version) => version,
        };
        schema::migrate(conn, path, from, now_ms())?;
        schema::verify(conn, path, SCHEMA_VERSION)?;
        self.max_seq = query::max_seq(conn, path)?;
        Ok(())
    }

    /// The state start-up needs: every timer, every run in flight, the last event seq.
    pub fn load(&self) -> Result<StoredState, StoreError> {
        Ok(StoredState {
            timers: query::timers(&self.conn, &self.db_path)?,
            runs: query::runs(&self.conn, &self.db_path)?,
            max_seq: self.max_seq,
        })
    }

    /// Writes one engine step in one transaction: appends the events in order (numbered from
    /// `max_seq + 1`), upserts timers, deletes removed timers, upserts runs, deletes finished
    /// runs. All or nothing: on error nothing is written.
    pub fn commit(&mut self, changes: &Changes) -> Result<(), StoreError> {
        self.commit_with_meta(changes, &[])
    }

    /// [`Store::commit`], also setting `meta` entries (key, value) in the same transaction: a
    /// replicated server records the last log entry applied beside what applying it changed.
    pub fn commit_with_meta(
        &mut self,
        changes: &Changes,
        meta: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if changes.is_empty() && meta.is_empty() {
            return Ok(());
        }
        let path = self.db_path.as_path();
        let invalid = |detail: String| StoreError::InvalidValue {
            path: path.to_path_buf(),
            what: "a change".to_string(),
            detail,
        };
        // Waits for a retention transaction in hand (until its next statement of 128 deletes).
        let _turn = self.turn.as_deref().map(WriteTurn::writer);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "starting a commit"))?;
        let mut seq = self.max_seq;
        let failed = |what: &'static str| {
            move |e: WriteError| match e {
                WriteError::Sql(e) => sql_error(path, what, e),
                WriteError::Value(detail) => invalid(detail),
            }
        };
        if !changes.events.is_empty() {
            seq = grouped::append_events(&tx, &changes.events, seq)
                .map_err(failed("appending events"))?;
        }
        if !changes.timers.is_empty() {
            grouped::upsert_timers(&tx, &changes.timers).map_err(failed("writing timers"))?;
        }
        if !changes.timer_states.is_empty() {
            let missing = grouped::update_timer_states(&tx, &changes.timer_states)
                .map_err(failed("writing timer state"))?;
            // A row never written in full (not expected): write it whole.
            if !missing.is_empty() {
                grouped::upsert_timers(&tx, &missing).map_err(failed("writing timers"))?;
            }
        }
        if !changes.removed_timers.is_empty() {
            grouped::delete_timers(&tx, &changes.removed_timers)
                .map_err(failed("deleting timers"))?;
        }
        // New rows first: a merged retry may update a run its older half created.
        if !changes.new_runs.is_empty() {
            grouped::insert_runs(&tx, &changes.new_runs).map_err(failed("writing runs"))?;
        }
        if !changes.runs.is_empty() {
            let missing =
                grouped::update_runs(&tx, &changes.runs).map_err(failed("writing runs"))?;
            // A row lost (not expected): write it whole.
            if !missing.is_empty() {
                grouped::upsert_runs(&tx, &missing).map_err(failed("writing runs"))?;
            }
        }
        if !changes.finished_runs.is_empty() {
            grouped::delete_runs(&tx, &changes.finished_runs)
                .map_err(failed("deleting finished runs"))?;
        }
        for (key, value) in meta {
            set_meta(&tx, path, key, value)?;
        }
        tx.commit().map_err(sql(path, "committing"))?;
        // Only once durable: after a failed (rolled back) commit the same seqs are used again.
        self.max_seq = seq;
        Ok(())
    }

    /// A `meta` entry's value (see [`Store::commit_with_meta`]).
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                row.get::<_, String>(0)
            })
            .optional()
            .map_err(sql(&self.db_path, "reading meta"))
    }

    /// The highest event `seq` assigned so far (0 for none).
    pub fn max_seq(&self) -> i64 {
        self.max_seq
    }

    /// Replaces every timer and run row with the given ones, and sets `meta` entries, in one
    /// transaction. With `history`, the whole history too (and the event numbering continues
    /// after its `upto_seq`); without, history stays. For a replica that installed a snapshot
    /// of another's state.
    pub fn replace_state(
        &mut self,
        timers: &[TimerRecord],
        runs: &[RunRecord],
        history: Option<&HistoryCopy>,
        meta: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let path = self.db_path.as_path();
        let _turn = self.turn.as_deref().map(WriteTurn::writer);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "starting a commit"))?;
        tx.execute_batch("DELETE FROM timer_defs; DELETE FROM timer_state; DELETE FROM runs;")
            .map_err(sql(path, "clearing timers and runs"))?;
        let failed = |what: &'static str| {
            move |e: WriteError| match e {
                WriteError::Sql(e) => sql_error(path, what, e),
                WriteError::Value(detail) => StoreError::InvalidValue {
                    path: path.to_path_buf(),
                    what: "a record".to_string(),
                    detail,
                },
            }
        };
        if !timers.is_empty() {
            grouped::upsert_timers(&tx, timers).map_err(failed("writing timers"))?;
        }
        if !runs.is_empty() {
            grouped::insert_runs(&tx, runs).map_err(failed("writing runs"))?;
        }
        if let Some(copy) = history {
            history_copy::replace(&tx, path, copy)?;
        }
        for (key, value) in meta {
            set_meta(&tx, path, key, value)?;
        }
        tx.commit().map_err(sql(path, "committing"))?;
        if let Some(copy) = history {
            self.max_seq = copy.upto_seq;
        }
        Ok(())
    }

    /// The latest `limit` events of the timer, oldest first.
    pub fn history(&self, timer_id: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        query::history(&self.conn, &self.db_path, timer_id, limit)
    }

    /// Retention. Deletes events older than `older_than` (`ts < older_than`), and for each timer
    /// (removed ones included) every event before the `RUN_DUE` that began its
    /// `keep_runs_per_timer`-th most recent run (`Some(0)`: all its events) — but never an event
    /// of a run still in flight. `None` leaves a rule out; with both, an event goes if either
    /// rule says so. Then returns the freed pages to the file system with
    /// `PRAGMA incremental_vacuum` (the file shrinks; the cost follows what was freed, there is
    /// no full rewrite as with `VACUUM`) and truncates the WAL. Event seqs are never reused.
    ///
    /// One transaction, so commits wait for all of it: measured ~0.3 s to drop the oldest 10% of
    /// 1M events, ~2.5 s to drop 87% of them (release build). A running runtime uses a
    /// [`Retainer`] instead.
    pub fn compact(
        &mut self,
        keep_runs_per_timer: Option<usize>,
        older_than: Option<EpochMs>,
    ) -> Result<CompactReport, StoreError> {
        let path = self.db_path.as_path();
        checkpoint(&self.conn, path)?;
        let bytes_before = db::file_bytes(path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "starting compaction"))?;
        // The high-water mark survives the deletion of the newest events.
        retention::keep_max_seq(&tx, path, self.max_seq)?;
        let not_in_flight = retention::NOT_IN_FLIGHT;
        let mut deleted = 0usize;
        if let Some(before) = older_than {
            deleted += tx
                .execute(
                    &format!("DELETE FROM events WHERE ts < ?1 AND {not_in_flight}"),
                    [before],
                )
                .map_err(sql(path, "deleting old events"))?;
        }
        match keep_runs_per_timer.map(NonZeroUsize::new) {
            None => {}
            Some(None) => {
                deleted += tx
                    .execute(&format!("DELETE FROM events WHERE {not_in_flight}"), [])
                    .map_err(sql(path, "deleting run events"))?;
            }
            Some(Some(keep)) => {
                let timer_ids = retention::timers_with_events(&tx, path, "", usize::MAX)?;
                deleted += retention::keep_latest_runs(&tx, path, keep, &timer_ids)?;
            }
        }
        tx.commit().map_err(sql(path, "committing compaction"))?;
        incremental_vacuum(&self.conn, path, None)?;
        checkpoint(&self.conn, path)?;
        Ok(CompactReport {
            events_deleted: deleted as u64,
            bytes_before,
            bytes_after: db::file_bytes(path),
        })
    }

    /// Hands history retention to a [`Retainer`] (a second connection, for another thread)
    /// that keeps each timer's latest `keep` runs. From here on every commit takes turns with it
    /// (see `retainer.rs`), so a commit never sleeps in SQLite's busy handler.
    pub fn retainer(&mut self, keep: NonZeroUsize) -> Result<Retainer, StoreError> {
        let conn = db::open_read_write(&self.db_path)?;
        conn.set_prepared_statement_cache_capacity(16);
        // Its commits must not checkpoint in the writer's turn (SQLite's automatic checkpoint
        // runs inside the commit that crosses the threshold): checkpoints are the
        // [`Checkpointer`]'s.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql(&self.db_path, "handing over retention"))?;
        let turn = self.turn.get_or_insert_with(Arc::default).clone();
        Ok(Retainer::new(conn, self.db_path.clone(), turn, keep))
    }

    /// Bytes available to this process on the data directory's file system, if it can tell.
    pub fn available_bytes(&self) -> Option<u64> {
        fs4::available_space(&self.data_dir).ok()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Hands checkpointing to a [`Checkpointer`] (a second connection, for another thread) and
    /// stops this connection's automatic checkpoints, so no commit pays for one.
    pub fn checkpointer(&mut self) -> Result<Checkpointer, StoreError> {
        checkpoint::hand_over(&self.conn, &self.db_path)
    }

    /// Copies into the database what the write-ahead log holds beyond the last checkpoint
    /// (`PASSIVE`, on this connection). Call it once a [`Checkpointer`] has finished: it copies
    /// only the commits that landed meanwhile. SQLite starts the log over from its beginning
    /// when a commit begins with the log fully copied; under steady commits the background
    /// checkpoint alone can miss that moment again and again, and the log grows by a whole
    /// checkpoint interval each time. This writer is the only one, so after this call the next
    /// commit restarts the log (unless a reader still uses older pages of it).
    pub fn finish_checkpoint(&mut self) -> Result<CheckpointReport, StoreError> {
        checkpoint::passive(&self.conn, &self.db_path)
    }

    /// Empties the write-ahead log and gives its space back to the file system:
    /// `PRAGMA wal_checkpoint(TRUNCATE)` on this connection copies every committed page into the
    /// database, then truncates `kron.db-wal` to zero bytes (with it go the uncommitted pages a
    /// failed commit left at its end). Meant for retrying a failed commit: on a full disk the
    /// log is often what fills it, and emptying it needs no more room than the database file
    /// grows by. Fails, with nothing committed lost, while the database file cannot grow;
    /// readers in the middle of a read (waited for up to 200 ms) leave the log as it is, which
    /// is not an error.
    pub fn reclaim_log(&mut self) -> Result<(), StoreError> {
        let path = self.db_path.as_path();
        self.conn
            .busy_timeout(RECLAIM_BUSY_TIMEOUT)
            .map_err(sql(path, "emptying the write-ahead log"))?;
        // A truncating checkpoint takes the write lock: in turn, like a commit.
        let turn = self.turn.as_deref().map(WriteTurn::writer);
        let result = checkpoint(&self.conn, path);
        drop(turn);
        let restored = self
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sql(path, "emptying the write-ahead log"));
        result.and(restored)
    }

    /// Closes the store, reporting errors that dropping it would ignore. Switches the database
    /// back to the rollback journal so the stopped directory is one self-contained file (see
    /// `reader.rs`), then releases the lock. If readers still have the database open the switch
    /// is skipped (the WAL files stay; that is not an error).
    pub fn close(mut self) -> Result<(), StoreError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        if self.closed || !self.restore_rollback_journal {
            self.closed = true;
            return Ok(());
        }
        self.closed = true;
        let path = self.db_path.as_path();
        self.conn.flush_prepared_statement_cache();
        self.conn
            .busy_timeout(CLOSE_BUSY_TIMEOUT)
            .map_err(sql(path, "closing"))?;
        let result = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "DELETE", |row| {
                row.get::<_, String>(0)
            });
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(
                        rusqlite::ffi::ErrorCode::DatabaseBusy
                            | rusqlite::ffi::ErrorCode::DatabaseLocked
                    )
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(sql_error(path, "leaving WAL mode", e)),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Reads the root (and last) pages of every table before anything is written, so that a
/// database whose tables are damaged is refused byte for byte untouched rather than after the
/// switch to WAL mode has rewritten its header.
fn probe_tables(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // Every row of the tables start-up loads (they are small), and the newest events. `timers`
    // is a table up to schema version 1, a view of the next two since.
    const PROBES: [(&str, &str); 5] = [
        ("timers", "SELECT * FROM timers"),
        ("timer_defs", "SELECT * FROM timer_defs"),
        ("timer_state", "SELECT * FROM timer_state"),
        ("runs", "SELECT * FROM runs"),
        ("events", "SELECT * FROM events ORDER BY seq DESC LIMIT 100"),
    ];
    for (table, probe) in PROBES {
        let exists: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .map_err(sql(path, "reading the schema"))?;
        if !exists {
            continue;
        }
        let mut stmt = conn
            .prepare(probe)
            .map_err(sql(path, "reading the tables"))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).map_err(sql(path, "reading the tables"))?;
        while let Some(row) = rows.next().map_err(sql(path, "reading the tables"))? {
            for i in 0..columns {
                // Reading each value makes SQLite decode every cell.
                row.get_ref(i).map_err(sql(path, "reading the tables"))?;
            }
        }
    }
    Ok(())
}

/// Databases up to this size get a full `PRAGMA quick_check` at open (about 30 ms per 25 MB):
/// damage anywhere is refused before anything is written. Larger ones get the header, schema and
/// table probes only, and `kron doctor` (or `Reader::integrity_check`) for the rest.
const QUICK_CHECK_MAX_BYTES: u64 = 128 * 1024 * 1024;

fn quick_check_if_small(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    if size > QUICK_CHECK_MAX_BYTES {
        return Ok(());
    }
    let mut stmt = conn
        .prepare("PRAGMA quick_check(20)")
        .map_err(sql(path, "checking the database"))?;
    let problems: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(sql(path, "checking the database"))?
        .collect::<Result<_, _>>()
        .map_err(sql(path, "checking the database"))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("integrity check failed: {}", problems.join("; ")),
    })
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database and empties it. Readers in
/// the middle of a read can keep it from completing; that is fine (the next one finishes it).
fn checkpoint(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(sql(path, "checkpointing"))
}

/// `PRAGMA incremental_vacuum`: moves pages from the end of the file into free slots and
/// truncates it. It yields one row per page freed and only does the work as it is stepped, so it
/// must be stepped to the end.
/// Returns free pages to the file system: all of them, or at most `max_pages`.
pub(crate) fn incremental_vacuum(
    conn: &Connection,
    path: &Path,
    max_pages: Option<u32>,
) -> Result<(), StoreError> {
    let pragma = match max_pages {
        Some(n) => format!("PRAGMA incremental_vacuum({n})"),
        None => "PRAGMA incremental_vacuum".to_string(),
    };
    let mut stmt = conn
        .prepare(&pragma)
        .map_err(sql(path, "returning free pages"))?;
    let mut rows = stmt.query([]).map_err(sql(path, "returning free pages"))?;
    while rows
        .next()
        .map_err(sql(path, "returning free pages"))?
        .is_some()
    {}
    Ok(())
}

fn now_ms() -> EpochMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMs)
        .unwrap_or(0)
}

/// Sets one `meta` entry inside a write transaction.
fn set_meta(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    .map_err(sql(path, "writing meta"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }
}
