//! `/v1/workers`: register, heartbeat, poll (claims with long-poll and batches), and the list
//! of workers this node knows.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use kron_core::engine::{ClaimRequest, ClaimedRun, LeaseError, NEXT_TOKEN};
use kron_core::input::{Input, Output, Rejected};
use kron_core::run::RunId;
use kron_core::time::format_utc;
use kron_core::timer::TaskTarget;
use serde::Deserialize;
use serde_json::{json, Value};

use super::edge::{AuditTarget, NothingWritten};
use super::wire::{claimed_json, tenant_of};
use super::{Api, ApiError, JsonBody};
use crate::auth::Principal;
use crate::backend::Backend;
use crate::workers::WorkerInfo;

/// Most runs one poll claims.
pub const MAX_RUNS: u32 = 1_000;
/// Longest a poll waits for work, in ms.
pub const MAX_WAIT_MS: u64 = 60_000;
/// Longest lease a worker may ask for, in seconds.
pub const MAX_LEASE_SECONDS: u64 = 86_400;

/// `POST /v1/workers/register`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub worker_id: String,
    #[serde(default)]
    pub tasks: Vec<String>,
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// `POST /v1/workers/heartbeat`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub worker_id: String,
}

/// `POST /v1/workers/poll`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    pub worker_id: String,
    /// Default: the tasks the worker registered.
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    /// Given: the answer is `{"runs": [...]}` with up to this many; absent: one run or `null`.
    #[serde(default)]
    pub max_runs: Option<u32>,
    /// Wait up to this long for a run to be due (long-poll).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new()
        .route("/v1/workers", get(list::<B>))
        .route("/v1/workers/register", post(register::<B>))
        .route("/v1/workers/heartbeat", post(heartbeat::<B>))
        .route("/v1/workers/poll", post(poll::<B>))
}

/// Checks a worker id: 1 to 128 characters, no whitespace or control characters.
pub fn check_worker_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::BadRequest(format!(
            "invalid worker_id {id:?}: must be 1 to 128 characters without spaces or control characters"
        )));
    }
    Ok(())
}

fn check_tasks(tasks: &[String]) -> Result<(), ApiError> {
    for task in tasks {
        TaskTarget::new(task, &Value::Null, None)?;
    }
    Ok(())
}

fn worker_json(info: &WorkerInfo, runs_held: usize) -> Value {
    json!({
        "runs_held": runs_held,
        "worker_id": info.worker_id,
        "tasks": info.tasks,
        "lease_seconds": info.lease_seconds,
        "tenant_id": info.tenant,
        "registered_at": format_utc(info.registered_at),
        "last_heartbeat": format_utc(info.last_seen),
    })
}

fn audited(value: Value, target: &str) -> Response {
    let mut response = Json(value).into_response();
    response
        .extensions_mut()
        .insert(AuditTarget(target.to_string()));
    response
}

/// The worker, registered now (with `tasks` and the default lease) if this node does not know
/// it (it registered with another leader, or polls without registering).
fn known_worker<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    worker_id: &str,
    tasks: &[String],
) -> WorkerInfo {
    let now = api.backend.now();
    api.workers.touch(worker_id, now).unwrap_or_else(|| {
        api.workers.register(
            worker_id,
            tasks.to_vec(),
            api.config.default_lease_seconds,
            who.tenant.clone(),
            now,
        )
    })
}

async fn list<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
) -> Json<Vec<Value>> {
    let held: std::collections::HashMap<String, usize> = api
        .backend
        .read(|e| {
            let mut held = std::collections::HashMap::new();
            for (_, lease) in e.leases() {
                *held.entry(lease.worker.clone()).or_insert(0) += 1;
            }
            held
        })
        .await;
    Json(
        api.workers
            .list()
            .iter()
            .filter(|w| who.sees(w.tenant.as_deref()))
            .map(|w| worker_json(w, held.get(&w.worker_id).copied().unwrap_or(0)))
            .collect(),
    )
}

async fn register<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    check_tasks(&req.tasks)?;
    let lease_seconds = match req.lease_seconds {
        None => api.config.default_lease_seconds,
        Some(n) if (1..=MAX_LEASE_SECONDS).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "invalid lease_seconds {n}: must be between 1 and {MAX_LEASE_SECONDS}"
            )))
        }
    };
    let info = api.workers.register(
        &req.worker_id,
        req.tasks,
        lease_seconds,
        who.tenant.clone(),
        api.backend.now(),
    );
    Ok(audited(worker_json(&info, 0), &req.worker_id))
}

