//! WAL checkpoints off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one commit
//! in a few thousand pays for copying the whole WAL into the database (tens of milliseconds) and,
//! in the runtime, delays the runs waiting on it. A [`Checkpointer`] owns a second connection and
//! checkpoints in `PASSIVE` mode from another thread: it never blocks the writer or readers.

use std::path::PathBuf;

use rusqlite::Connection;

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
    pub fn checkpoint(&self) -> Result<CheckpointReport, StoreError> {
        let path = self.db_path.as_path();
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok(CheckpointReport {
                    wal_pages: row.get(1)?,
                    checkpointed: row.get(2)?,
                })
            })
            .map_err(sql(path, "checkpointing the write-ahead log"))
    }
}
