//! [`Node`]: one server node, a Raft member replicating the engine, and the [`Backend`] the
//! HTTP layer serves.
//!
//! Starting: a fresh directory without a leader to join bootstraps a cluster of one voter (this
//! node); with one, the node starts empty and waits for the cluster to add it; an existing
//! directory resumes where it stopped. While it is the leader, the node's clock proposes the
//! inputs time makes due (`Tick`, `ExpireLeases`): see [`clock`](self::clock_loop), and
//! measures its members' clocks ([`offsets`]).
//!
//! Raft timing and compaction: [`RaftTiming`]. Storage that cannot be read (a damaged or
//! truncated `kron.db` or `raft.db`) stops [`Node::start`] with an error naming the file.

mod clock;
mod offsets;
mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kron_core::engine::Engine;
use kron_core::event::StoredEvent;
use kron_core::input::{Input, Output, Rejected};
use kron_core::time::EpochMs;
use kron_core::CoreError;
use kron_store::{EventFilter, Reader};
use openraft::error::ClientWriteError;
use openraft::{ChangeMembers, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::backend::{
    Backend, ClusterStatus, EventPage, LeaderInfo, Member, MemberStatus, WriteError,
};
use crate::error::ServerError;
use crate::raft::checkpoints::Checkpoints;
use crate::raft::log_store::LogStore;
use crate::raft::network::{self, Network};
use crate::raft::proposer::{Answers, ProposeFailure, Proposer};
use crate::raft::state_machine::{Applied, StateMachine};
use crate::raft::{node_id_of, NodeId, NodeInfo, Raft, RaftError};

pub use clock::{Clock, TEST_OFFSET_ENV};
pub use offsets::ClockOffsets;
pub use timing::RaftTiming;

/// The Raft log file in the data directory.
pub const RAFT_DB_FILE: &str = "raft.db";

/// How many occurrences a tick makes due, at most (the engine also caps it).
const TICK_BATCH: u32 = 2_048;
/// When runs no tick can start wait (timers without a task: no worker can run them), the clock
/// looks again this often instead of ticking in a loop.
const STUCK_RETRY_MS: i64 = 1_000;
/// How long a write waits to be committed before it is answered 503 (it may still commit).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a join waits for the new node to catch up before promoting it.
const JOIN_CATCH_UP: Duration = Duration::from_secs(30);

/// How to start a node. See [`Node::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The data directory: `kron.db` (the embedded mode's schema), `raft.db` (log, vote,
    /// snapshot), `kron.lock`.
    pub data_dir: PathBuf,
    /// This node's name (`n1`); its Raft id is derived from it.
    pub node_name: String,
    /// `host:port` of this node's HTTP API, as told to the cluster (the HTTP layer binds it).
    pub http_addr: String,
    /// `host:port` the Raft listener binds (port 0: any free port, see [`Node::raft_addr`]).
    pub raft_addr: String,
    /// The token every Raft request carries, sent and required.
    pub cluster_token: String,
    /// The name of a node of the cluster this one is to join: start empty and wait to be added.
    /// `None` on a fresh directory: bootstrap a cluster of one.
    pub leader_id: Option<String>,
}

/// A running server node. Dropping it stops its clock and listener; [`Node::shutdown`] also
/// waits for Raft to stop and the data directory to be released.
pub struct Node {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Stopped after Raft: its connections must close before `kron.db` does.
    checkpoints: Mutex<Option<Checkpoints>>,
}

struct Shared {
    id: NodeId,
    info: NodeInfo,
    raft: Raft,
    /// Every write goes through it: group commit (see [`Proposer`]).
    proposer: Proposer,
    applied: Arc<Applied>,
    log: LogStore,
    shutdown: watch::Sender<bool>,
    /// Runs whose lease this node's clock expired while it led.
    lease_expiries: std::sync::atomic::AtomicU64,
    /// The instant this node stamps into what it proposes.
    clock: Clock,
    /// While this node leads: its members' clock offsets.
    offsets: ClockOffsets,
    /// The data directory, for [`Backend::events`].
    data_dir: PathBuf,
    /// A read-only connection to `kron.db` for queries over every timer's history, opened at
    /// the first one (and again after an error): they run beside the applying thread instead
    /// of holding the engine's lock for a scan of the events.
    events: Mutex<Option<Reader>>,
}