/// Extends the lease of every run the worker holds; runs it lost (lease expired and taken
/// away) are listed in `lost`.
async fn heartbeat<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    // A worker this node does not know (it registered with an earlier leader) keeps its runs
    // under the default lease until it registers again; it is not registered here with no
    // tasks, which would let its next poll claim any task.
    let lease_seconds = api
        .workers
        .touch(&req.worker_id, api.backend.now())
        .map_or(api.config.default_lease_seconds, |w| w.lease_seconds);
    let worker = req.worker_id.clone();
    // Only runs of timers the token may see: a worker id of another tenant is not this
    // token's to keep alive.
    let held: Vec<(RunId, u64)> = api
        .backend
        .read(move |e| {
            e.leases()
                .filter(|(_, lease)| lease.worker == worker)
                .filter(|(run, _)| {
                    let def = e.run(run).and_then(|r| e.definition(&r.timer_id));
                    def.is_some_and(|d| who.sees(tenant_of(&d)))
                })
                .map(|(run, lease)| (run.clone(), lease.token))
                .collect()
        })
        .await;
    let at = api.backend.now();
    let until = at + lease_seconds as i64 * 1000;
    let inputs = held
        .iter()
        .map(|(run, token)| Input::ExtendLease {
            at,
            run: run.clone(),
            token: *token,
            lease_until: until,
        })
        .collect();
    // Every lease in one proposal: one commit however many runs the worker holds.
    let answers = api.backend.propose_many(inputs).await?;
    let mut leases = Vec::new();
    let mut lost = Vec::new();
    for ((run, token), answer) in held.into_iter().zip(answers) {
        match answer {
            Ok(_) => leases.push(json!({
                "run_id": run.as_str(),
                "fencing_token": token,
                "lease_expires_at": format_utc(until),
            })),
            Err(Rejected::Lease(
                LeaseError::Expired { .. } | LeaseError::NotLeased(_) | LeaseError::Fenced { .. },
            )) => lost.push(run),
            Err(other) => return Err(other.into()),
        }
    }
    let lost_ids: Vec<&str> = lost.iter().map(RunId::as_str).collect();
    let mut answer = audited(
        json!({ "worker_id": req.worker_id, "leases": leases, "lost": lost_ids }),
        &req.worker_id,
    );
    if leases.is_empty() && lost.is_empty() {
        answer.extensions_mut().insert(NothingWritten);
    }
    Ok(answer)
}

/// What one claim attempt found.
struct Claimed {
    runs: Vec<ClaimedRun>,
    /// When nothing was claimable: when the next matching parked run becomes claimable.
    next: Option<i64>,
}

/// One claim: proposed only when a run the request matches is claimable now. Concurrent polls
/// propose their claims together (one log entry); each gets the next fencing token when it is
/// applied, so no two claims share a token and no run is claimed twice.
async fn claim_once<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    worker: &WorkerInfo,
    tasks: &[String],
    limit: u32,
) -> Result<Claimed, ApiError> {
    let now = api.backend.now();
    let (probe_tasks, probe_tenant) = (tasks.to_vec(), who.tenant.clone());
    let first = api
        .backend
        .read(move |e| e.first_claimable(&probe_tasks, probe_tenant.as_deref()))
        .await;
    match first {
        None => {
            return Ok(Claimed {
                runs: Vec::new(),
                next: None,
            })
        }
        Some(at) if at > now => {
            return Ok(Claimed {
                runs: Vec::new(),
                next: Some(at),
            })
        }
        Some(_) => {}
    }
    let request = ClaimRequest {
        worker: worker.worker_id.clone(),
        tasks: tasks.to_vec(),
        tenant: who.tenant.clone(),
        limit,
        lease_until: now + worker.lease_seconds as i64 * 1000,
        token: NEXT_TOKEN,
    };
    let runs = match api
        .backend
        .propose(Input::Claim { at: now, request })
        .await?
    {
        Output::Claimed { runs } => runs,
        _ => Vec::new(),
    };
    // Retries are scheduled long after their occurrence: only first attempts measure how late
    // a due run is claimed.
    for run in runs.iter().filter(|r| r.attempt == 1) {
        api.metrics.claimed(now - run.scheduled_at);
    }
    Ok(Claimed { runs, next: None })
}

async fn poll<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<PollRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    if let Some(tasks) = &req.tasks {
        check_tasks(tasks)?;
    }
    let limit = match req.max_runs {
        None => 1,
        Some(n) if (1..=MAX_RUNS).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "invalid max_runs {n}: must be between 1 and {MAX_RUNS}"
            )))
        }
    };
    let wait_ms = match req.wait_ms {
        None => 0,
        Some(n) if n <= MAX_WAIT_MS => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "invalid wait_ms {n}: must be between 0 and {MAX_WAIT_MS}"
            )))
        }
    };
    let worker = known_worker(
        &api,
        &who,
        &req.worker_id,
        req.tasks.as_deref().unwrap_or(&[]),
    );
    let tasks = req.tasks.clone().unwrap_or_else(|| worker.tasks.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
    let mut applied = api.backend.applied();
    let shutdown = api.shutdown();
    let runs = loop {
        // Marked seen before looking, so a change after the look wakes the wait below.
        applied.borrow_and_update();
        let claimed = claim_once(&api, &who, &worker, &tasks, limit).await?;
        let now = tokio::time::Instant::now();
        if !claimed.runs.is_empty() || now >= deadline || shutdown.is_triggered() {
            break claimed.runs;
        }
        // Woken by the log (a tick parked runs, a lease expired), or when a run parked ahead
        // of its instant becomes claimable, whichever comes first.
        let wake = claimed.next.map_or(deadline, |at| {
            let ms = u64::try_from(at - api.backend.now()).unwrap_or(0);
            deadline.min(now + Duration::from_millis(ms))
        });
        tokio::select! {
            changed = tokio::time::timeout_at(wake, applied.changed()) => {
                if matches!(changed, Ok(Err(_))) {
                    break Vec::new();
                }
            }
            () = shutdown.wait() => break Vec::new(),
        }
    };
    let claimed: Vec<Value> = runs.iter().map(claimed_json).collect();
    let body = if req.max_runs.is_some() {
        json!({ "runs": claimed })
    } else {
        claimed.into_iter().next().unwrap_or(Value::Null)
    };
    let mut answer = audited(body, &req.worker_id);
    if runs.is_empty() {
        answer.extensions_mut().insert(NothingWritten);
    } else {
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        answer.extensions_mut().insert(AuditTarget(format!(
            "{} claimed {}",
            req.worker_id,
            ids.join(",")
        )));
    }
    Ok(answer)
}
