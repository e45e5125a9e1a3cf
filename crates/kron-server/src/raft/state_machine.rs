//! The state machine: the embedded engine applying committed entries, and `DIR/kron.db`.
//!
//! Each committed entry's inputs ([`Proposal`](super::Proposal)) go through [`Engine::apply`]
//! in order (never a clock: the instant is in each input), and what they changed is written by
//! [`Store::commit_with_meta`] together with the last applied log id and the membership, in one
//! transaction: the same tables as embedded mode, so `kron job list/history` read a server's
//! directory.
//!
//! Restart: the engine is the latest snapshot ([`Engine::from_snapshot`]) and openraft re-applies
//! the committed entries after it. Entries up to the last applied id recorded in `kron.db` were
//! written already: re-applying them moves the engine only, so no event is written twice.
//!
//! A snapshot is the engine's deterministic bytes ([`Engine::snapshot`]) with the last applied
//! id and the membership (openraft's snapshot meta), and the history up to it when it is sent
//! (see `snapshot.rs`); installing one replaces the engine and the timers, runs and history of
//! `kron.db`, so a replica brought up by a snapshot answers history as its sender does.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kron_core::engine::{Engine, EngineConfig};
use kron_core::event::StoredEvent;
use kron_store::{CheckpointReport, Checkpointer, Durability, HistoryCopy, Reader, Store};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageIOError, StoredMembership,
};
use tokio::sync::watch;

use super::log_store::LogStore;
use super::snapshot::{decode_stored, encode_stored, SnapshotBody};
use super::{NodeId, NodeInfo, Response, StorageError, TypeConfig};

/// The seed of every node's engine: replicas must draw the same jitter and run ids.
pub const ENGINE_SEED: u64 = 0x4b52_4f4e;

/// `kron.db` meta keys written with each applied batch.
const META_LAST_APPLIED: &str = "raft_last_applied";
const META_MEMBERSHIP: &str = "raft_membership";

/// The applied state, shared by the state machine (which openraft owns) and the node's readers.
#[derive(Debug)]
pub struct Applied {
    inner: Mutex<Inner>,
    index: watch::Sender<u64>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    store: Store,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, NodeInfo>,
    /// The highest log index whose changes `kron.db` holds (`None`: none yet): re-applied
    /// entries up to it write nothing.
    stored_upto: Option<u64>,
}

impl Applied {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The engine is only changed between its own consistent steps; a panic elsewhere while
        // holding the lock leaves it usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the applied engine.
    pub fn read<T>(&self, f: impl FnOnce(&Engine) -> T) -> T {
        f(&self.lock().engine)
    }

    /// The timer's latest `limit` events, oldest first.
    pub fn history(&self, timer: &str, limit: usize) -> Result<Vec<StoredEvent>, String> {
        self.lock()
            .store
            .history(timer, limit)
            .map_err(|e| e.to_string())
    }

    /// A second connection that checkpoints `kron.db` from another thread; from now on commits
    /// never checkpoint (see [`Store::checkpointer`] and `checkpoints.rs`).
    pub(crate) fn checkpointer(&self) -> Result<Checkpointer, kron_store::StoreError> {
        self.lock().store.checkpointer()
    }

    /// Finishes a background checkpoint of `kron.db` between two applied batches: see
    /// [`Store::finish_checkpoint`].
    pub(crate) fn finish_checkpoint(&self) -> Result<CheckpointReport, kron_store::StoreError> {
        self.lock().store.finish_checkpoint()
    }

    /// The last applied log index, watched.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.index.subscribe()
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.lock().last_applied
    }
}

/// The state machine openraft drives. See the module documentation.
#[derive(Debug, Clone)]
pub struct StateMachine {
    applied: Arc<Applied>,
    log: LogStore,
    snapshots_built: Arc<AtomicU64>,
    /// `kron.db`'s directory: the history sent with a snapshot is read there.
    data_dir: PathBuf,
    /// Set once the node runs ([`StateMachine::serve_snapshots`]); before, the current
    /// snapshot is asked for its meta only (openraft, starting), and is answered without
    /// reading the history.
    serving: Arc<AtomicBool>,
}

fn store_err(e: kron_store::StoreError) -> StorageError {
    StorageIOError::read_state_machine(&e).into()
}

impl StateMachine {
    /// Opens the data directory's store: `DIR/kron.db`, taking the directory's writer lock.
    /// Commits need not be fsynced: an entry whose changes a power loss took from `kron.db`
    /// took its last applied id with them, and is applied again from the Raft log.
    pub fn open_store(data_dir: &Path) -> Result<Store, kron_store::StoreError> {
        Store::open(data_dir, Durability::Normal)
    }