impl Node {
    /// Opens the data directory (taking its writer lock), binds the Raft listener, starts Raft,
    /// bootstraps a one-voter cluster when the directory is fresh and no leader is named, and
    /// starts the leader's clock.
    pub async fn start(config: NodeConfig) -> Result<Node, ServerError> {
        if config.node_name.trim().is_empty() {
            return Err(ServerError::Config(
                "invalid node_id \"\": must not be empty".to_string(),
            ));
        }
        if config.cluster_token.is_empty() {
            return Err(ServerError::Config(
                "invalid cluster_token: must not be empty".to_string(),
            ));
        }
        let timing = RaftTiming::from_env().map_err(ServerError::Config)?;
        let clock = Clock::from_env().map_err(ServerError::Config)?;
        // The store first: it takes the directory's writer lock before any file is touched.
        let store = StateMachine::open_store(&config.data_dir)?;
        if StateMachine::foreign_state(&store)? {
            return Err(ServerError::Config(format!(
                "invalid data_dir {:?}: it holds an embedded runtime's timers; a server needs a \
                 directory of its own",
                config.data_dir.display().to_string()
            )));
        }
        // Damage is found now rather than when a page is first read, mid-replication.
        let raft_db = config.data_dir.join(RAFT_DB_FILE);
        kron_store::check_integrity(&config.data_dir.join(kron_store::DB_FILE))?;
        kron_store::check_integrity(&raft_db)?;
        let log = LogStore::open(&raft_db)?;
        if log.is_blank()? {
            // Starting would make a fresh node (or cluster) out of one that voted and
            // acknowledged entries: it could elect a second leader or lose committed writes.
            let found = if StateMachine::has_applied(&store)? {
                Some("kron.db holds applied entries")
            } else if log.has_snapshot()? {
                Some("a snapshot (raft.snapshot) is stored")
            } else {
                None
            };
            if let Some(found) = found {
                return Err(ServerError::Store(kron_store::StoreError::Corrupt {
                    path: raft_db,
                    detail: format!(
                        "the Raft log is empty but {found}: the file was lost, truncated or \
                         replaced"
                    ),
                }));
            }
        }
        let state_machine = StateMachine::new(store, log.clone())?;
        let applied = state_machine.applied();
        let checkpoints = Checkpoints::start(applied.clone(), log.clone()).map_err(|source| {
            ServerError::Thread {
                what: "checkpoint",
                source,
            }
        })?;
        let snapshot_sender = state_machine.clone();

        let listener = tokio::net::TcpListener::bind(&config.raft_addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.raft_addr.clone(),
                source,
            })?;
        let raft_addr = match listener.local_addr() {
            Ok(bound) if config.raft_addr.ends_with(":0") => bound.to_string(),
            _ => config.raft_addr.clone(),
        };
        let id = node_id_of(&config.node_name);
        let info = NodeInfo {
            name: config.node_name.clone(),
            http_addr: config.http_addr.clone(),
            raft_addr,
        };
        let raft_config = Config {
            cluster_name: "kron".to_string(),
            heartbeat_interval: timing.heartbeat_ms,
            election_timeout_min: timing.election_min_ms,
            election_timeout_max: timing.election_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_every),
            max_in_snapshot_log_to_keep: timing.logs_kept,
            // A join promotes a learner once it is this close (see `Backend::join`).
            replication_lag_threshold: timing.caught_up_within(),
            ..Default::default()
        }
        .validate()
        .map_err(|e| ServerError::Config(e.to_string()))?;
        // The Raft listener admits the cluster token and the token file's `raft` tokens.
        let (auth, _) = Auth::open(&config.data_dir, Some(&config.cluster_token))
            .map_err(|e| ServerError::Config(e.to_string()))?;
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            Network::new(&config.cluster_token, network::source_ip(&info.raft_addr)),
            log.clone(),
            state_machine,
        )
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
        snapshot_sender.serve_snapshots();

        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            id,
            info: info.clone(),
            raft: raft.clone(),
            proposer: Proposer::start(raft.clone()),
            applied,
            log,
            shutdown,
            lease_expiries: std::sync::atomic::AtomicU64::new(0),
            clock,
            offsets: ClockOffsets::default(),
            data_dir: config.data_dir.clone(),
            events: Mutex::new(None),
        });
        let mut tasks = Vec::new();
        let router = network::router(raft.clone(), network::raft_tokens(Arc::new(auth)));
        let mut stop = shared.shutdown.subscribe();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            });
            // A failing listener leaves the node without peers; the clock and Raft report it.
            let _ = serve.await;
        }));

        tasks.push(tokio::spawn(clock_loop(shared.clone())));
        tasks.push(tokio::spawn(offsets::measure_loop(shared.clone())));
        let node = Node {
            shared,
            tasks: Mutex::new(tasks),
            checkpoints: Mutex::new(Some(checkpoints)),
        };
        if config.leader_id.is_none() {
            if let Err(e) = bootstrap(&raft, id, info).await {
                // Release the directory before answering.
                let _ = node.shutdown().await;
                return Err(e);
            }
        }
        Ok(node)
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.shared.id
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.shared.info.name
    }

    /// The Raft listener's address (the bound one when the configured port was 0).
    pub fn raft_addr(&self) -> &str {
        &self.shared.info.raft_addr
    }

    /// The HTTP address this node tells the cluster.
    pub fn http_addr(&self) -> &str {
        &self.shared.info.http_addr
    }

    /// The Raft handle (metrics, triggers such as a snapshot now).
    pub fn raft(&self) -> &Raft {
        &self.shared.raft
    }

    /// This node as a cluster member (to be joined by the leader).
    pub fn member(&self) -> Member {
        Member {
            node_id: self.shared.info.name.clone(),
            http_addr: self.shared.info.http_addr.clone(),
            raft_addr: self.shared.info.raft_addr.clone(),
            voter: true,
        }
    }

    /// Test only: shifts this node's clock by `offset_ms` (as `KRON_TEST_CLOCK_OFFSET_MS`
    /// does for a process), so that one node of an in-process cluster can be skewed.
    #[doc(hidden)]
    pub fn set_test_clock_offset(&self, offset_ms: i64) {
        self.shared.clock.set_test_offset(offset_ms);
    }

    /// Waits until some node is known as the leader, up to `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<LeaderInfo> {
        let mut metrics = self.shared.raft.metrics();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                // This node as the leader: once it leads in full (see `leads`).
                let mine = self.shared.leader_id() == Some(self.shared.id);
                if !mine || self.shared.is_leader() {
                    if let Some(leader) = self.shared.leader() {
                        return Some(leader);
                    }
                }
                if metrics.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        waited.ok().flatten()
    }

    /// Stops the clock, the Raft listener and Raft, and waits for them: once it returns (and
    /// the node is dropped) the data directory is free for another process.
    pub async fn shutdown(&self) -> Result<(), ServerError> {
        self.shared.shutdown.send_replace(true);
        let result = self
            .shared
            .raft
            .shutdown()
            .await
            .map_err(|e| ServerError::Raft(e.to_string()));
        let tasks: Vec<JoinHandle<()>> = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            tasks.drain(..).collect()
        };
        for task in tasks {
            let _ = task.await;
        }
        let checkpoints = self
            .checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(checkpoints) = checkpoints {
            // Waits for the round in progress, if any: off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || drop(checkpoints)).await;
        }
        result
    }
}

