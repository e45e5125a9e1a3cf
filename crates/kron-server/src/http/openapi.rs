//! `GET /v1/openapi.json`: the API's description (see [`crate::openapi`]).

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::Api;
use crate::backend::Backend;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new().route(
        "/v1/openapi.json",
        get(|| async { Json::<Value>(crate::openapi::document()) }),
    )
}
