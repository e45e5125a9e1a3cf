//! `POST /v1/runtime/shutdown`: stops the server gracefully (the embedding server awaits
//! [`super::Shutdown::wait`]).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::Api;
use crate::backend::Backend;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new().route("/v1/runtime/shutdown", post(shutdown::<B>))
}

async fn shutdown<B: Backend>(State(api): State<Arc<Api<B>>>) -> Json<Value> {
    api.shutdown().trigger();
    Json(json!({ "shutting_down": true }))
}
