//! Server mode: workers claim due runs of task timers under leases with fencing tokens.
//!
//! A tick does not start a task timer's due run (no callback of this process runs it): it
//! parks it, claimable. A worker's claim starts parked runs of the tasks (and tenant) it asks
//! for, oldest first: each gets `RUN_STARTED` and a lease held by the worker until a deadline,
//! under the claim's fencing token. Tokens only grow: a claim with a token not above every
//! earlier one is refused, so a token identifies one claim for good. The worker reports the
//! outcome with its token ([`Input::Complete`](crate::input::Input::Complete)); a report under
//! another token (the lease expired and the run went to someone else, or a stale worker) is
//! refused and changes nothing. It may extend the lease while it works. A lease past its
//! deadline expires ([`Input::ExpireLeases`](crate::input::Input::ExpireLeases)): the attempt
//! counts as interrupted and the run is retried at once under its attempt budget, like a run
//! interrupted by the end of a process.
//!
//! Duplicates: a worker that goes on past an expired lease may run the task alongside the next
//! claimant; its report is refused. Workers must treat the fencing token as the run's identity
//! towards anything they write.

use serde::{Deserialize, Serialize};

use super::{Engine, TimerKey};
use crate::engine::Outcome;
use crate::event::{EventDetail, EventKind};
use crate::run::{RunId, RunPhase};
use crate::time::EpochMs;
use crate::timer::Lifecycle;

/// Why an expired lease's attempt ended.
pub const LEASE_EXPIRED: &str = "interrupted: the worker's lease expired before it reported";

/// A claimed run's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub worker: String,
    /// The attempt may be reported until this instant (inclusive).
    pub until: EpochMs,
    /// The claim's fencing token.
    pub token: u64,
}

/// A run a worker claimed, with everything it needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedRun {
    pub run_id: RunId,
    pub timer_id: String,
    pub task: String,
    /// The timer's payload, canonical JSON text.
    pub payload: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub attempt: u32,
    pub scheduled_at: EpochMs,
    pub token: u64,
    pub lease_until: EpochMs,
}

/// Why a claim or a worker's report was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("fencing token {token} is not above the last one issued ({last})")]
    StaleToken { token: u64, last: u64 },
    #[error("lease_until {until} is not after the claim's instant {at}")]
    LeaseInPast { until: EpochMs, at: EpochMs },
    #[error("run {0} is not running under a lease")]
    NotLeased(RunId),
    #[error("run {run} is leased under fencing token {held}, not {given}")]
    Fenced { run: RunId, held: u64, given: u64 },
    #[error("the lease of run {run} expired at {until}")]
    Expired { run: RunId, until: EpochMs },
}

/// What a worker asks for. See [`Input::Claim`](crate::input::Input::Claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub worker: String,
    /// Task names the worker runs; empty: any.
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Only timers of this tenant (`None`: only timers of no tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// At most this many runs.
    pub limit: u32,
    pub lease_until: EpochMs,
    /// The fencing token of this claim: above every earlier one, or [`NEXT_TOKEN`].
    pub token: u64,
}

/// A [`ClaimRequest::token`] asking the engine for the token after the last one it issued.
pub const NEXT_TOKEN: u64 = 0;

impl Engine {
    /// Moves a task timer's due run out of the start queue into the claimable ones.
    pub(super) fn park(&mut self, fire_at: EpochMs, run_id: RunId) {
        self.claimable.insert((fire_at, run_id.sort_key(), run_id));
    }

    /// Takes the timer's runs out of the claimable ones (its target changed).
    pub(super) fn unpark_runs_of(&mut self, id: &str) {
        let runs = &self.runs;
        self.claimable
            .retain(|(_, _, run)| runs.get(run).is_none_or(|r| r.timer_id != id));
    }

