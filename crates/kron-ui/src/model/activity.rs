//! Runs in progress and failures, and (server mode) workers, cluster members and tenants.

use kron_core::event::StoredEvent;
use kron_core::run::{RunPhase, RunRecord};
use kron_core::time::EpochMs;
use serde::Serialize;

/// A run in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub timer: String,
    pub run_id: String,
    pub attempt: u32,
    /// `due`, `running`, `retry_wait`.
    pub phase: &'static str,
    pub scheduled_at: EpochMs,
    /// When it starts (due, retry_wait) or started (running).
    pub fire_at: EpochMs,
    pub manual: bool,
    /// Server mode: the worker holding its lease, and until when.
    pub worker: Option<String>,
    pub lease_until: Option<EpochMs>,
}

impl RunRow {
    pub fn from_run(run: &RunRecord) -> RunRow {
        RunRow {
            timer: run.timer_id.clone(),
            run_id: run.run_id.as_str().to_string(),
            attempt: run.attempt,
            phase: match run.phase {
                RunPhase::Due => "due",
                RunPhase::Running => "running",
                RunPhase::RetryWait => "retry_wait",
            },
            scheduled_at: run.scheduled_at,
            fire_at: run.fire_at,
            manual: run.manual,
            worker: None,
            lease_until: None,
        }
    }
}

/// How far back the runs page lists dead runs: a day.
pub const DEAD_WINDOW_MS: i64 = 86_400_000;

/// The newest dead runs the runs page lists; [`Activity::dead_total`] counts them all.
pub const DEAD_SHOWN: usize = 100;

/// A run that died (its last attempt failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadRun {
    pub timer: String,
    pub run_id: Option<String>,
    pub at: EpochMs,
    pub attempt: Option<u32>,
    pub error: Option<String>,
}

impl DeadRun {
    /// The run a `RUN_DEAD` event reports.
    pub fn from_event(stored: &StoredEvent) -> DeadRun {
        DeadRun {
            timer: stored.event.timer_id.clone(),
            run_id: stored.event.run_id.as_ref().map(|r| r.as_str().to_string()),
            at: stored.event.ts,
            attempt: stored.event.attempt,
            error: stored.event.detail.error.clone(),
        }
    }
}

/// The runs page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub now: EpochMs,
    /// Runs in flight, running ones first.
    pub running: Vec<RunRow>,
    /// Dead runs of the last 24 hours, newest first: at most [`DEAD_SHOWN`].
    pub dead: Vec<DeadRun>,
    /// How many runs died in the last 24 hours (of the timers the viewer may see), those not
    /// listed included.
    pub dead_total: u64,
}

/// A registered worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRow {
    pub worker_id: String,
    pub tasks: Vec<String>,
    pub last_heartbeat: EpochMs,
    /// Runs it holds leases on now.
    pub runs_held: usize,
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    pub node_id: String,
    pub http_addr: String,
    /// `leader`, `voter` or `learner`.
    pub role: &'static str,
    /// The last log index the leader knows this member holds, and that entry's term (the
    /// current term once it holds an entry of this leader's). Measured by the leader only:
    /// `None` on any other node.
    pub matched_index: Option<u64>,
    pub term: Option<u64>,
    /// Entries of the leader's log this member does not hold yet (leader only, as above).
    pub lag: Option<u64>,
}

/// Timers per tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRow {
    /// `None`: timers of no tenant.
    pub tenant: Option<String>,
    pub timers: usize,
}

/// The cluster page (server mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    pub now: EpochMs,
    /// This node.
    pub node_id: String,
    /// This node's role: leader, follower, candidate, learner.
    pub role: &'static str,
    pub term: u64,
    pub leader_id: Option<String>,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Committed entries this node has not applied yet.
    pub lag: u64,
    pub members: Vec<MemberRow>,
    pub workers: Vec<WorkerRow>,
    pub tenants: Vec<TenantRow>,
}
