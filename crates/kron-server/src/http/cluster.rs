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

/// `POST /v1/cluster/join`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub node_id: String,
    pub http_addr: String,
    pub raft_addr: String,
}

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
    Json(json!({
        "raft": "openraft",
        "node_id": s.node_id,
        "role": s.role,
        "leader_id": s.leader_id,
        "leader_http": s.leader_http,
        "term": s.term,
        "members": s.members,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
    }))
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
            voter: false,
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
