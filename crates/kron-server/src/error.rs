//! The errors of starting and running a server node.

use std::io;

/// Why a node could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory's storage (`kron.db`, `raft.db`) cannot be opened or read.
    #[error(transparent)]
    Store(#[from] kron_store::StoreError),
    /// Raft storage failed (reading the log, the snapshot or the state machine).
    #[error("raft storage: {0}")]
    Storage(#[from] openraft::StorageError<u64>),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    /// A thread of the node could not be started (the system is out of threads or memory).
    #[error("could not start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// A setting is unusable (the message names it and its value).
    #[error("{0}")]
    Config(String),
    /// The Raft node failed or stopped.
    #[error("raft: {0}")]
    Raft(String),
}
