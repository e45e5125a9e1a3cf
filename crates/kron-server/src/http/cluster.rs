//! `/v1/cluster`: status, join, leave.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::edge::AuditTarget;
use super::{Api, ApiError, JsonBody};
use crate::backend::{Backend, Member};

/// `POST /v1/cluster/join`: the node is added as a learner and, unless `voter` is false,
/// promoted to voter once it has caught up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub node_id: String,
    pub http_addr: String,
    pub raft_addr: String,
    #[serde(default = "promote")]
    pub voter: bool,
}

fn promote() -> bool {
    true
}

/// What a node that does not lead says about the fields only the leader measures.
const MEASURED_BY_THE_LEADER: &str = "matched_index, matched_term, lag and clock_offset_ms are \
     measured by the leader only (ask leader_http); reads from this node may lag the leader";

/// `POST /v1/cluster/leave`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRequest {
    pub node_id: String,
}

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new()
        .route("/v1/cluster/status", get(status::<B>))
        .route("/v1/cluster/join", post(join::<B>))
        .route("/v1/cluster/leave", post(leave::<B>))
}

async fn status<B: Backend>(State(api): State<Arc<Api<B>>>) -> Json<Value> {
    let s = api.backend.cluster_status();
    let skewed: Vec<&str> = s
        .members
        .iter()
        .filter(|m| m.clock_skewed == Some(true))
        .map(|m| m.member.node_id.as_str())
        .collect();
    let mut answer = json!({
        "raft": "openraft",
        "node_id": s.node_id,
        "role": s.role,
        "leader_id": s.leader_id,
        "leader_http": s.leader_http,
        "term": s.term,
        "members": s.members,
        "last_log_index": s.last_log_index,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
        "clock_skewed": !skewed.is_empty(),
    });
    if s.role != "leader" {
        answer["note"] = json!(MEASURED_BY_THE_LEADER);
    }
    Json(answer)
}

fn required(arg: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::BadRequest(format!(
            "invalid {arg} \"\": must not be empty"
        )));
    }
    Ok(())
}

async fn join<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    JsonBody(req): JsonBody<JoinRequest>,
) -> Result<Response, ApiError> {
    required("node_id", &req.node_id)?;
    required("http_addr", &req.http_addr)?;
    required("raft_addr", &req.raft_addr)?;
    let node = req.node_id.clone();
    api.backend
        .join(Member {
            node_id: req.node_id,
            http_addr: req.http_addr,
            raft_addr: req.raft_addr,
            voter: req.voter,
        })
        .await?;
    let mut response = Json(json!({ "joined": true })).into_response();
    response.extensions_mut().insert(AuditTarget(node));
    Ok(response)
}

async fn leave<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    JsonBody(req): JsonBody<LeaveRequest>,
) -> Result<Response, ApiError> {
    required("node_id", &req.node_id)?;
    api.backend.leave(&req.node_id).await?;
    let mut response = Json(json!({ "left": true })).into_response();
    response.extensions_mut().insert(AuditTarget(req.node_id));
    Ok(response)
}
