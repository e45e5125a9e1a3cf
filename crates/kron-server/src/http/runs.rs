//! `/v1/runs`: a worker reports its attempt's outcome under its fencing token, one run at a
//! time or in a batch. The engine checks the token when the report is applied: a report for a
//! run no longer leased under that token changes nothing and is answered 400 ("stale fencing
//! token" or "run not active").

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use kron_core::engine::Outcome;
use kron_core::input::Input;
use kron_core::run::RunId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::edge::AuditTarget;
use super::wire::tenant_of;
use super::workers::check_worker_id;
use super::{Api, ApiError, JsonBody};
use crate::auth::Principal;
use crate::backend::Backend;
use crate::metrics::RunOutcome;

/// Most reports in one batch.
pub const MAX_BATCH: usize = 1_000;

/// `POST /v1/runs/{run_id}/succeed`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SucceedRequest {
    pub worker_id: String,
    pub fencing_token: u64,
    /// How long the attempt ran (default 0).
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// `POST /v1/runs/{run_id}/fail`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub worker_id: String,
    pub fencing_token: u64,
    /// The error: type, message and traceback.
    pub error: String,
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// One report of `POST /v1/runs/complete`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub run_id: String,
    pub fencing_token: u64,
    /// "succeeded" or "failed".
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

/// `POST /v1/runs/complete`: many reports of one worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub worker_id: String,
    pub results: Vec<Report>,
}

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new()
        .route("/v1/runs/complete", post(batch::<B>))
        .route("/v1/runs/{run_id}/succeed", post(succeed::<B>))
        .route("/v1/runs/{run_id}/fail", post(fail::<B>))
}

/// A report that passed the checks made before proposing.
struct Checked {
    input: Input,
    succeeded: bool,
}

/// Checks reports of `worker_id` against this node's applied state, in one read: a run of a
/// timer the token may not see is 404; a run leased under the same token to another worker is
/// refused. What passes becomes an `Input::Complete`, whose token the engine checks again when
/// the entry is applied.
async fn check_reports<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    worker_id: &str,
    reports: Vec<(String, u64, Outcome)>,
) -> Vec<Result<Checked, ApiError>> {
    let ids: Vec<RunId> = reports
        .iter()
        .map(|(id, _, _)| RunId::from(id.as_str()))
        .collect();
    let facts = api
        .backend
        .read(move |e| {
            ids.iter()
                .map(|run| {
                    let tenant = e
                        .run(run)
                        .and_then(|r| e.definition(&r.timer_id))
                        .map(|d| tenant_of(&d).map(str::to_string));
                    let holder = e.lease(run).map(|l| (l.worker.clone(), l.token));
                    (tenant, holder)
                })
                .collect::<Vec<_>>()
        })
        .await;
    let at = api.backend.now();
    reports
        .into_iter()
        .zip(facts)
        .map(|((run_id, token, outcome), (timer_tenant, holder))| {
            if let Some(tenant) = timer_tenant {
                if !who.sees(tenant.as_deref()) {
                    return Err(ApiError::NotFound(format!("no run {run_id:?}")));
                }
            }
            // The token is what the engine checks; a matching token sent by another worker is
            // somebody else's lease all the same.
            if let Some((holder, held)) = holder {
                if held == token && holder != worker_id {
                    return Err(ApiError::BadRequest(format!(
                        "run not active: run {run_id} is leased by another worker"
                    )));
                }
            }
            let succeeded = matches!(outcome, Outcome::Succeeded { .. });
            Ok(Checked {
                input: Input::Complete {
                    at,
                    run: RunId::from(run_id),
                    token,
                    outcome,
                },
                succeeded,
            })
        })
        .collect()
}

/// Checks and proposes reports together (one log entry); each one's result, in order.
async fn report_all<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    worker_id: &str,
    reports: Vec<(String, u64, Outcome)>,
) -> Result<Vec<Result<(), ApiError>>, ApiError> {
    let checked = check_reports(api, who, worker_id, reports).await;
    let inputs: Vec<Input> = checked
        .iter()
        .flatten()
        .map(|report| report.input.clone())
        .collect();
    let mut answers = api.backend.propose_many(inputs).await?.into_iter();
    let (mut succeeded, mut failed) = (0, 0);
    let results = checked
        .into_iter()
        .map(|item| {
            let report = item?;
            match answers.next() {
                Some(Ok(_)) => {
                    if report.succeeded {
                        succeeded += 1;
                    } else {
                        failed += 1;
                    }
                    Ok(())
                }
                Some(Err(rejected)) => Err(ApiError::from(rejected)),
                None => Err(ApiError::Unavailable(
                    "the report was not answered".to_string(),
                )),
            }
        })
        .collect();
    api.metrics.run_finished(RunOutcome::Succeeded, succeeded);
    api.metrics.run_finished(RunOutcome::Failed, failed);
    Ok(results)
}

