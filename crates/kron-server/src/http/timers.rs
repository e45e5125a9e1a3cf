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

/// Most timers one `POST /v1/timers:batch` creates.
pub const MAX_BATCH_TIMERS: usize = 1_000;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new()
        .route("/v1/timers", post(create::<B>).get(list::<B>))
        .route("/v1/timers:batch", post(create_batch::<B>))
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

/// The definition `body` asks for, with the tenant `who` may give it: checked against the
/// timer of that name, if there is one.
async fn requested_def<B: Backend>(
    api: &Api<B>,
    who: &Principal,
    body: &Value,
) -> Result<TimerDef, ApiError> {
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
        definition(api, name).await
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
    timer_def(body, tenant.as_deref())
}

async fn create<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let def = requested_def(&api, &who, &body).await?;
    let id = def.id.to_string();
    let at = api.backend.now();
    api.backend.propose(Input::Register { at, def }).await?;
    Ok(answer(status_of(&api, &id).await?, &id))
}

/// `timers[i]` (and the timer's name, when it has one) in front of an item's error.
fn item_error(index: usize, item: &Value, error: ApiError) -> ApiError {
    let name = item.get("name").and_then(Value::as_str);
    let at = match name {
        Some(name) => format!("timers[{index}] (name {name:?})"),
        None => format!("timers[{index}]"),
    };
    match error {
        ApiError::BadRequest(m) => ApiError::BadRequest(format!("invalid {at}: {m}")),
        ApiError::Conflict(m) => ApiError::Conflict(format!("{at}: {m}")),
        other => other,
    }
}

/// `POST /v1/timers:batch` with `{"timers": [timer, ...]}`: creates or updates up to
/// [`MAX_BATCH_TIMERS`] timers, each read exactly as `POST /v1/timers` reads one. Every item is
/// checked before anything is proposed, so one bad item refuses the batch (naming its index and
/// field) and nothing is written; then all are proposed together, as one log entry. (The
/// engine applies a definition that passed these checks; should it still refuse one, that item
/// is named in the error and the others stay applied, as separate requests would.)
async fn create_batch<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(fields) = &body else {
        return Err(ApiError::BadRequest(format!(
            "the body must be a JSON object {{\"timers\": [...]}}, got {body}"
        )));
    };
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != "timers") {
        return Err(ApiError::BadRequest(format!(
            "unknown field {unknown:?}: the only field is timers"
        )));
    }
    let items = match fields.get("timers") {
        Some(Value::Array(items)) => items,
        None => return Err(ApiError::BadRequest("timers is required".to_string())),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "timers must be an array of timers, got {other}"
            )))
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH_TIMERS {
        return Err(ApiError::BadRequest(format!(
            "invalid timers: {} given, must be 1 to {MAX_BATCH_TIMERS}",
            items.len()
        )));
    }
    let mut defs = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let def = requested_def(&api, &who, item)
            .await
            .map_err(|e| item_error(index, item, e))?;
        if !seen.insert(def.id.to_string()) {
            return Err(item_error(
                index,
                item,
                ApiError::BadRequest(format!("name {:?} is given twice in one batch", &*def.id)),
            ));
        }
        defs.push(def);
    }
    let ids: Vec<String> = defs.iter().map(|d| d.id.to_string()).collect();
    let at = api.backend.now();
    let inputs = defs
        .into_iter()
        .map(|def| Input::Register { at, def })
        .collect();
    let answers = api.backend.propose_many(inputs).await?;
    for (index, answered) in answers.into_iter().enumerate() {
        if let Err(rejected) = answered {
            return Err(item_error(index, &items[index], rejected.into()));
        }
    }
    let wanted = ids.clone();
    let statuses: Vec<Value> = api
        .backend
        .read(move |e| {
            wanted
                .iter()
                .filter_map(|id| e.view(id))
                .map(|view| status_json(&view))
                .collect()
        })
        .await;
    let target = if ids.len() == 1 {
        ids[0].clone()
    } else {
        format!("{} timers: {}", ids.len(), ids.join(","))
    };
    Ok(answer(json!({ "timers": statuses }), &target))
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