/// Makes this node the only voter of a new cluster, unless it already belongs to one.
async fn bootstrap(raft: &Raft, id: NodeId, info: NodeInfo) -> Result<(), ServerError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| ServerError::Raft(e.to_string()))?;
    if !initialized {
        raft.initialize(BTreeMap::from([(id, info)]))
            .await
            .map_err(|e| ServerError::Raft(e.to_string()))?;
    }
    Ok(())
}

impl Drop for Node {
    fn drop(&mut self) {
        // Without `shutdown`: the clock and the listener stop, dropping their Raft handles;
        // nothing waits for Raft itself to stop.
        self.shared.shutdown.send_replace(true);
    }
}

impl Shared {
    /// [`Backend::events`], on the calling (blocking) thread: the page and the count in one
    /// read transaction, so they agree.
    fn events(&self, filter: &EventFilter) -> Result<EventPage, String> {
        let mut slot = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let reader = match slot.take() {
            Some(reader) => reader,
            None => Reader::open(&self.data_dir).map_err(|e| e.to_string())?,
        };
        let page = (|| {
            let _pinned = reader.pin()?;
            Ok::<_, kron_store::StoreError>(EventPage {
                events: reader.events(filter)?,
                total: reader.count_events(filter)?,
            })
        })()
        .map_err(|e| e.to_string())?;
        // Kept only after a read that worked: an error opens a fresh connection next time.
        *slot = Some(reader);
        Ok(page)
    }

