//! The Raft log store: entries, vote, committed position and purge marker in `DIR/raft.db`,
//! through [`kron_store::RaftLog`] (the SQL lives in kron-store; this file only encodes
//! openraft's types as JSON bytes), and the latest snapshot in `DIR/raft.snapshot`.
//!
//! The snapshot has a file of its own so that writing or reading it (megabytes: every timer)
//! never holds the log: appends, and so every write the server acknowledges, go on meanwhile.
//! Kept in `raft.db` it stalled them for the time of the write (35-40 ms with 80,000 timers).

use std::fmt::Debug;
use std::io::Write;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kron_store::{CheckpointReport, Checkpointer, RaftLog};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, StorageError, TypeConfig};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";
/// Where earlier versions kept the snapshot, in `raft.db`; moved to the file at open.
const LEGACY_SNAPSHOT: &str = "snapshot";
/// The snapshot's file, beside `raft.db`.
pub const SNAPSHOT_FILE: &str = "raft.snapshot";

/// The log store; clones share the file (the log reader openraft asks for is a clone).
#[derive(Debug, Clone)]
pub struct LogStore {
    log: Arc<Mutex<RaftLog>>,
    /// The last committed index saved, for status (openraft's metrics do not carry it).
    committed: Arc<AtomicU64>,
    snapshot_path: PathBuf,
    /// Held while the snapshot file is replaced, so two saves do not share the temporary file.
    snapshot_write: Arc<Mutex<()>>,
}

impl LogStore {
    /// Opens (creating if needed) the log file at `path`; the snapshot is `raft.snapshot` in
    /// the same directory. A snapshot an earlier version kept inside `raft.db` is moved to its
    /// file first (written durably, then removed from `raft.db`).
    pub fn open(path: &Path) -> Result<LogStore, kron_store::StoreError> {
        let store = LogStore {
            log: Arc::new(Mutex::new(RaftLog::open(path)?)),
            committed: Arc::new(AtomicU64::new(0)),
            snapshot_path: path.with_file_name(SNAPSHOT_FILE),
            snapshot_write: Arc::new(Mutex::new(())),
        };
        let legacy = store.log().get(LEGACY_SNAPSHOT)?;
        if let Some(bytes) = legacy {
            store.save_snapshot(&bytes)?;
            store.log().delete(LEGACY_SNAPSHOT)?;
        }
        Ok(store)
    }

    /// Whether `raft.db` holds nothing at all: no vote, entry or purge marker (a fresh node's).
    /// The snapshot file is not looked at: see [`LogStore::has_snapshot`].
    pub fn is_blank(&self) -> Result<bool, kron_store::StoreError> {
        let log = self.log();
        Ok(log.get(VOTE)?.is_none() && log.last()?.is_none() && log.get(LAST_PURGED)?.is_none())
    }

    /// Whether a snapshot is stored (`raft.snapshot` exists).
    pub fn has_snapshot(&self) -> Result<bool, kron_store::StoreError> {
        self.snapshot_exists()
    }

    /// The snapshot's file (`raft.snapshot` beside `raft.db`).
    pub fn snapshot_path(&self) -> &Path {
        &self.snapshot_path
    }

    fn snapshot_exists(&self) -> Result<bool, kron_store::StoreError> {
        self.snapshot_path
            .try_exists()
            .map_err(|e| io_error(&self.snapshot_path, e))
    }

