//! `/v1/timers`: create or update, list, status, history, pause, resume, trigger, remove. A
//! tenant's token sees and writes only its tenant's timers: any other is 404 to it.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use kron_core::input::{Input, Output};
use kron_core::timer::TimerDef;
use serde_json::{json, Value};

use super::edge::AuditTarget;
use super::wire::{event_json, status_json, tenant_of, timer_def};
use super::{Api, ApiError, JsonBody};
use crate::auth::Principal;
use crate::backend::Backend;

/// Largest `limit` of a history request.
pub const MAX_HISTORY_LIMIT: u64 = 100_000;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new()
        .route("/v1/timers", post(create::<B>).get(list::<B>))
        .route("/v1/timers/{name}", get(status::<B>).delete(remove::<B>))
        .route("/v1/timers/{name}/history", get(history::<B>))
        .route("/v1/timers/{name}/pause", post(pause::<B>))
        .route("/v1/timers/{name}/resume", post(resume::<B>))
        .route("/v1/timers/{name}/trigger", post(trigger::<B>))
}

/// A JSON answer whose audit record names `target`.
fn answer(value: Value, target: &str) -> Response {
    let mut response = Json(value).into_response();
    response
        .extensions_mut()
        .insert(AuditTarget(target.to_string()));
    response
}

/// The timer's definition, if it exists.
async fn definition<B: Backend>(api: &Api<B>, name: &str) -> Option<TimerDef> {
    let name = name.to_string();
    api.backend.read(move |e| e.definition(&name)).await
}

/// The timer's definition if `who` may see it, else 404.
async fn visible<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    name: &str,
) -> Result<TimerDef, ApiError> {
    match definition(api, name).await {
        Some(def) if who.sees(tenant_of(&def)) => Ok(def),
        _ => Err(ApiError::no_timer(name)),
    }
}

async fn status_of<B: Backend>(api: &Api<B>, name: &str) -> Result<Value, ApiError> {
    let id = name.to_string();
    api.backend
        .read(move |e| e.view(&id))
        .await
        .map(|view| status_json(&view))
        .ok_or_else(|| ApiError::no_timer(name))
}

async fn create<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let asked = match body.get("tenant_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "tenant_id must be a string, got {other}"
            )))
        }
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    let existing = if name.is_empty() {
        None
    } else {
        definition(&api, name).await
    };
    let tenant: Option<String> = match (&who.tenant, asked) {
        (Some(mine), Some(asked)) if asked != mine => {
            return Err(ApiError::BadRequest(format!(
                "invalid tenant_id {asked:?}: this token writes only tenant {mine:?}'s timers"
            )))
        }
        (Some(mine), _) => Some(mine.clone()),
        // A token of no tenant that does not name one keeps the timer's tenant.
        (None, None) => existing
            .as_ref()
            .and_then(|d| tenant_of(d).map(str::to_string)),
        (None, Some(asked)) => Some(asked.to_string()),
    };
    if let Some(existing) = &existing {
        if !who.sees(tenant_of(existing)) {
            return Err(ApiError::Conflict(format!(
                "timer name {name:?} is not available"
            )));
        }
    }
    let def = timer_def(&body, tenant.as_deref())?;
    let id = def.id.to_string();
    let at = api.backend.now();
    api.backend.propose(Input::Register { at, def }).await?;
    Ok(answer(status_of(&api, &id).await?, &id))
}

async fn list<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
) -> Json<Vec<Value>> {
    let views = api.backend.read(|e| e.views()).await;
    Json(
        views
            .iter()
            .filter(|v| who.sees(tenant_of(&v.record.def)))
            .map(status_json)
            .collect(),
    )
}

async fn status<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible(&api, &who, &name).await?;
    Ok(Json(status_of(&api, &name).await?))
}

/// `limit` from the query string (default 100).
fn history_limit(query: Option<&str>) -> Result<usize, ApiError> {
    let mut limit = 100u64;
    for pair in query.unwrap_or_default().split('&') {
        let Some(("limit", text)) = pair.split_once('=') else {
            continue;
        };
        limit = text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_HISTORY_LIMIT)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid limit {text:?}: must be a whole number from 0 to {MAX_HISTORY_LIMIT}"
                ))
            })?;
    }
    Ok(limit as usize)
}

async fn history<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<Value>>, ApiError> {
    let limit = history_limit(query.as_deref())?;
    match definition(&api, &name).await {
        Some(def) if !who.sees(tenant_of(&def)) => return Err(ApiError::no_timer(&name)),
        // A removed timer's history stays; whose it was is not known, so only a token of no
        // tenant reads it.
        None if who.tenant.is_some() => return Err(ApiError::no_timer(&name)),
        _ => {}
    }
    let events = api
        .backend
        .history(&name, limit)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(events.iter().map(event_json).collect()))
}

async fn command<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    name: &str,
    input: impl FnOnce(i64, String) -> Input,
) -> Result<Output, ApiError> {
    visible(api, who, name).await?;
    let at = api.backend.now();
    Ok(api.backend.propose(input(at, name.to_string())).await?)
}

async fn pause<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    command(&api, &who, &name, |at, timer| Input::Pause { at, timer }).await?;
    Ok(answer(status_of(&api, &name).await?, &name))
}

async fn resume<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    command(&api, &who, &name, |at, timer| Input::Resume { at, timer }).await?;
    Ok(answer(status_of(&api, &name).await?, &name))
}

async fn trigger<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let output = command(&api, &who, &name, |at, timer| Input::Trigger { at, timer }).await?;
    let run_id = match output {
        Output::Triggered { run } => Value::String(run.as_str().to_string()),
        _ => Value::Null,
    };
    Ok(answer(json!({ "run_id": run_id }), &name))
}

async fn remove<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    command(&api, &who, &name, |at, timer| Input::Remove { at, timer }).await?;
    Ok(answer(json!({ "removed": true }), &name))
}