    fn is_leader(&self) -> bool {
        leads(&self.raft.metrics().borrow(), self.id)
    }

    fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The leader as this node knows it, named as the membership names it.
    fn leader(&self) -> Option<LeaderInfo> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let leader = m.current_leader?;
        let membership = m.membership_config.membership();
        Some(match membership.get_node(&leader) {
            Some(node) => leader_info(node),
            None => LeaderInfo {
                id: leader.to_string(),
                http: None,
            },
        })
    }

    async fn write(&self, input: Input) -> Result<Output, WriteError> {
        match self.write_many(vec![input]).await?.pop() {
            Some(answer) => answer.map_err(WriteError::Rejected),
            None => Err(WriteError::Unavailable(
                "the entry was applied without an answer".to_string(),
            )),
        }
    }

    async fn write_many(&self, inputs: Vec<Input>) -> Result<Answers, WriteError> {
        let count = inputs.len();
        // A leader cut off from the majority keeps its role (openraft 0.9 does not step down
        // without a quorum) but never commits: answer rather than hang until the partition
        // heals.
        let answers = match tokio::time::timeout(WRITE_TIMEOUT, self.proposer.propose(inputs)).await
        {
            Ok(answered) => answered.map_err(|e| self.write_error(e))?,
            Err(_) => {
                return Err(WriteError::Unavailable(format!(
                    "not committed within {} s (is a majority of the cluster reachable?); it may \
                     still be committed",
                    WRITE_TIMEOUT.as_secs()
                )))
            }
        };
        if answers.len() != count {
            return Err(WriteError::Unavailable(format!(
                "{count} inputs proposed, {} answered",
                answers.len()
            )));
        }
        Ok(answers)
    }

    fn write_error(&self, e: ProposeFailure) -> WriteError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                let leader = match (forward.leader_node, forward.leader_id) {
                    (Some(node), _) => Some(leader_info(&node)),
                    (None, Some(_)) => self.leader(),
                    (None, None) => None,
                };
                WriteError::NotLeader { leader }
            }
            other => WriteError::Unavailable(other.to_string()),
        }
    }
}

/// Whether node `id` leads and has applied the first entry of its own term: then everything
/// committed before it took over is in its applied state. Until then its reads, and its clock's
/// decisions, would rest on a predecessor's partial view.
fn leads(m: &RaftMetrics<NodeId, NodeInfo>, id: NodeId) -> bool {
    m.state == ServerState::Leader
        && m.current_leader == Some(id)
        && m.last_applied
            .is_some_and(|applied| applied.leader_id.get_term() == m.current_term)
}

