//! Runs in progress and failures, and (server mode) workers, cluster members and tenants.

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

/// A run that died (its last attempt failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadRun {
    pub timer: String,
    pub run_id: Option<String>,
    pub at: EpochMs,
    pub attempt: Option<u32>,
    pub error: Option<String>,
}

/// The runs page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub now: EpochMs,
    /// Runs in flight, running ones first.
    pub running: Vec<RunRow>,
    /// Dead runs of the last 24 hours, newest first.
    pub dead: Vec<DeadRun>,
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