    /// The index of the last entry known committed (0 before any).
    pub fn committed_index(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// The latest snapshot stored with [`LogStore::save_snapshot`], if any.
    pub(crate) fn load_snapshot(&self) -> Result<Option<Vec<u8>>, kron_store::StoreError> {
        match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.snapshot_path, e)),
        }
    }

    /// Stores the latest snapshot, durably, replacing the one before: written to a temporary
    /// file, flushed, renamed over `raft.snapshot`, and the directory flushed. A crash leaves
    /// the old snapshot or the new one, never a mix. openraft purges the log only after this
    /// returns, so the entries a snapshot replaces are never gone before it is on disk.
    pub(crate) fn save_snapshot(&self, bytes: &[u8]) -> Result<(), kron_store::StoreError> {
        let _writing = self
            .snapshot_write
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let temporary = self.snapshot_path.with_extension("snapshot.tmp");
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        written.map_err(|e| io_error(&temporary, e))?;
        std::fs::rename(&temporary, &self.snapshot_path)
            .map_err(|e| io_error(&self.snapshot_path, e))?;
        if let Some(dir) = self.snapshot_path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(dir, e))?;
        }
        Ok(())
    }

    /// A second connection that checkpoints `raft.db` from another thread; from now on appends
    /// never checkpoint (see [`RaftLog::checkpointer`] and `checkpoints.rs`).
    pub(crate) fn checkpointer(&self) -> Result<Checkpointer, kron_store::StoreError> {
        self.log().checkpointer()
    }

    /// Finishes a background checkpoint between two appends: see
    /// [`RaftLog::finish_checkpoint`].
    pub(crate) fn finish_checkpoint(&self) -> Result<CheckpointReport, kron_store::StoreError> {
        self.log().finish_checkpoint()
    }

    fn log(&self) -> MutexGuard<'_, RaftLog> {
        // A panic while holding it cannot leave the file half-written (SQLite transactions).
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_value<T: DeserializeOwned>(
        &self,
        key: &str,
        err: fn(AnyError) -> StorageIOError<NodeId>,
    ) -> Result<Option<T>, StorageError> {
        let bytes = self.log().get(key).map_err(|e| err(AnyError::new(&e)))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).map_err(|e| err(AnyError::new(&e)))?,
            )),
        }
    }

    fn write_value<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        err: fn(AnyError) -> StorageIOError<NodeId>,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| err(AnyError::new(&e)))?;
        self.log()
            .put(key, &bytes)
            .map_err(|e| err(AnyError::new(&e)))?;
        Ok(())
    }
}

fn io_error(path: &Path, source: std::io::Error) -> kron_store::StoreError {
    kron_store::StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn decode(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_logs(&e).into())
}

fn read_logs(e: AnyError) -> StorageIOError<NodeId> {
    StorageIOError::read_logs(e)
}
fn write_logs(e: AnyError) -> StorageIOError<NodeId> {
    StorageIOError::write_logs(e)
}
fn read_vote(e: AnyError) -> StorageIOError<NodeId> {
    StorageIOError::read_vote(e)
}
fn write_vote(e: AnyError) -> StorageIOError<NodeId> {
    StorageIOError::write_vote(e)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.saturating_add(1),
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        let rows = self
            .log()
            .range(start, end)
            .map_err(|e| read_logs(AnyError::new(&e)))?;
        rows.iter().map(|(_, bytes)| decode(bytes)).collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last = self
            .log()
            .last()
            .map_err(|e| read_logs(AnyError::new(&e)))?;
        let last = match last {
            Some((_, bytes)) => Some(decode(&bytes)?.log_id),
            None => None,
        };
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_value(LAST_PURGED, read_logs)?;
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_value(VOTE, vote, write_vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_value(VOTE, read_vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Not synced on its own (openraft allows the committed position to lag: a restarted
        // node learns it again from the leader, and a lone node re-commits its own log); the
        // next synced append makes it durable too.
        let bytes = serde_json::to_vec(&committed).map_err(|e| write_logs(AnyError::new(&e)))?;
        self.log()
            .put_lazy(COMMITTED, &bytes)
            .map_err(|e| write_logs(AnyError::new(&e)))?;
        self.committed
            .store(committed.map_or(0, |id| id.index), Ordering::Relaxed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        let committed = self
            .read_value::<Option<LogId<NodeId>>>(COMMITTED, read_logs)?
            .flatten();
        self.committed
            .store(committed.map_or(0, |id| id.index), Ordering::Relaxed);
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut rows = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| write_logs(AnyError::new(&e)))?;
            rows.push((entry.log_id.index, bytes));
        }
        let result = self.log().append(&rows);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                callback.log_io_completed(Err(std::io::Error::other(message)));
                Err(write_logs(AnyError::new(&e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.log()
            .truncate_from(log_id.index)
            .map_err(|e| write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let marker = serde_json::to_vec(&log_id).map_err(|e| write_logs(AnyError::new(&e)))?;
        self.log()
            .purge_upto(log_id.index, LAST_PURGED, &marker)
            .map_err(|e| write_logs(AnyError::new(&e)).into())
    }
}