    /// Starts up to `limit` parked runs the request matches, oldest first, under one lease.
    pub(crate) fn claim(
        &mut self,
        req: ClaimRequest,
        at: EpochMs,
    ) -> Result<Vec<ClaimedRun>, LeaseError> {
        // 0: the next token, decided here, so that claims proposed together (each not knowing
        // the others) still get distinct, increasing tokens.
        let token = if req.token == NEXT_TOKEN {
            self.last_token + 1
        } else {
            req.token
        };
        if token <= self.last_token {
            return Err(LeaseError::StaleToken {
                token,
                last: self.last_token,
            });
        }
        if req.lease_until <= at {
            return Err(LeaseError::LeaseInPast {
                until: req.lease_until,
                at,
            });
        }
        self.last_token = token;
        let mut claimed = Vec::new();
        let mut stale = Vec::new();
        let mut chosen: Vec<(EpochMs, u128, RunId, TimerKey)> = Vec::new();
        for entry in &self.claimable {
            if chosen.len() >= req.limit as usize || entry.0 > at {
                break;
            }
            let (fire_at, _, run_id) = entry;
            let current = self
                .runs
                .get(run_id)
                .filter(|r| r.phase != RunPhase::Running && r.fire_at == *fire_at);
            let Some(run) = current else {
                stale.push(entry.clone());
                continue;
            };
            let Some((key, timer)) = self
                .timers
                .key(&run.timer_id)
                .and_then(|key| Some((key, self.timers.at(key)?)))
            else {
                stale.push(entry.clone());
                continue;
            };
            let Some(task) = timer.policy.task.as_deref() else {
                stale.push(entry.clone());
                continue;
            };
            // Held (paused, orphaned): out of the claimable runs until released.
            if timer.lifecycle == Lifecycle::Orphaned
                || (timer.lifecycle == Lifecycle::Paused && !run.manual)
            {
                stale.push(entry.clone());
                continue;
            }
            let wanted = req.tasks.is_empty() || req.tasks.iter().any(|t| **t == *task.task);
            if wanted && task.tenant.as_deref() == req.tenant.as_deref() {
                chosen.push((entry.0, entry.1, entry.2.clone(), key));
            }
        }
        for entry in stale {
            self.claimable.remove(&entry);
        }
        for (fire_at, sort_key, run_id, key) in chosen {
            self.claimable.remove(&(fire_at, sort_key, run_id.clone()));
            let Some(dispatch) = self.begin_attempt(key, &run_id, fire_at, at) else {
                continue;
            };
            let lease = Lease {
                worker: req.worker.clone(),
                until: req.lease_until,
                token,
            };
            self.leases.insert(run_id.clone(), lease);
            let detail = EventDetail {
                scheduled_at: Some(dispatch.scheduled_at),
                worker: Some(req.worker.clone()),
                fencing_token: Some(token),
                ..Default::default()
            };
            self.emit(
                at,
                &dispatch.timer_id,
                EventKind::RunClaimed,
                Some((&run_id, dispatch.attempt)),
                detail,
            );
            let Some(task) = self.timers.at(key).and_then(|t| t.policy.task.clone()) else {
                continue;
            };
            claimed.push(ClaimedRun {
                run_id,
                timer_id: dispatch.timer_id,
                task: task.task.to_string(),
                payload: task.payload.to_string(),
                tenant: task.tenant.as_deref().map(str::to_string),
                attempt: dispatch.attempt,
                scheduled_at: dispatch.scheduled_at,
                token,
                lease_until: req.lease_until,
            });
        }
        Ok(claimed)
    }

    /// The lease of a running run, checked against the worker's token and the instant.
    fn held_lease(&self, run: &RunId, token: u64, at: EpochMs) -> Result<&Lease, LeaseError> {
        let lease = self
            .leases
            .get(run)
            .ok_or_else(|| LeaseError::NotLeased(run.clone()))?;
        if lease.token != token {
            return Err(LeaseError::Fenced {
                run: run.clone(),
                held: lease.token,
                given: token,
            });
        }
        if at > lease.until {
            return Err(LeaseError::Expired {
                run: run.clone(),
                until: lease.until,
            });
        }
        Ok(lease)
    }

    /// Moves a lease's deadline (later or earlier), for the worker holding it.
    pub(crate) fn extend_lease(
        &mut self,
        run: &RunId,
        token: u64,
        until: EpochMs,
        at: EpochMs,
    ) -> Result<(), LeaseError> {
        self.held_lease(run, token, at)?;
        if until <= at {
            return Err(LeaseError::LeaseInPast { until, at });
        }
        if let Some(lease) = self.leases.get_mut(run) {
            lease.until = until;
        }
        Ok(())
    }

    /// A worker's report of its attempt, under its fencing token.
    pub(crate) fn complete(
        &mut self,
        run: &RunId,
        token: u64,
        outcome: Outcome,
        at: EpochMs,
    ) -> Result<(), LeaseError> {
        self.held_lease(run, token, at)?;
        self.finish(run, outcome, at);
        Ok(())
    }

