//! What the HTTP layer needs from the replicated scheduler, as a trait: the Raft node implements
//! it; the HTTP layer's tests use [`testing::LocalBackend`].

use std::future::Future;

use kron_core::engine::Engine;
use kron_core::event::StoredEvent;
use kron_core::input::{Input, Output, Rejected};
use kron_core::time::EpochMs;
use kron_store::EventFilter;
use serde::Serialize;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// The leader as far as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderInfo {
    pub id: String,
    /// Its HTTP address (`host:port`), as replicated with the membership.
    pub http: Option<String>,
}

/// Why a write was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// This node is not the leader: the client should send the write to `leader`.
    #[error("not_leader")]
    NotLeader { leader: Option<LeaderInfo> },
    /// The engine refused the input when the entry was applied: nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// Replication or storage failed; the write may or may not be committed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub node_id: String,
    pub http_addr: String,
    pub raft_addr: String,
    /// A voter, or a learner still catching up.
    pub voter: bool,
}

/// A clock offset above this (either way), in ms, marks a member `clock_skewed`.
pub const CLOCK_SKEW_LIMIT_MS: i64 = 1_000;

/// One member as `GET /v1/cluster/status` reports it: its [`Member`] fields, its role, and
/// what only the leader measures (`None` on any other node, and on the leader for a member it
/// has not heard from yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    #[serde(flatten)]
    pub member: Member,
    /// "voter" or "learner".
    pub role: &'static str,
    /// The last log index the leader knows this member holds.
    pub matched_index: Option<u64>,
    /// The term of that entry: the current term once the member holds an entry of its leader.
    pub matched_term: Option<u64>,
    /// The leader's last log index minus `matched_index`.
    pub lag: Option<u64>,
    /// This member's clock minus the leader's, in ms (0 for the leader itself).
    pub clock_offset_ms: Option<i64>,
    /// `|clock_offset_ms| > CLOCK_SKEW_LIMIT_MS`.
    pub clock_skewed: Option<bool>,
}

impl MemberStatus {
    /// A member with nothing measured.
    pub fn unmeasured(member: Member) -> MemberStatus {
        let role = if member.voter { "voter" } else { "learner" };
        MemberStatus {
            member,
            role,
            matched_index: None,
            matched_term: None,
            lag: None,
            clock_offset_ms: None,
            clock_skewed: None,
        }
    }

    /// Records a clock offset and whether it is beyond [`CLOCK_SKEW_LIMIT_MS`].
    pub fn with_clock_offset(mut self, offset_ms: Option<i64>) -> MemberStatus {
        self.clock_offset_ms = offset_ms;
        self.clock_skewed =
            offset_ms.map(|o| o.unsigned_abs() > CLOCK_SKEW_LIMIT_MS.unsigned_abs());
        self
    }
}

/// `GET /v1/cluster/status`, less the constant `raft: "openraft"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    pub node_id: String,
    /// "leader", "follower", "candidate" or "learner".
    pub role: &'static str,
    pub leader_id: Option<String>,
    pub leader_http: Option<String>,
    pub term: u64,
    pub members: Vec<MemberStatus>,
    /// The index of the last entry in this node's log (committed or not).
    pub last_log_index: u64,
    pub commit_index: u64,
    pub applied_index: u64,
}

/// What [`Backend::events`] answers: the matching events (the newest `limit` when the filter
/// has one, oldest first) and how many match in all, the limit aside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub total: u64,
}

/// The replicated scheduler as the HTTP layer sees it.
pub trait Backend: Send + Sync + 'static {
    /// This node's clock, ms since the epoch: the instant a write proposed here is stamped with.
    fn now(&self) -> EpochMs;

    /// Proposes `input`; resolves once it is committed and applied, with what the engine
    /// answered. On a node that is not the leader: [`WriteError::NotLeader`], nothing proposed.
    fn propose(&self, input: Input) -> impl Future<Output = Result<Output, WriteError>> + Send;

    /// Proposes `inputs` together (one log entry, applied in order: a batch costs one commit);
    /// resolves once they are committed and applied, with what the engine answered to each,
    /// in order. On a node that is not the leader: [`WriteError::NotLeader`], nothing proposed.
    fn propose_many(
        &self,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<Result<Output, Rejected>>, WriteError>> + Send;

    /// Runs `f` on this node's applied engine (on a follower it may lag the leader).
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send;

    /// The timer's latest `limit` events, oldest first, from this node's history.
    fn history(
        &self,
        timer: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, String>> + Send;

    /// Events of every timer matching `filter` (kinds, a time range, some timers), from this
    /// node's history: one query, whatever the number of timers.
    fn events(&self, filter: EventFilter)
        -> impl Future<Output = Result<EventPage, String>> + Send;

    /// The index of the last applied entry, watched: a long-polling worker waits for a change
    /// (runs parked by a tick, a lease expired) instead of polling in a loop.
    fn applied(&self) -> tokio::sync::watch::Receiver<u64>;

    fn cluster_status(&self) -> ClusterStatus;

    /// Whether this node is the leader: cheaper than [`Backend::cluster_status`], for answers
    /// that say a read may lag.
    fn is_leader(&self) -> bool {
        self.cluster_status().role == "leader"
    }

    /// Runs whose lease this node expired (its clock proposed `ExpireLeases` while it led),
    /// counted since it started: for metrics.
    fn lease_expiries(&self) -> u64;

    /// Adds a node (as a learner, promoted to voter once caught up). Leader only.
    fn join(&self, member: Member) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Removes a node from the membership. Leader only.
    fn leave(&self, node_id: &str) -> impl Future<Output = Result<(), WriteError>> + Send;
}