/// Proposes one report; the caller answers its error.
async fn report<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    worker_id: &str,
    run_id: &str,
    token: u64,
    outcome: Outcome,
) -> Result<(), ApiError> {
    let reports = vec![(run_id.to_string(), token, outcome)];
    match report_all(api, who, worker_id, reports).await?.pop() {
        Some(result) => result,
        None => Err(ApiError::Unavailable(
            "the report was not answered".to_string(),
        )),
    }
}

fn answered(run_id: &str, worker_id: &str) -> Response {
    let mut response = Json(json!({ "run_id": run_id, "ok": true })).into_response();
    response
        .extensions_mut()
        .insert(AuditTarget(format!("{run_id} by {worker_id}")));
    response
}

async fn succeed<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(run_id): Path<String>,
    JsonBody(req): JsonBody<SucceedRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    let outcome = Outcome::Succeeded {
        duration_ms: req.duration_ms.unwrap_or(0),
    };
    report(
        &api,
        &who,
        &req.worker_id,
        &run_id,
        req.fencing_token,
        outcome,
    )
    .await?;
    Ok(answered(&run_id, &req.worker_id))
}

async fn fail<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(run_id): Path<String>,
    JsonBody(req): JsonBody<FailRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    let outcome = Outcome::Failed {
        error: req.error,
        duration_ms: req.duration_ms.unwrap_or(0),
    };
    report(
        &api,
        &who,
        &req.worker_id,
        &run_id,
        req.fencing_token,
        outcome,
    )
    .await?;
    Ok(answered(&run_id, &req.worker_id))
}

/// Every report is applied on its own: the answer lists each one's result, in order
/// (`{"run_id", "ok": true}` or `{"run_id", "ok": false, "status", "error"}`).
async fn batch<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(req): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    check_worker_id(&req.worker_id)?;
    if req.results.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "invalid results: {} reports; at most {MAX_BATCH} per request",
            req.results.len()
        )));
    }
    let mut reports = Vec::with_capacity(req.results.len());
    for item in &req.results {
        let outcome = match item.status.as_str() {
            "succeeded" => Outcome::Succeeded {
                duration_ms: item.duration_ms.unwrap_or(0),
            },
            "failed" => Outcome::Failed {
                error: item.error.clone().unwrap_or_default(),
                duration_ms: item.duration_ms.unwrap_or(0),
            },
            other => {
                return Err(ApiError::BadRequest(format!(
                "invalid results: status {other:?} of run {:?} must be one of succeeded, failed",
                item.run_id
            )))
            }
        };
        reports.push((item.run_id.clone(), item.fencing_token, outcome));
    }
    // One proposal for the whole batch: one log entry, one commit, applied report by report.
    let results = report_all(&api, &who, &req.worker_id, reports).await?;
    let mut answers = Vec::with_capacity(results.len());
    for (item, result) in req.results.iter().zip(results) {
        answers.push(match result {
            Ok(()) => json!({ "run_id": item.run_id, "ok": true }),
            // Leadership is lost for the whole batch: the client resends it to the leader.
            Err(e @ (ApiError::NotLeader(_) | ApiError::Unavailable(_))) => return Err(e),
            Err(e) => json!({
                "run_id": item.run_id,
                "ok": false,
                "status": e.status().as_u16(),
                "error": e.message(),
            }),
        });
    }
    let ok = answers
        .iter()
        .filter(|a| a["ok"] == Value::Bool(true))
        .count();
    let mut response = Json(json!({ "results": answers })).into_response();
    response.extensions_mut().insert(AuditTarget(format!(
        "{} reports by {} ({ok} applied)",
        req.results.len(),
        req.worker_id
    )));
    Ok(response)
}