fn leader_info(node: &NodeInfo) -> LeaderInfo {
    LeaderInfo {
        id: node.name.clone(),
        http: (!node.http_addr.is_empty()).then(|| node.http_addr.clone()),
    }
}

impl Backend for Node {
    fn now(&self) -> EpochMs {
        self.shared.clock.now()
    }

    fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    fn lease_expiries(&self) -> u64 {
        self.shared
            .lease_expiries
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn propose(
        &self,
        input: Input,
    ) -> impl std::future::Future<Output = Result<Output, WriteError>> + Send {
        let shared = self.shared.clone();
        async move { shared.write(input).await }
    }

    fn propose_many(
        &self,
        inputs: Vec<Input>,
    ) -> impl std::future::Future<Output = Result<Answers, WriteError>> + Send {
        let shared = self.shared.clone();
        async move { shared.write_many(inputs).await }
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl std::future::Future<Output = T> + Send {
        std::future::ready(self.shared.applied.read(f))
    }

    fn history(
        &self,
        timer: &str,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<StoredEvent>, String>> + Send {
        std::future::ready(self.shared.applied.history(timer, limit))
    }

    fn events(
        &self,
        filter: EventFilter,
    ) -> impl std::future::Future<Output = Result<EventPage, String>> + Send {
        let shared = self.shared.clone();
        async move {
            tokio::task::spawn_blocking(move || shared.events(&filter))
                .await
                .unwrap_or_else(|e| Err(format!("the events read failed: {e}")))
        }
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.shared.applied.watch()
    }

    fn cluster_status(&self) -> ClusterStatus {
        let leader = self.shared.leader();
        let metrics = self.shared.raft.metrics();
        let m = metrics.borrow();
        let role = match m.state {
            ServerState::Leader if leads(&m, self.shared.id) => "leader",
            // Elected, but what its predecessors committed is not all applied yet.
            ServerState::Leader => "candidate",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Follower | ServerState::Shutdown => "follower",
        };
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_log_index = m.last_log_index.unwrap_or(0);
        // Replication progress is known to the leader only (`None` elsewhere).
        let replication = m.replication.as_ref();
        let offsets = self.shared.offsets.all();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let member = Member {
                    node_id: node.name.clone(),
                    http_addr: node.http_addr.clone(),
                    raft_addr: node.raft_addr.clone(),
                    voter: voters.contains(id),
                };
                let matched = replication.and_then(|r| match r.get(id) {
                    Some(matched) => {
                        Some(matched.map_or((0, 0), |log_id| (log_id.index, log_id.leader_id.term)))
                    }
                    // The leader may not list itself: it holds its whole log.
                    None if *id == self.shared.id => Some((
                        last_log_index,
                        m.last_log_index.map_or(0, |_| m.current_term),
                    )),
                    None => None,
                });
                let matched_index = matched.map(|(index, _)| index);
                MemberStatus {
                    matched_index,
                    matched_term: matched.map(|(_, term)| term),
                    lag: matched_index.map(|i| last_log_index.saturating_sub(i)),
                    ..MemberStatus::unmeasured(member)
                }
                .with_clock_offset(offsets.get(id).copied())
            })
            .collect();
        let applied_index = m.last_applied.map_or(0, |id| id.index);
        ClusterStatus {
            node_id: self.shared.info.name.clone(),
            role,
            leader_id: leader.as_ref().map(|l| l.id.clone()),
            leader_http: leader.and_then(|l| l.http),
            term: m.current_term,
            members,
            last_log_index,
            commit_index: self.shared.log.committed_index().max(applied_index),
            applied_index,
        }
    }

    fn join(
        &self,
        member: Member,
    ) -> impl std::future::Future<Output = Result<(), WriteError>> + Send {
        let shared = self.shared.clone();
        async move {
            let id = node_id_of(&member.node_id);
            let info = NodeInfo {
                name: member.node_id.clone(),
                http_addr: member.http_addr,
                raft_addr: member.raft_addr,
            };
            let added =
                tokio::time::timeout(JOIN_CATCH_UP, shared.raft.add_learner(id, info, true))
                    .await
                    .map_err(|_| {
                        WriteError::Unavailable(format!(
                            "node {} did not catch up within {} s; it stays a learner",
                            member.node_id,
                            JOIN_CATCH_UP.as_secs()
                        ))
                    })?;
            added.map_err(|e| shared.write_error(e))?;
            if member.voter {
                shared
                    .raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                    .map_err(|e| shared.write_error(e))?;
            }
            Ok(())
        }
    }

    fn leave(
        &self,
        node_id: &str,
    ) -> impl std::future::Future<Output = Result<(), WriteError>> + Send {
        let shared = self.shared.clone();
        let name = node_id.to_string();
        async move {
            let id = node_id_of(&name);
            let (voter, known) = {
                let metrics = shared.raft.metrics();
                let m = metrics.borrow();
                let membership = m.membership_config.membership();
                (
                    membership.voter_ids().any(|v| v == id),
                    membership.get_node(&id).is_some(),
                )
            };
            let change = if voter {
                ChangeMembers::RemoveVoters(BTreeSet::from([id]))
            } else if known {
                ChangeMembers::RemoveNodes(BTreeSet::from([id]))
            } else {
                return Err(WriteError::Rejected(Rejected::Invalid(CoreError::invalid(
                    "node_id",
                    name,
                    "is not a member of the cluster",
                ))));
            };
            shared
                .raft
                .change_membership(change, false)
                .await
                .map_err(|e| shared.write_error(e))?;
            Ok(())
        }
    }
}

/// The leader's clock: while this node leads, proposes `Tick` when the engine's next wake-up
/// has come and `ExpireLeases` once a lease's deadline has passed, then sleeps until the next
/// such instant or until the state changes (an applied entry, a change of leadership).
/// Followers never propose.
async fn clock_loop(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let mut metrics = shared.raft.metrics();
    let mut applied = shared.applied.watch();
    // Set after a tick at this instant left the engine still asking for one: runs that no tick
    // starts are waiting (see `STUCK_RETRY_MS`).
    let mut stuck_at: Option<EpochMs> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if !shared.is_leader() {
            stuck_at = None;
            tokio::select! {
                _ = stop.changed() => {}
                changed = metrics.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let now = shared.clock.now();
        let (wake_any, wake_occurrence, lease) = shared.applied.read(|engine| {
            (
                engine.next_wakeup(true),
                engine.next_wakeup(false),
                engine.next_lease_deadline(),
            )
        });
        let wake = match stuck_at {
            Some(at) => earliest(wake_occurrence, Some(at.saturating_add(STUCK_RETRY_MS))),
            None => wake_any,
        };
        let input = if lease.is_some_and(|until| now > until) {
            Some(Input::ExpireLeases { at: now })
        } else if wake.is_some_and(|at| at <= now) {
            Some(Input::Tick {
                at: now,
                capacity: 0,
                batch: TICK_BATCH,
            })
        } else {
            None
        };
        if let Some(input) = input {
            let ticked = matches!(input, Input::Tick { .. });
            match shared.write(input).await {
                Ok(Output::Expired { runs }) => {
                    shared
                        .lease_expiries
                        .fetch_add(runs.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) if ticked => {
                    let again = shared.applied.read(|engine| engine.next_wakeup(true));
                    stuck_at = again.filter(|at| *at <= now).map(|_| now);
                }
                Ok(_) => {}
                Err(WriteError::NotLeader { .. }) => {}
                // Refusals cannot happen for these inputs; other failures: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
            continue;
        }
        let next = earliest(wake, lease.map(|until| until.saturating_add(1)));
        let pause = next.map_or(Duration::from_secs(3_600), |at| {
            Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0).max(1))
        });
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            changed = applied.changed() => if changed.is_err() { return },
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.changed() => {}
        }
    }
}

fn earliest(a: Option<EpochMs>, b: Option<EpochMs>) -> Option<EpochMs> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
