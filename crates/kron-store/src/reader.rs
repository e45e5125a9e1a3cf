//! Read-only access for status, history and the CLI, safe to use while a runtime writes.
//!
//! A [`Reader`] opens `kron.db` with `SQLITE_OPEN_READONLY`, never takes the writer lock and never
//! creates the data directory or the database. Each call is its own read transaction, so it sees
//! everything the writer has committed up to that moment; [`Reader::pin`] makes several calls
//! read one moment (timers and runs that belong together, say).
//!
//! # Write-ahead log and read-only access
//!
//! While a [`Store`](crate::Store) runs, the database is in WAL mode and `kron.db-wal` /
//! `kron.db-shm` exist; a read-only connection uses them (it needs write access to the `-shm`
//! file, or SQLite >= 3.22 falls back to a private copy of the WAL index when it may only read
//! it). When the `Store` closes cleanly it switches the database back to the rollback journal
//! (`journal_mode=DELETE`), which checkpoints and removes `-wal`/`-shm`: a stopped data
//! directory is one self-contained file that a reader opens with no write access at all and
//! without creating anything. (Left in WAL mode, SQLite would create `-wal` and `-shm` even for
//! a read-only connection when they are missing.) After a crash the `-wal`/`-shm` files stay
//! behind and hold committed transactions; the reader reads them as they are (so it sees those
//! transactions) and the next `Store::open` recovers and checkpoints them.
//!
//! `immutable=1` was rejected: it ignores the WAL, so it would hide transactions after a crash,
//! and it is unsafe if a runtime starts while the reader is open.

use std::path::{Path, PathBuf};

use kron_core::event::{EventKind, StoredEvent};
use kron_core::run::RunRecord;
use kron_core::time::EpochMs;
use kron_core::timer::TimerRecord;
use rusqlite::Connection;

use crate::db::{self, FileState};
use crate::error::{sql, StoreError};
use crate::history_copy::{self, HistoryCopy};
use crate::query;
use crate::schema::{self, DbState};

/// Which events [`Reader::events`] returns. All conditions must hold; empty/`None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub timer_id: Option<String>,
    /// Only these timers (`None`: every timer; an empty list matches nothing). For a reader
    /// scoped to some timers, a tenant's say; any number of ids is one query parameter.
    pub timer_ids: Option<Vec<String>>,
    /// Any of these kinds (all kinds when empty).
    pub kinds: Vec<EventKind>,
    /// `ts >= since`.
    pub since: Option<EpochMs>,
    /// `ts < until`.
    pub until: Option<EpochMs>,
    /// Only the newest `limit` matching events (still returned oldest first).
    pub limit: Option<usize>,
}

/// A read transaction held open by [`Reader::pin`]; dropping it ends the transaction (nothing
/// was written, so there is nothing to commit or lose).
#[derive(Debug)]
pub struct Pinned<'a> {
    _txn: rusqlite::Transaction<'a>,
}

/// A read-only view of a data directory.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
    data_dir: PathBuf,
    db_path: PathBuf,
}

impl Reader {
    /// Opens the database of `data_dir` read-only. A missing directory or database (or one a
    /// runtime has not initialized yet) is `StoreError::NotFound`; nothing is created.
    pub fn open(data_dir: &Path) -> Result<Reader, StoreError> {
        match std::fs::metadata(data_dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(StoreError::Io {
                    path: data_dir.to_path_buf(),
                    source: std::io::Error::other("not a directory"),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound {
                    path: data_dir.to_path_buf(),
                })
            }
            Err(e) => return Err(db::read_error(data_dir, e)),
        }
        let db_path = db::db_path(data_dir);
        match db::check_file(&db_path)? {
            FileState::Missing | FileState::Empty => {
                return Err(StoreError::NotFound { path: db_path })
            }
            FileState::Present => {}
        }
        let conn = db::open_read_only(&db_path)?;
        match schema::inspect(&conn, &db_path)? {
            DbState::Empty => return Err(StoreError::NotFound { path: db_path }),
            DbState::Version(version) => schema::verify(&conn, &db_path, version)?,
        }
        Ok(Reader {
            conn,
            data_dir: data_dir.to_path_buf(),
            db_path,
        })
    }

    /// Until the returned guard is dropped, every read through this reader sees the database as
    /// it was at the first of them: a runtime's commits in between are not seen, so the timers
    /// and runs read are one consistent state (a run that finished is not missing from the runs
    /// while its timer still waits for it).
    pub fn pin(&self) -> Result<Pinned<'_>, StoreError> {
        let txn = self
            .conn
            .unchecked_transaction()
            .map_err(sql(&self.db_path, "starting a read transaction"))?;
        Ok(Pinned { _txn: txn })
    }

    /// All timers, sorted by id.
    pub fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        query::timers(&self.conn, &self.db_path)
    }

    pub fn timer(&self, id: &str) -> Result<Option<TimerRecord>, StoreError> {
        query::timer(&self.conn, &self.db_path, id)
    }

    /// Runs in flight, sorted by run id (creation order).
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        query::runs(&self.conn, &self.db_path)
    }

    /// The latest `limit` events of the timer, oldest first.
    pub fn history(&self, timer_id: &str, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        query::history(&self.conn, &self.db_path, timer_id, limit)
    }

    /// Every event numbered up to `upto_seq`, as stored: the history a replicated server sends
    /// with a snapshot.
    pub fn history_upto(&self, upto_seq: i64) -> Result<HistoryCopy, StoreError> {
        history_copy::read(&self.conn, &self.db_path, upto_seq)
    }

    /// Events matching `filter`, oldest first.
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        query::events(&self.conn, &self.db_path, filter)
    }

    /// How many events match `filter`, its `limit` aside: with [`Reader::events`], "the newest
    /// 100 of N".
    pub fn count_events(&self, filter: &EventFilter) -> Result<u64, StoreError> {
        query::count_events(&self.conn, &self.db_path, filter)
    }

    /// `PRAGMA user_version` as it is now.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql(&self.db_path, "reading the schema version"))?;
        Ok(u32::try_from(version).unwrap_or(0))
    }

    /// SQLite's full `PRAGMA integrity_check`: `["ok"]`, or the problems found. Reads the whole
    /// file (about a second per few hundred MB): meant for `kron doctor`, not every open.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        query::integrity_check(&self.conn, &self.db_path)
    }

    pub fn event_count(&self) -> Result<u64, StoreError> {
        query::event_count(&self.conn, &self.db_path)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }
}
