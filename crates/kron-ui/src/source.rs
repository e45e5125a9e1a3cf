//! What the dashboard reads and does, as a trait: a server node and an embedded data directory
//! each implement it; the router never knows which one it serves.

use std::future::Future;

use serde::Serialize;

use crate::model::{Activity, ClusterView, TimerDetail, TimerPage, TimerQuery};

/// Which kind of Kron the dashboard looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `kron server`: tokens and roles as in the HTTP API; workers and the cluster exist.
    Server,
    /// `kron ui` over a data directory: reads need no login, actions need the control token.
    Embedded,
}

/// Who is looking: what the session's token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Viewer {
    /// The token's name, for the page and the audit log.
    pub name: String,
    /// The token's role (`reader`, `operator`, `admin`; `viewer` for an embedded reader).
    pub role: String,
    /// Only this tenant's timers, when set.
    pub tenant: Option<String>,
    /// Whether pause, resume, trigger and remove are allowed.
    pub can_write: bool,
}

/// A write the dashboard offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pause,
    Resume,
    Trigger,
    Remove,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        Some(match text {
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "trigger" => Action::Trigger,
            "remove" => Action::Remove,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Trigger => "trigger",
            Action::Remove => "remove",
        }
    }
}

/// Why a read or an action did not happen; each maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiError {
    /// No session, or its token is no longer valid (401).
    Unauthorized(String),
    /// The session may not do this, or the request is cross-site (403).
    Forbidden(String),
    /// No such timer, or not one this viewer may see (404).
    NotFound(String),
    /// The action was refused as invalid (400).
    BadRequest(String),
    /// The engine, store or runtime could not answer (503).
    Unavailable(String),
}

impl UiError {
    pub fn status(&self) -> u16 {
        match self {
            UiError::Unauthorized(_) => 401,
            UiError::Forbidden(_) => 403,
            UiError::NotFound(_) => 404,
            UiError::BadRequest(_) => 400,
            UiError::Unavailable(_) => 503,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            UiError::Unauthorized(m)
            | UiError::Forbidden(m)
            | UiError::NotFound(m)
            | UiError::BadRequest(m)
            | UiError::Unavailable(m) => m,
        }
    }
}

/// One decision for the audit log: every action (carried out or refused) and every refused
/// login or forged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiAudit {
    /// Who, when the request carried a valid session.
    pub viewer: Option<Viewer>,
    pub method: String,
    pub path: String,
    /// The timer acted on, when there is one.
    pub target: Option<String>,
    pub status: u16,
    /// Why it was refused.
    pub reason: Option<String>,
}

/// What the dashboard reads and does. Reads are scoped by the [`Viewer`] (a tenant's token sees
/// only its tenant); the router checks `can_write`, the CSRF token and the Origin before
/// calling [`Dashboard::act`], and reports every decision to [`Dashboard::audit`].
pub trait Dashboard: Send + Sync + 'static {
    fn mode(&self) -> Mode;

    /// The viewer of a request without a session: `None` when reading needs a login.
    fn anonymous(&self) -> Option<Viewer>;

    /// The viewer `token` makes, or why it makes none. Called on every request that carries a
    /// session, so a token rotated away or expired stops working at once.
    fn sign_in(&self, token: &str) -> Result<Viewer, UiError>;

    /// One page of timers matching `query`.
    fn timers(
        &self,
        viewer: Viewer,
        query: TimerQuery,
    ) -> impl Future<Output = Result<TimerPage, UiError>> + Send;

    /// Everything the timer page shows.
    fn timer(
        &self,
        viewer: Viewer,
        name: String,
    ) -> impl Future<Output = Result<TimerDetail, UiError>> + Send;

    /// Runs in progress and the dead runs of the last 24 hours.
    fn activity(&self, viewer: Viewer) -> impl Future<Output = Result<Activity, UiError>> + Send;

    /// Workers, cluster members and tenants (server mode; embedded: not found).
    fn cluster(&self, viewer: Viewer) -> impl Future<Output = Result<ClusterView, UiError>> + Send;

    /// Carries out `action` on the timer `name`; answers a sentence for the page.
    fn act(
        &self,
        viewer: Viewer,
        action: Action,
        name: String,
    ) -> impl Future<Output = Result<String, UiError>> + Send;

    /// Records a decision (see [`UiAudit`]).
    fn audit(&self, record: UiAudit);
}