    /// The earliest lease deadline, if any run is leased: at the first instant after it,
    /// [`Input::ExpireLeases`](crate::input::Input::ExpireLeases) has something to expire.
    pub fn next_lease_deadline(&self) -> Option<EpochMs> {
        self.leases.values().map(|lease| lease.until).min()
    }

    /// Ends every lease past its deadline by `at`, in run id order: `RUN_INTERRUPTED`, then a
    /// retry at once under the attempt budget (or `RUN_DEAD`).
    pub(crate) fn expire_leases(&mut self, at: EpochMs) -> Vec<RunId> {
        let expired: Vec<RunId> = self
            .leases
            .iter()
            .filter(|(_, lease)| lease.until < at)
            .map(|(run, _)| run.clone())
            .collect();
        for run_id in &expired {
            let lease = self.leases.remove(run_id);
            let Some(run) = self.runs.get(run_id) else {
                continue;
            };
            let (timer_id, attempt, scheduled_at) =
                (run.timer_id.clone(), run.attempt, run.scheduled_at);
            if let Some(lease) = lease {
                let detail = EventDetail {
                    scheduled_at: Some(scheduled_at),
                    worker: Some(lease.worker),
                    fencing_token: Some(lease.token),
                    ..Default::default()
                };
                self.emit(
                    at,
                    &timer_id,
                    EventKind::RunLeaseExpired,
                    Some((run_id, attempt)),
                    detail,
                );
            }
            let detail = EventDetail {
                scheduled_at: Some(scheduled_at),
                error: Some(LEASE_EXPIRED.to_string()),
                ..Default::default()
            };
            self.emit(
                at,
                &timer_id,
                EventKind::RunInterrupted,
                Some((run_id, attempt)),
                detail,
            );
            self.settle_failure(run_id, LEASE_EXPIRED.to_string(), at, false);
        }
        expired
    }
}

/// Read-only views of claims, for a server's worker protocol and metrics.
impl Engine {
    /// The highest fencing token a claim used: the next claim must use a higher one.
    pub fn last_token(&self) -> u64 {
        self.last_token
    }

    /// The lease a claimed run is running under, if it is.
    pub fn lease(&self, run: &RunId) -> Option<&Lease> {
        self.leases.get(run)
    }

    /// Every lease, by run id.
    pub fn leases(&self) -> impl Iterator<Item = (&RunId, &Lease)> {
        self.leases.iter()
    }

    /// A run in flight (due, running or waiting to retry); finished runs are gone.
    pub fn run(&self, run: &RunId) -> Option<&crate::run::RunRecord> {
        self.runs.get(run)
    }

    /// Every run in flight (due, running or waiting to retry), in no particular order.
    pub fn runs(&self) -> impl Iterator<Item = &crate::run::RunRecord> {
        self.runs.values()
    }

    /// Runs currently held by workers under leases.
    pub fn lease_count(&self) -> usize {
        self.leases.len()
    }

    /// Whether a claim for `tasks` (empty: any) of `tenant` at `at` would start at least one
    /// parked run: lets a server skip proposing a claim that can only come back empty.
    pub fn has_claimable(&self, tasks: &[String], tenant: Option<&str>, at: EpochMs) -> bool {
        self.first_claimable(tasks, tenant)
            .is_some_and(|fire_at| fire_at <= at)
    }

    /// When the oldest parked run a claim for `tasks` (empty: any) of `tenant` could start
    /// becomes claimable (a tick parks runs a little ahead of their instant): a waiting worker
    /// is woken then.
    pub fn first_claimable(&self, tasks: &[String], tenant: Option<&str>) -> Option<EpochMs> {
        self.claimable
            .iter()
            .find(|(fire_at, _, run_id)| {
                let Some(run) = self
                    .runs
                    .get(run_id)
                    .filter(|r| r.phase != RunPhase::Running && r.fire_at == *fire_at)
                else {
                    return false;
                };
                let Some(timer) = self.timers.get(&run.timer_id) else {
                    return false;
                };
                let Some(task) = timer.policy.task.as_deref() else {
                    return false;
                };
                let held = timer.lifecycle == Lifecycle::Orphaned
                    || (timer.lifecycle == Lifecycle::Paused && !run.manual);
                let wanted = tasks.is_empty() || tasks.iter().any(|t| **t == *task.task);
                !held && wanted && task.tenant.as_deref() == tenant
            })
            .map(|(fire_at, _, _)| *fire_at)
    }

    /// Parked runs waiting for a worker (due or not yet), of every task and tenant.
    pub fn claimable_count(&self) -> usize {
        self.claimable.len()
    }
}
