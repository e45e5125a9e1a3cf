//! [`RaftLog`]: a replicated server's Raft log and its small durable values (vote, committed
//! position, last purged entry, latest snapshot), in their own SQLite file beside `kron.db`.
//!
//! Entries and values are opaque bytes: what they mean is the server's business (its Raft
//! library's types); this file only keeps them, in index order, durably. A separate file, not
//! tables of `kron.db`: the log is written on every replication round, often by a different task
//! than the one applying entries, and its pages come and go with compaction; keeping it apart
//! leaves `kron.db` with exactly the embedded mode's schema, which the command line reads.
//!
//! Writes run with `synchronous=FULL`: an entry or a vote acknowledged to a peer must survive a
//! power loss, or the cluster could lose a committed write or elect two leaders in one term.
//! The one exception is [`RaftLog::put_lazy`], for values Raft allows to lag.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::checkpoint::{self, CheckpointReport, Checkpointer};
use crate::error::{io_error, sql, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS raft_log (
    idx   INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS raft_meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

/// The Raft log file of a server's data directory. See the module documentation.
#[derive(Debug)]
pub struct RaftLog {
    conn: Connection,
    path: PathBuf,
}

impl RaftLog {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<RaftLog, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        let conn = Connection::open(path).map_err(sql(path, "opening the raft log"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sql(path, "switching to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::ReadOnly {
                path: path.to_path_buf(),
                detail: format!("could not switch to WAL mode (journal_mode stayed {mode:?})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql(path, "setting synchronous"))?;
        conn.execute_batch(SCHEMA)
            .map_err(sql(path, "creating the raft log tables"))?;
        Ok(RaftLog {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes entries (index, bytes), replacing any at the same index, in one transaction.
    pub fn append(&mut self, entries: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "starting an append"))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO raft_log (idx, entry) VALUES (?1, ?2)")
                .map_err(sql(path, "appending entries"))?;
            for (index, bytes) in entries {
                stmt.execute(rusqlite::params![to_sql(path, *index)?, bytes])
                    .map_err(sql(path, "appending entries"))?;
            }
        }
        tx.commit().map_err(sql(path, "committing entries"))
    }

    /// Entries with `start <= index < end`, in index order.
    pub fn range(&self, start: u64, end: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let path = self.path.as_path();
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT idx, entry FROM raft_log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .map_err(sql(path, "reading entries"))?;
        let rows = stmt
            .query_map([start, end], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(sql(path, "reading entries"))?;
        let mut entries = Vec::new();
        for row in rows {
            let (index, bytes) = row.map_err(sql(path, "reading entries"))?;
            entries.push((index.max(0) as u64, bytes));
        }
        Ok(entries)
    }

    /// The entry with the highest index.
    pub fn last(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.conn
            .query_row(
                "SELECT idx, entry FROM raft_log ORDER BY idx DESC LIMIT 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?.max(0) as u64,
                        row.get::<_, Vec<u8>>(1)?,
                    ))
                },
            )
            .optional()
            .map_err(sql(&self.path, "reading the last entry"))
    }

    /// Deletes every entry at `index` or above (a new leader overwrote them).
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StoreError> {
        let path = self.path.as_path();
        self.conn
            .execute(
                "DELETE FROM raft_log WHERE idx >= ?1",
                [to_sql(path, index)?],
            )
            .map_err(sql(path, "truncating the log"))?;
        Ok(())
    }

    /// Deletes every entry at `index` or below and sets `key` to `value` (the record of what
    /// was purged), in one transaction.
    pub fn purge_upto(&mut self, index: u64, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql(path, "starting a purge"))?;
        tx.execute(
            "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
            rusqlite::params![key, value],
        )
        .map_err(sql(path, "recording the purge"))?;
        tx.execute(
            "DELETE FROM raft_log WHERE idx <= ?1",
            [to_sql(path, index)?],
        )
        .map_err(sql(path, "purging the log"))?;
        tx.commit().map_err(sql(path, "committing the purge"))
    }

    /// Hands checkpointing to a [`Checkpointer`] (a second connection, for another thread) and
    /// stops this connection's automatic checkpoints: SQLite's runs inside the append that
    /// crosses its threshold, copying megabytes and syncing the file while a replication round
    /// waits on that append.
    pub fn checkpointer(&mut self) -> Result<Checkpointer, StoreError> {
        let checkpointer = checkpoint::hand_over(&self.conn, &self.path)?;
        // The checkpoint syncs the database file after copying into it, as appends do.
        checkpointer
            .conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sql(&self.path, "setting synchronous"))?;
        Ok(checkpointer)
    }

    /// Copies into the database what the write-ahead log holds beyond the last checkpoint
    /// (`PASSIVE`, on this connection, between appends): see
    /// [`crate::Store::finish_checkpoint`], the same for `kron.db`.
    pub fn finish_checkpoint(&mut self) -> Result<CheckpointReport, StoreError> {
        checkpoint::passive(&self.conn, &self.path)
    }

    /// A stored value.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM raft_meta WHERE key = ?1", [key], |row| {
                row.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map_err(sql(&self.path, "reading the raft state"))
    }

    /// Removes a stored value (nothing when there is none), durably before returning.
    pub fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM raft_meta WHERE key = ?1", [key])
            .map_err(sql(&self.path, "removing from the raft state"))?;
        Ok(())
    }

    /// Stores a value, durably before returning.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, value],
            )
            .map_err(sql(&self.path, "writing the raft state"))?;
        Ok(())
    }

    /// Stores a value without waiting for the disk: it becomes durable with the next durable
    /// write (the write-ahead log is flushed in order), and a power loss before that keeps the
    /// previous value. For values that may lag, such as the committed position, which Raft
    /// learns again from the leader: one fsync fewer per commit.
    pub fn put_lazy(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let path = self.path.as_path();
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql(path, "setting synchronous"))?;
        let written = self
            .conn
            .execute(
                "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, value],
            )
            .map_err(sql(path, "writing the raft state"));
        // Back to durable writes whatever the write did: entries and votes must be synced.
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sql(path, "setting synchronous"))?;
        written.map(|_| ())
    }
}

