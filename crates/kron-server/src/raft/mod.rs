//! Raft replication of the engine's inputs (openraft 0.9, storage v2).
//!
//! * [`TypeConfig`] — what the log holds: each entry's data is a [`Proposal`], engine
//!   [`Input`]s stamped by the leader and applied in order; the response is what the engine
//!   answered to each.
//! * [`log_store`] — the Raft log, vote and committed position on SQLite (`DIR/raft.db`).
//! * [`state_machine`] — the engine applying committed entries and writing what changed to
//!   `DIR/kron.db` (the embedded mode's schema), with snapshots for compaction.
//! * [`checkpoints`] — both files' write-ahead logs copied into them off the write path.
//! * [`network`] — Raft RPC over HTTP with the cluster token, client and listener.

use std::io::Cursor;

use kron_core::input::{Input, Output, Rejected};
use serde::{Deserialize, Serialize};

pub(crate) mod checkpoints;
// openraft's `StorageError` is large and its traits return it: boxing ours would only add a
// conversion at every trait boundary.
#[allow(clippy::result_large_err)]
pub mod log_store;
pub mod network;
pub mod proposer;
#[allow(clippy::result_large_err)]
pub mod snapshot;
#[allow(clippy::result_large_err)]
pub mod state_machine;

/// A node's Raft id: derived from its name, so that every node maps a name to the same id.
pub type NodeId = u64;

/// A member as the membership replicates it: its name and addresses, so that every node can
/// tell clients where the leader's HTTP API is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The name operators use (`n1`).
    pub name: String,
    /// `host:port` of its HTTP API.
    pub http_addr: String,
    /// `host:port` of its Raft listener.
    pub raft_addr: String,
}

/// What one log entry carries: engine inputs, applied one after the other in one step.
///
/// Many inputs per entry is the leader's group commit: writes that arrive together (the reports
/// of a batch, concurrent requests) share one append, one fsync and one replication round, and
/// applying them is exactly applying each in turn. Serialized as the JSON array of the inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Proposal {
    pub inputs: Vec<Input>,
}

impl Proposal {
    /// A proposal of one input.
    pub fn one(input: Input) -> Proposal {
        Proposal {
            inputs: vec![input],
        }
    }
}

/// What applying an entry answered: the engine's verdict on each of the entry's inputs, in
/// order (empty for entries without any). Only handed back to the proposer on the same node,
/// never sent between nodes, so it is not serialized (openraft requires the traits).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    #[serde(skip)]
    pub results: Vec<Result<Output, Rejected>>,
}

openraft::declare_raft_types!(
    /// Kron's Raft types: the log's data is a [`Proposal`] of engine inputs.
    pub TypeConfig:
        D = Proposal,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig>;
/// openraft's error types, instantiated.
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
pub type RpcError<E = openraft::error::Infallible> =
    openraft::error::RPCError<NodeId, NodeInfo, RaftError<E>>;

/// The id of the node named `name`: FNV-1a of the name, the same on every node and release
/// (a hash, not a counter, so that no node has to allocate ids).
pub fn node_id_of(name: &str) -> NodeId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable() {
        assert_eq!(node_id_of("n1"), node_id_of("n1"));
        assert_ne!(node_id_of("n1"), node_id_of("n2"));
        // Fixed forever: changing it would orphan every existing cluster's membership.
        assert_eq!(node_id_of(""), 0xcbf2_9ce4_8422_2325);
    }
}
