//! `GET /healthz`: no token; answers while the process serves, with this node's clock
//! (`now_ms`), which the leader reads to measure members' clock offsets.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Api;
use crate::backend::Backend;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new().route("/healthz", get(health::<B>))
}

async fn health<B: Backend>(State(api): State<Arc<Api<B>>>) -> Json<Value> {
    let status = api.backend.cluster_status();
    Json(json!({
        "ok": true,
        "node_id": status.node_id,
        "role": status.role,
        "now_ms": api.backend.now(),
    }))
}