    /// Whether `store` holds the state of applied entries (it belonged to a Raft node).
    pub fn has_applied(store: &Store) -> Result<bool, kron_store::StoreError> {
        Ok(store.meta(META_LAST_APPLIED)?.is_some())
    }

    /// Whether `store` holds timers or runs that no applied entry wrote: an embedded runtime's
    /// directory, which a server must not adopt (its engine would not know them).
    pub fn foreign_state(store: &Store) -> Result<bool, kron_store::StoreError> {
        if store.meta(META_LAST_APPLIED)?.is_some() {
            return Ok(false);
        }
        let state = store.load()?;
        Ok(!state.timers.is_empty() || !state.runs.is_empty())
    }

    /// The state machine over `store` (see [`StateMachine::open_store`]), its engine restored
    /// from the latest snapshot in `log`, if any.
    pub fn new(mut store: Store, log: LogStore) -> Result<StateMachine, StorageError> {
        let snapshot = log
            .load_snapshot()
            .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
        let (engine, last_applied, membership) = match snapshot {
            Some(bytes) => {
                // A damaged file is reported by its path, like a damaged database.
                let named = |e: &dyn std::fmt::Display| -> StorageError {
                    let detail = format!("{}: {e}", log.snapshot_path().display());
                    StorageIOError::read_snapshot(None, AnyError::error(detail)).into()
                };
                let (meta, data) = decode_stored(&bytes).map_err(|e| named(&e))?;
                let data = SnapshotBody::decode(&data).map_err(|e| named(&e))?.engine;
                let engine = Engine::from_snapshot(&data).map_err(|e| named(&e))?;
                (engine, meta.last_log_id, meta.last_membership)
            }
            None => (
                Engine::new(EngineConfig::default(), ENGINE_SEED),
                None,
                StoredMembership::default(),
            ),
        };
        let stored: Option<LogId<NodeId>> =
            match store.meta(META_LAST_APPLIED).map_err(store_err)? {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| StorageError::from(StorageIOError::read_state_machine(&e)))?,
                None => None,
            };
        let mut stored_upto = stored.map(|id| id.index);
        let snapshot_index = last_applied.map(|id| id.index);
        if stored_upto < snapshot_index {
            // Not expected: an installed snapshot goes to `kron.db` before `raft.db` (see
            // `install_snapshot`). The timers and runs are the snapshot's; the history of the
            // entries it skipped is not known here.
            eprintln!(
                "kron: kron.db is behind the stored snapshot (at {stored_upto:?}, snapshot at \
                 {snapshot_index:?}): its timers and runs are taken from the snapshot"
            );
            let (timers, runs) = engine.records();
            let last = json(&last_applied)?;
            let members = json(&membership)?;
            store
                .replace_state(
                    &timers,
                    &runs,
                    None,
                    &[(META_LAST_APPLIED, &last), (META_MEMBERSHIP, &members)],
                )
                .map_err(store_err)?;
            stored_upto = snapshot_index;
        }
        let index = last_applied.map_or(0, |id| id.index);
        let data_dir = store.data_dir().to_path_buf();
        Ok(StateMachine {
            applied: Arc::new(Applied {
                inner: Mutex::new(Inner {
                    engine,
                    store,
                    last_applied,
                    membership,
                    stored_upto,
                }),
                index: watch::Sender::new(index),
            }),
            log,
            snapshots_built: Arc::new(AtomicU64::new(0)),
            data_dir,
            serving: Arc::new(AtomicBool::new(false)),
        })
    }

    /// From now on a snapshot sent to a replica carries the history (see the `serving` field).
    pub fn serve_snapshots(&self) {
        self.serving.store(true, Ordering::Release);
    }

    /// The applied state, for reads.
    pub fn applied(&self) -> Arc<Applied> {
        self.applied.clone()
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|e| StorageIOError::write_state_machine(&e).into())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (engine, history_upto, last_log_id, last_membership) = {
            let inner = self.applied.lock();
            // `kron.db`'s event numbers describe the engine's state only when it holds exactly
            // the applied entries: not while entries it already held are re-applied.
            let applied_index = inner.last_applied.map(|id| id.index);
            let history_upto = (inner.stored_upto == applied_index).then(|| inner.store.max_seq());
            (
                // Only the copy under the lock (entries wait to be applied meanwhile); it is
                // sorted and serialized after.
                inner.engine.snapshot_copy(),
                history_upto,
                inner.last_applied,
                inner.membership.clone(),
            )
        };
        let count = self.snapshots_built.fetch_add(1, Ordering::Relaxed) + 1;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{count}", id.leader_id, id.index),
            None => format!("--{count}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        // Sorting, serializing and writing megabytes: on a blocking thread, so that the
        // runtime's few threads go on serving requests and replication meanwhile.
        let log = self.log.clone();
        let saved_meta = meta.clone();
        let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, StorageError> {
            let data = SnapshotBody {
                engine: engine.encode(),
                history_upto,
                history: None,
            }
            .encode()?;
            let stored = encode_stored(&saved_meta, &data)?;
            log.save_snapshot(&stored)
                .map_err(|e| StorageIOError::write_snapshot(Some(saved_meta.signature()), &e))?;
            Ok(data)
        })
        .await
        .map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(e.to_string()))
        })??;
        // openraft keeps only the meta of what is built; a replica gets the snapshot through
        // `get_current_snapshot`, with the history.
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, NodeInfo>), StorageError> {
        let inner = self.applied.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.applied.lock();
        let mut replies = Vec::new();
        let mut dirty = false;
        for entry in entries {
            let results = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(proposal) => proposal
                    .inputs
                    .into_iter()
                    .map(|input| inner.engine.apply(input))
                    .collect(),
                EntryPayload::Membership(membership) => {
                    inner.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Vec::new()
                }
            };
            inner.last_applied = Some(entry.log_id);
            if inner
                .stored_upto
                .is_some_and(|upto| entry.log_id.index <= upto)
            {
                // Applied and written before a restart: the engine catches up, nothing is
                // written twice.
                drop(inner.engine.take_changes());
            } else {
                dirty = true;
            }
            replies.push(Response { results });
        }
        if dirty {
            // One transaction for the whole batch (group commit).
            let changes = inner.engine.take_changes();
            let last = json(&inner.last_applied)?;
            let members = json(&inner.membership)?;
            let inner = &mut *inner;
            inner
                .store
                .commit_with_meta(
                    &changes,
                    &[(META_LAST_APPLIED, &last), (META_MEMBERSHIP, &members)],
                )
                .map_err(|e| StorageIOError::write_state_machine(&e))?;
            inner.stored_upto = inner.last_applied.map(|id| id.index);
        }
        let index = inner.last_applied.map_or(0, |id| id.index);
        drop(inner);
        self.applied.index.send_replace(index);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let body = SnapshotBody::decode(&snapshot.into_inner())?;
        let engine = Engine::from_snapshot(&body.engine)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let (timers, runs) = engine.records();
        let last = json(&meta.last_log_id)?;
        let members = json(&meta.last_membership)?;
        // `kron.db` first, then the snapshot in `raft.db`: if the process stops between them,
        // it restarts from its older snapshot and log, with `kron.db` ahead (entries it already
        // holds are re-applied to the engine only), and the leader sends the snapshot again.
        {
            let mut inner = self.applied.lock();
            inner
                .store
                .replace_state(
                    &timers,
                    &runs,
                    body.history.as_ref(),
                    &[(META_LAST_APPLIED, &last), (META_MEMBERSHIP, &members)],
                )
                .map_err(|e| StorageIOError::write_state_machine(&e))?;
            inner.engine = engine;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.stored_upto = meta.last_log_id.map(|id| id.index);
        }
        // Stored without the history (`kron.db` has it now); whether it can vouch for the
        // history up to its mark depends on whether it came with it.
        let history_upto = body.history.as_ref().map(|copy| copy.upto_seq);
        let stored = SnapshotBody {
            engine: body.engine,
            history_upto,
            history: None,
        }
        .encode()?;
        self.log
            .save_snapshot(&encode_stored(meta, &stored)?)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.applied
            .index
            .send_replace(meta.last_log_id.map_or(0, |id| id.index));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let bytes = self
            .log
            .load_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        match bytes {
            None => Ok(None),
            Some(bytes) => {
                let (meta, data) = decode_stored(&bytes)?;
                let mut body = SnapshotBody::decode(&data)?;
                if let (true, Some(upto)) =
                    (self.serving.load(Ordering::Acquire), body.history_upto)
                {
                    body.history = Some(read_history(self.data_dir.clone(), upto).await?);
                }
                Ok(Some(Snapshot {
                    meta,
                    snapshot: Box::new(Cursor::new(body.encode()?)),
                }))
            }
        }
    }
}

/// Every event of `kron.db` numbered up to `upto`, read on a blocking thread through a reader
/// of its own (the writer goes on applying meanwhile: events up to `upto` no longer change).
async fn read_history(data_dir: PathBuf, upto: i64) -> Result<HistoryCopy, StorageError> {
    let read = tokio::task::spawn_blocking(move || Reader::open(&data_dir)?.history_upto(upto))
        .await
        .map_err(|e| StorageIOError::read_snapshot(None, AnyError::error(e.to_string())))?;
    read.map_err(|e| StorageIOError::read_snapshot(None, &e).into())
}
