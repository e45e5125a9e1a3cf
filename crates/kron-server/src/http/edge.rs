//! The edge every request passes: authenticate the bearer token, authorize its role for the
//! route ([`permission`]), hand the [`Principal`] to the handler (which scopes by tenant), then
//! audit every write and every refusal and measure the request. Security decisions are made
//! here only, never again inside handlers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::body::BodyLimit;
use super::error::{ApiError, RefusalReason};
use super::Api;
use crate::audit::AuditEntry;
use crate::auth::{Permission, Principal};
use crate::backend::Backend;

/// What a request was about (a timer, run, worker or node), for its audit record; set by
/// handlers in the response's extensions.
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

/// Set by a handler whose POST changed nothing (an empty poll): not audited unless refused.
#[derive(Debug, Clone, Copy)]
pub struct NothingWritten;

/// Set on a successful read answered by a node that is not the leader: what it says was
/// applied there, and may lag what the leader has committed.
pub const FOLLOWER_READ_HEADER: &str = "x-kron-follower-read";

/// What the route `route` (the matched pattern) needs for `method`; `None`: public.
pub fn permission(method: &Method, route: Option<&str>) -> Option<Permission> {
    let Some(route) = route else {
        // Unknown routes still need a valid token: a stranger learns nothing about the API.
        return Some(Permission::AnyRole);
    };
    let read = *method == Method::GET || *method == Method::HEAD;
    Some(match route {
        "/healthz" => return None,
        "/v1/openapi.json" => Permission::AnyRole,
        "/metrics" | "/v1/cluster/status" | "/v1/workers" => Permission::Read,
        r if r.starts_with("/v1/timers") => {
            if read {
                Permission::Read
            } else {
                Permission::WriteTimers
            }
        }
        r if r.starts_with("/v1/workers/") || r.starts_with("/v1/runs") => Permission::Work,
        "/v1/cluster/join" | "/v1/cluster/leave" | "/v1/runtime/shutdown" => Permission::Admin,
        // A route added without an entry here is for admins only until it gets one.
        _ => Permission::Admin,
    })
}

/// The fallback: 404 as JSON.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// The middleware. See the module documentation.
pub async fn edge<B: Backend>(
    State(api): State<Arc<Api<B>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let path = request.uri().path().to_string();
    let now = api.backend.now();
    request
        .extensions_mut()
        .insert(BodyLimit(api.config.body_limit));
    let needed = permission(&method, route.as_deref());
    let mut principal: Option<Principal> = None;
    let response = match needed {
        None => next.run(request).await,
        Some(needed) => {
            let authorization = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match api.auth.authenticate(authorization, now) {
                Err(failure) => ApiError::Unauthorized(failure.reason()).into_response(),
                Ok(who) if !who.role.allows(needed) => {
                    principal = Some(who);
                    ApiError::Forbidden.into_response()
                }
                Ok(who) => {
                    principal = Some(who.clone());
                    request.extensions_mut().insert(who);
                    next.run(request).await
                }
            }
        }
    };
    let status = response.status().as_u16();
    let writes = method != Method::GET && method != Method::HEAD;
    let quiet = response.extensions().get::<NothingWritten>().is_some();
    if needed.is_some() && (status >= 400 || (writes && !quiet)) {
        let entry = AuditEntry {
            actor: principal.as_ref().map(|p| p.name.clone()),
            role: principal.as_ref().map(|p| p.role.as_str().to_string()),
            tenant: principal.as_ref().and_then(|p| p.tenant.clone()),
            method: method.to_string(),
            path,
            target: response
                .extensions()
                .get::<AuditTarget>()
                .map(|t| t.0.clone()),
            status,
            decision: if status < 400 { "allowed" } else { "refused" },
            reason: response
                .extensions()
                .get::<RefusalReason>()
                .map(|r| r.0.clone()),
            ..AuditEntry::at(now)
        };
        if let Err(e) = api.audit.append(&entry) {
            // The answer stands (a write cannot be taken back); the operator must see this.
            eprintln!("kron: audit log: {e}");
        }
    }
    let mut response = response;
    if !writes && status < 400 && !api.backend.is_leader() {
        // A read served by a follower reflects what it has applied, which may lag the leader.
        response.headers_mut().insert(
            FOLLOWER_READ_HEADER,
            header::HeaderValue::from_static("may-lag"),
        );
    }
    api.metrics.request(
        method.as_str(),
        route.as_deref().unwrap_or("unmatched"),
        status,
        started.elapsed().as_secs_f64(),
    );
    response
}