fn to_sql(path: &Path, index: u64) -> Result<i64, StoreError> {
    i64::try_from(index).map_err(|_| StoreError::InvalidValue {
        path: path.to_path_buf(),
        what: "a log index".to_string(),
        detail: format!("{index} is above {}", i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_reads_truncates_and_purges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        let mut log = RaftLog::open(&path).unwrap();
        let entries: Vec<(u64, Vec<u8>)> = (1..=5).map(|i| (i, vec![i as u8])).collect();
        log.append(&entries).unwrap();
        assert_eq!(log.range(2, 4).unwrap(), vec![(2, vec![2]), (3, vec![3])]);
        assert_eq!(log.last().unwrap(), Some((5, vec![5])));
        log.truncate_from(4).unwrap();
        assert_eq!(log.last().unwrap(), Some((3, vec![3])));
        log.purge_upto(2, "purged", b"2").unwrap();
        assert_eq!(log.range(0, 10).unwrap(), vec![(3, vec![3])]);
        assert_eq!(log.get("purged").unwrap(), Some(b"2".to_vec()));
        log.put("vote", b"v").unwrap();
        log.put_lazy("committed", b"3").unwrap();
        drop(log);
        let log = RaftLog::open(&path).unwrap();
        assert_eq!(log.get("vote").unwrap(), Some(b"v".to_vec()));
        assert_eq!(log.get("committed").unwrap(), Some(b"3".to_vec()));
        assert_eq!(log.last().unwrap(), Some((3, vec![3])));
    }

    fn wal_bytes(path: &Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn appends_leave_checkpoints_to_the_checkpointer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        let mut log = RaftLog::open(&path).unwrap();
        let checkpointer = log.checkpointer().unwrap();
        // 6 MiB of entries: past SQLite's automatic checkpoint (1,000 pages), which would have
        // copied the log into the database inside an append and started it over.
        let entry = vec![7u8; 8 * 1024];
        for index in 1..=768u64 {
            log.append(&[(index, entry.clone())]).unwrap();
        }
        let grown = wal_bytes(&path);
        assert!(grown > 6 * 1024 * 1024, "{grown}");
        let report = checkpointer.checkpoint().unwrap();
        assert_eq!(report.checkpointed, report.wal_pages, "{report:?}");
        assert!(report.wal_pages > 1_000, "{report:?}");
        // Fully copied: the next appends write over the log from its start.
        let report = log.finish_checkpoint().unwrap();
        assert_eq!(report.checkpointed, report.wal_pages, "{report:?}");
        for index in 769..=800u64 {
            log.append(&[(index, entry.clone())]).unwrap();
        }
        assert_eq!(wal_bytes(&path), grown);
        drop(checkpointer);
        drop(log);
        let log = RaftLog::open(&path).unwrap();
        assert_eq!(log.range(1, 801).unwrap().len(), 800);
        assert_eq!(log.last().unwrap(), Some((800, entry)));
    }
}
