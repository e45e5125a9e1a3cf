//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one commit
//! in a few thousand pays for copying the whole WAL into the database (tens of milliseconds) and,
//! in the runtime, delays the runs waiting on it. A [`Checkpointer`] owns a second connection and
//! checkpoints in `PASSIVE` mode from another thread: it never blocks the writer or readers.
//! The writer then copies what was committed meanwhile ([`crate::Store::finish_checkpoint`],
//! usually a few pages), so the log starts over instead of growing by a checkpoint interval
//! each time a commit lands during the copy.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::db;
use crate::error::{sql, StoreError};

/// A second connection to the database that copies the WAL into it. `Send`: give it its own
/// thread. Drop it before the [`crate::Store`] closes, so that closing can leave WAL mode.
#[derive(Debug)]
pub struct Checkpointer {
    pub(crate) conn: Connection,
    pub(crate) db_path: PathBuf,
}

/// What one checkpoint did, in WAL pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Pages in the WAL.
    pub wal_pages: i64,
    /// Pages copied into the database so far (all of them unless a reader holds older ones).
    pub checkpointed: i64,
}

impl Checkpointer {
    /// `PRAGMA wal_checkpoint(PASSIVE)`: copies what it can without waiting for anyone.
    ///
    /// Commits that land while it copies are left to [`crate::Store::finish_checkpoint`]:
    /// SQLite starts the log over only if it is fully copied when a commit begins.
    pub fn checkpoint(&self) -> Result<CheckpointReport, StoreError> {
        passive(&self.conn, &self.db_path)
    }
}

/// A [`Checkpointer`] for the database at `path`, and no more automatic checkpoints in the
/// commits of its writer `writer`.
pub(crate) fn hand_over(writer: &Connection, path: &Path) -> Result<Checkpointer, StoreError> {
    let conn = db::open_read_write(path)?;
    writer
        .pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(sql(path, "handing over checkpoints"))?;
    Ok(Checkpointer {
        conn,
        db_path: path.to_path_buf(),
    })
}

/// `PRAGMA wal_checkpoint(PASSIVE)` on `conn`.
pub(crate) fn passive(conn: &Connection, path: &Path) -> Result<CheckpointReport, StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(CheckpointReport {
            wal_pages: row.get(1)?,
            checkpointed: row.get(2)?,
        })
    })
    .map_err(sql(path, "checkpointing the write-ahead log"))
}
