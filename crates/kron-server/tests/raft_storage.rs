//! openraft's storage test suite against the SQLite log store and the engine state machine.

#![allow(clippy::unwrap_used)]

use kron_server::raft::log_store::LogStore;
use kron_server::raft::state_machine::StateMachine;
use kron_server::raft::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageIOError;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log =
            LogStore::open(&dir.path().join("raft.db")).map_err(|e| StorageIOError::write(&e))?;
        let store = StateMachine::open_store(dir.path()).map_err(|e| StorageIOError::write(&e))?;
        let sm = StateMachine::new(store, log.clone())?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("storage suite failed: {e}");
    }
}
