//! [`ApiError`]: every error the API answers, as a status and a JSON body `{"error": ...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kron_core::engine::LeaseError;
use kron_core::input::Rejected;
use kron_core::CommandError;
use serde_json::json;

use crate::backend::{LeaderInfo, WriteError};

/// Why a request was not carried out. Nothing was changed by a request answered with one,
/// except [`ApiError::Unavailable`] (the write may or may not be committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: bad input; the message names the field and the value.
    BadRequest(String),
    /// 401 `unauthorized` (the reason goes to the audit log only).
    Unauthorized(String),
    /// 403 `forbidden`.
    Forbidden,
    /// 404: no such timer (or another tenant's), run or route.
    NotFound(String),
    /// 409 `not_leader`, with where the leader is.
    NotLeader(Option<LeaderInfo>),
    /// 409: the request conflicts with the state (a timer that cannot run, a taken name).
    Conflict(String),
    /// 413: the body is larger than the limit.
    TooLarge(usize),
    /// 503: replication or storage failed.
    Unavailable(String),
}

/// The reason a refusal is audited with, carried from the handler to the edge in the
/// response's extensions.
#[derive(Debug, Clone)]
pub struct RefusalReason(pub String);

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotLeader(_) | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `error` field.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unavailable(m) => m.clone(),
            ApiError::Unauthorized(_) => "unauthorized".to_string(),
            ApiError::Forbidden => "forbidden".to_string(),
            ApiError::NotLeader(_) => "not_leader".to_string(),
            ApiError::TooLarge(limit) => {
                format!("request body too large: at most {limit} bytes are accepted")
            }
        }
    }

    /// The unknown timer `name`.
    pub fn no_timer(name: &str) -> ApiError {
        ApiError::NotFound(CommandError::UnknownTimer(name.to_string()).to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::NotLeader(leader) => json!({
                "error": "not_leader",
                "leader_id": leader.as_ref().map(|l| l.id.clone()),
                "leader_http": leader.as_ref().and_then(|l| l.http.clone()),
            }),
            other => json!({ "error": other.message() }),
        };
        let reason = match &self {
            ApiError::Unauthorized(reason) => reason.clone(),
            other => other.message(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        response.extensions_mut().insert(RefusalReason(reason));
        response
    }
}

/// A lease error as the worker protocol words it: "stale fencing token" when another claim
/// holds the run, "run not active" when nobody does.
pub fn lease_message(error: &LeaseError) -> String {
    match error {
        LeaseError::StaleToken { .. } | LeaseError::Fenced { .. } => {
            format!("stale fencing token: {error}")
        }
        LeaseError::NotLeased(_) | LeaseError::Expired { .. } => format!("run not active: {error}"),
        LeaseError::LeaseInPast { .. } => error.to_string(),
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> ApiError {
        match error {
            WriteError::NotLeader { leader } => ApiError::NotLeader(leader),
            WriteError::Unavailable(m) => ApiError::Unavailable(format!("unavailable: {m}")),
            WriteError::Rejected(rejected) => rejected.into(),
        }
    }
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> ApiError {
        match rejected {
            Rejected::Invalid(e) => ApiError::BadRequest(e.to_string()),
            Rejected::Command(e @ CommandError::UnknownTimer(_)) => {
                ApiError::NotFound(e.to_string())
            }
            Rejected::Command(e @ CommandError::NotRunnable { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            Rejected::Lease(e) => ApiError::BadRequest(lease_message(&e)),
        }
    }
}

impl From<kron_core::CoreError> for ApiError {
    fn from(error: kron_core::CoreError) -> ApiError {
        ApiError::BadRequest(error.to_string())
    }
}
