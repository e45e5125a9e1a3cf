//! Operator commands, and the control protocol that carries them to a live runtime, as data.
//!
//! An operator pauses, resumes, triggers or removes a timer ([`TimerOp`]). Whoever carries the
//! command out stamps it with its own instant, which makes it an engine [`Input`]
//! ([`TimerOp::input`]): the live runtime with its clock, the command line's offline admin with
//! its own.
//!
//! The `kron` command line reaches a live runtime through the control socket in its data
//! directory ([`SOCKET_FILE`]): one JSON line each way, a [`ControlRequest`] beside the token from
//! [`TOKEN_FILE`] ([`ControlEnvelope`]), a [`ControlReply`] back.
//!
//! ```text
//! -> {"token": "...", "op": "pause", "timer": "heartbeat"}
//! <- {"ok": true}
//! -> {"token": "...", "op": "trigger", "timer": "heartbeat"}
//! <- {"ok": true, "run_id": "..."}
//! <- {"ok": false, "kind": "unknown_timer", "error": "no timer named \"x\""}
//! ```
//!
//! Ops: `pause`, `resume`, `trigger`, `remove` (with `timer`), `status` (reply: the fields of
//! [`RuntimeStatus`]) and `shutdown` (optional `timeout_s`; the runtime replies, then shuts
//! down). Fields this release does not know are ignored, so either side may be newer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::input::Input;
use crate::run::RunId;
use crate::time::EpochMs;

/// The control socket, in the data directory (a Unix domain socket, mode 0600).
pub const SOCKET_FILE: &str = "control.sock";
/// The secret every request carries, in the data directory (mode 0600, new at every start).
pub const TOKEN_FILE: &str = "control.token";
/// How long a shutdown waits for attempts in flight when the request names no `timeout_s`.
pub const DEFAULT_SHUTDOWN_TIMEOUT_S: f64 = 30.0;
/// The longest `timeout_s` a shutdown may ask for: a day.
pub const MAX_SHUTDOWN_TIMEOUT_S: f64 = 86_400.0;

/// An operator's command on one timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerOp {
    /// The timer starts no runs until resumed.
    Pause,
    /// A paused timer runs again.
    Resume,
    /// A manual run of the timer is due now.
    Trigger,
    /// The timer is deleted; its history stays.
    Remove,
}

impl TimerOp {
    pub const ALL: [TimerOp; 4] = [
        TimerOp::Pause,
        TimerOp::Resume,
        TimerOp::Trigger,
        TimerOp::Remove,
    ];

    /// Its name on the wire and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerOp::Pause => "pause",
            TimerOp::Resume => "resume",
            TimerOp::Trigger => "trigger",
            TimerOp::Remove => "remove",
        }
    }

    pub fn parse(text: &str) -> Option<TimerOp> {
        TimerOp::ALL.into_iter().find(|op| op.as_str() == text)
    }

    /// The engine input that carries the command out on `timer` at `at`.
    pub fn input(self, timer: &str, at: EpochMs) -> Input {
        let timer = timer.to_string();
        match self {
            TimerOp::Pause => Input::Pause { at, timer },
            TimerOp::Resume => Input::Resume { at, timer },
            TimerOp::Trigger => Input::Trigger { at, timer },
            TimerOp::Remove => Input::Remove { at, timer },
        }
    }
}

/// What the command line asks of a live runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RequestFields", into = "RequestFields")]
pub enum ControlRequest {
    /// Carry out an operator's command. Reply: [`ControlReply::Done`], or
    /// [`ControlReply::Triggered`] for a trigger.
    Timer { op: TimerOp, timer: String },
    /// Reply: [`ControlReply::Status`].
    Status,
    /// Shut down gracefully, waiting up to `timeout_s` seconds (0 to
    /// [`MAX_SHUTDOWN_TIMEOUT_S`]; [`DEFAULT_SHUTDOWN_TIMEOUT_S`] when `None`) for attempts in
    /// flight. Reply: [`ControlReply::Done`], then the runtime shuts down.
    Shutdown { timeout_s: Option<f64> },
}

impl ControlRequest {
    pub fn timer(op: TimerOp, timer: impl Into<String>) -> ControlRequest {
        ControlRequest::Timer {
            op,
            timer: timer.into(),
        }
    }

    /// Whether carrying it out changes anything: once it is sent, a missing reply leaves the
    /// outcome unknown.
    pub fn changes_anything(&self) -> bool {
        !matches!(self, ControlRequest::Status)
    }

    /// How long a shutdown asked for this way waits for attempts in flight.
    pub fn shutdown_timeout(timeout_s: Option<f64>) -> Duration {
        let default = Duration::from_secs_f64(DEFAULT_SHUTDOWN_TIMEOUT_S);
        match timeout_s {
            Some(secs) => Duration::try_from_secs_f64(secs).unwrap_or(default),
            None => default,
        }
    }
}

/// A request's fields as they travel. [`ControlRequest`] is written as them and read from them
/// (checked by `ControlRequest::try_from`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestFields {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
}

/// Why a request's fields are not a [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum InvalidRequest {
    #[error("{0} needs a timer")]
    NoTimer(&'static str),
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// Refused, not replaced by the default: a client that asked for another timeout must not
    /// see its shutdown go ahead with this one.
    #[error("invalid timeout_s {0}: must be between 0 and {MAX_SHUTDOWN_TIMEOUT_S} seconds")]
    Timeout(f64),
}

impl TryFrom<RequestFields> for ControlRequest {
    type Error = InvalidRequest;

    fn try_from(fields: RequestFields) -> Result<ControlRequest, InvalidRequest> {
        match fields.op.as_str() {
            "status" => Ok(ControlRequest::Status),
            "shutdown" => match fields.timeout_s {
                // (JSON has no NaN or infinity, but a caller in Rust could send one.)
                Some(secs) if !(0.0..=MAX_SHUTDOWN_TIMEOUT_S).contains(&secs) => {
                    Err(InvalidRequest::Timeout(secs))
                }
                timeout_s => Ok(ControlRequest::Shutdown { timeout_s }),
            },
            name => match (TimerOp::parse(name), fields.timer) {
                (Some(op), Some(timer)) => Ok(ControlRequest::Timer { op, timer }),
                (Some(op), None) => Err(InvalidRequest::NoTimer(op.as_str())),
                (None, _) => Err(InvalidRequest::UnknownOp(name.to_string())),
            },
        }
    }
}

impl From<ControlRequest> for RequestFields {
    fn from(request: ControlRequest) -> RequestFields {
        match request {
            ControlRequest::Timer { op, timer } => RequestFields {
                op: op.as_str().to_string(),
                timer: Some(timer),
                timeout_s: None,
            },
            ControlRequest::Status => RequestFields {
                op: "status".to_string(),
                ..RequestFields::default()
            },
            ControlRequest::Shutdown { timeout_s } => RequestFields {
                op: "shutdown".to_string(),
                timeout_s,
                ..RequestFields::default()
            },
        }
    }
}

/// A request as it travels on the control socket: the directory's token beside the request's
/// fields. The runtime checks the token before it reads the request, so a client without it
/// learns nothing about requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlEnvelope {
    pub token: String,
    #[serde(flatten)]
    pub request: RequestFields,
}

impl ControlEnvelope {
    pub fn new(token: impl Into<String>, request: ControlRequest) -> ControlEnvelope {
        ControlEnvelope {
            token: token.into(),
            request: request.into(),
        }
    }
}

/// What a live runtime reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub pid: u32,
    /// Epoch milliseconds.
    pub started_at: EpochMs,
    pub version: String,
    pub active_runs: usize,
    pub timers: usize,
    pub data_dir: String,
}

/// A live runtime's answer to a [`ControlRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ReplyFields", into = "ReplyFields")]
pub enum ControlReply {
    /// Carried out (a shutdown: accepted; the runtime shuts down after replying).
    Done,
    /// A trigger was carried out: the manual run it made.
    Triggered {
        run_id: RunId,
    },
    Status(RuntimeStatus),
    /// Nothing was done, for this reason.
    Refused {
        kind: RefusalKind,
        error: String,
    },
}

impl ControlReply {
    pub fn refused(kind: RefusalKind, error: impl Into<String>) -> ControlReply {
        ControlReply::Refused {
            kind,
            error: error.into(),
        }
    }
}

/// Why a runtime refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The token is not this runtime's.
    Unauthorized,
    /// The request is not one this runtime reads.
    BadRequest,
    UnknownTimer,
    /// The timer cannot take the command.
    NotRunnable,
    /// Too many connections at once.
    Busy,
    /// The runtime failed to carry it out (it is stopping, say).
    Internal,
    /// A kind this release does not know (from a newer runtime).
    #[serde(other)]
    Other,
}

/// A reply's fields as they travel: `ok`, and beside it what the reply carries.
#[derive(Serialize, Deserialize)]
struct ReplyFields {
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    #[serde(default, flatten)]
    status: Option<RuntimeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<RefusalKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl From<ReplyFields> for ControlReply {
    fn from(fields: ReplyFields) -> ControlReply {
        match fields {
            ReplyFields {
                ok: false,
                kind,
                error,
                ..
            } => ControlReply::Refused {
                kind: kind.unwrap_or(RefusalKind::Other),
                error: error.unwrap_or_default(),
            },
            ReplyFields {
                run_id: Some(run_id),
                ..
            } => ControlReply::Triggered { run_id },
            ReplyFields {
                status: Some(status),
                ..
            } => ControlReply::Status(status),
            _ => ControlReply::Done,
        }
    }
}

impl From<ControlReply> for ReplyFields {
    fn from(reply: ControlReply) -> ReplyFields {
        let done = ReplyFields {
            ok: true,
            run_id: None,
            status: None,
            kind: None,
            error: None,
        };
        match reply {
            ControlReply::Done => done,
            ControlReply::Triggered { run_id } => ReplyFields {
                run_id: Some(run_id),
                ..done
            },
            ControlReply::Status(status) => ReplyFields {
                status: Some(status),
                ..done
            },
            ControlReply::Refused { kind, error } => ReplyFields {
                ok: false,
                kind: Some(kind),
                error: Some(error),
                ..done
            },
        }
    }
}

#[cfg(test)]
mod tests;
