//! The client side of the live runtime's control socket.
//!
//! While a runtime owns a data directory it listens on `control.sock` (a Unix domain socket,
//! mode 0600) and keeps a secret in `control.token` (mode 0600). A client connects, sends one
//! line of JSON and reads one line back:
//!
//! ```text
//! -> {"token": "...", "op": "pause", "timer": "heartbeat"}
//! <- {"ok": true}
//! <- {"ok": false, "kind": "unknown_timer", "error": "no timer named \"x\""}
//! ```
//!
//! Ops: `pause`, `resume`, `trigger` (reply adds `run_id`), `remove` (these four with `timer`),
//! `status` (reply: `pid`, `started_at` in epoch ms, `version`, `active_runs`, `timers`,
//! `data_dir`) and `shutdown` (optional `timeout_s`; the runtime replies, then shuts down).
//! Error kinds: `unknown_timer`, `not_runnable`, `bad_request`, `unauthorized`, `busy`,
//! `internal`.
//!
//! Once the request is sent, the runtime may carry it out even if no reply comes back in time (a
//! stopped or overloaded process answers late): such a failure is [`ControlError::Unknown`],
//! never "nothing was changed".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::data::DataDir;
use crate::error::{one_line, CliError};

pub const SOCKET_FILE: &str = "control.sock";
pub const TOKEN_FILE: &str = "control.token";

/// How long one request may take to be answered by default (the runtime answers at once;
/// `shutdown` replies before it stops).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// `sun_path` holds 108 bytes on Linux (104 on macOS); longer paths go through `/proc/self/fd`.
const MAX_SOCKET_PATH: usize = 100;
/// Replies longer than this are not from a Kron runtime.
const MAX_REPLY: u64 = 1 << 20;

/// A request to the live runtime.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub op: &'a str,
    pub timer: Option<&'a str>,
    pub timeout_s: Option<f64>,
    /// How long to wait for the reply.
    pub wait: Duration,
}

impl<'a> Request<'a> {
    pub fn op(op: &'a str) -> Request<'a> {
        Request {
            op,
            timer: None,
            timeout_s: None,
            wait: DEFAULT_WAIT,
        }
    }

    pub fn timer(op: &'a str, timer: &'a str) -> Request<'a> {
        Request {
            op,
            timer: Some(timer),
            timeout_s: None,
            wait: DEFAULT_WAIT,
        }
    }

    /// Whether carrying it out changes anything (all ops but `status`).
    fn changes(&self) -> bool {
        self.op != "status"
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ControlError {
    /// The runtime could not be reached (no socket, refused, no token): nothing was sent.
    Unreachable(String),
    /// The request was sent but no usable reply came (timeout, connection lost, garbage): the
    /// runtime may have carried it out, or may still.
    Unknown(String),
    /// The runtime answered `{"ok": false, ...}`.
    Refused { kind: String, error: String },
}

impl ControlError {
    /// As a CLI failure about `dir`; an unknown timer reads like the offline one.
    pub fn into_cli(self, dir: &DataDir, timer: Option<&str>) -> CliError {
        match self {
            ControlError::Unreachable(why) => CliError::failure(why),
            ControlError::Unknown(why) => {
                let check = match timer {
                    Some(name) => format!("`kron job status {name}` and `kron job history {name}`"),
                    None => "`kron runtime status`".to_string(),
                };
                CliError::unknown(format!(
                    "{why}; the request was delivered and may still be carried out: its outcome is unknown\nhint: check with {check} before trying again"
                ))
            }
            ControlError::Refused { kind, error } => match (kind.as_str(), timer) {
                ("unknown_timer", Some(name)) => {
                    CliError::failure(format!("no timer named {name:?} in {}", dir.display()))
                }
                ("unauthorized", _) => CliError::failure(format!(
                    "the runtime refused the request: {} (is {} from another runtime?)",
                    one_line(&error),
                    dir.path.join(TOKEN_FILE).display()
                )),
                _ => CliError::failure(format!("the runtime refused: {}", one_line(&error))),
            },
        }
    }
}

/// Sends `request` to the runtime owning `dir` and returns its successful reply.
pub fn send(dir: &Path, request: &Request<'_>) -> Result<Map<String, Value>, ControlError> {
    let token_path = dir.join(TOKEN_FILE);
    let token = std::fs::read_to_string(&token_path).map_err(|e| {
        ControlError::Unreachable(format!(
            "a runtime{} owns {} but its control token {} cannot be read ({e}); nothing was changed",
            owner_text(dir),
            dir.display(),
            token_path.display()
        ))
    })?;
    let mut body = json!({ "token": token.trim(), "op": request.op });
    if let Some(timer) = request.timer {
        body["timer"] = json!(timer);
    }
    if let Some(timeout) = request.timeout_s {
        body["timeout_s"] = json!(timeout);
    }
    let mut line = body.to_string();
    line.push('\n');

    let socket_path = dir.join(SOCKET_FILE);
    let unreachable = |what: String| {
        ControlError::Unreachable(format!(
            "a runtime{} owns {} but does not answer on {} ({what}); nothing was changed",
            owner_text(dir),
            dir.display(),
            socket_path.display()
        ))
    };
    let stream = connect(dir, &socket_path).map_err(|e| unreachable(e.to_string()))?;
    stream
        .set_read_timeout(Some(request.wait))
        .and_then(|()| stream.set_write_timeout(Some(request.wait)))
        .map_err(|e| unreachable(e.to_string()))?;
    // From the first byte sent on, the runtime may act on the request: a failure no longer means
    // that nothing was changed.
    let wait = request.wait;
    let unknown = |what: String| {
        let text = format!(
            "a runtime{} owns {} but {what} on {}",
            owner_text(dir),
            dir.display(),
            socket_path.display()
        );
        if request.changes() {
            ControlError::Unknown(text)
        } else {
            ControlError::Unreachable(text)
        }
    };
    let failed = |doing: &str, e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("timed out after {} {doing}", seconds(wait))
        }
        _ => format!("the connection failed {doing} ({e})"),
    };
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|e| unknown(failed("sending the request", e)))?;
    let mut reply = String::new();
    BufReader::new(std::io::Read::take(&stream, MAX_REPLY))
        .read_line(&mut reply)
        .map_err(|e| unknown(failed("waiting for the reply", e)))?;
    if reply.trim().is_empty() {
        return Err(unknown(
            "it closed the connection without a reply".to_string(),
        ));
    }
    let value: Value = serde_json::from_str(reply.trim())
        .map_err(|e| unknown(format!("its reply is unreadable ({e})")))?;
    let Value::Object(map) = value else {
        return Err(unknown("its reply is not a JSON object".to_string()));
    };
    if map.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(map);
    }
    let text = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Err(ControlError::Refused {
        kind: text("kind"),
        error: text("error"),
    })
}

fn connect(dir: &Path, socket_path: &Path) -> std::io::Result<UnixStream> {
    if socket_path.as_os_str().len() < MAX_SOCKET_PATH || !cfg!(target_os = "linux") {
        return UnixStream::connect(socket_path);
    }
    // Too long for `sun_path`: name the socket through an open descriptor of the directory.
    use std::os::fd::AsRawFd;
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!(
        "/proc/self/fd/{}/{SOCKET_FILE}",
        handle.as_raw_fd()
    ));
    let stream = UnixStream::connect(short);
    drop(handle);
    stream
}

/// "2s", "0.5s".
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// " (pid N)" from `kron.lock`, when it names one.
fn owner_text(dir: &Path) -> String {
    kron_store::read_owner(dir)
        .map(|owner| format!(" (pid {})", owner.pid))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A directory with a token and a socket that accepts connections but never answers (a
    /// stopped process: the kernel still accepts into the backlog).
    fn silent_runtime() -> std::io::Result<(tempfile::TempDir, UnixListener)> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(TOKEN_FILE), "secret")?;
        let listener = UnixListener::bind(dir.path().join(SOCKET_FILE))?;
        Ok((dir, listener))
    }

    #[test]
    fn no_answer_after_sending_a_change_is_an_unknown_outcome() -> std::io::Result<()> {
        let (dir, _listener) = silent_runtime()?;
        let request = Request {
            wait: Duration::from_millis(200),
            ..Request::timer("trigger", "x")
        };
        match send(dir.path(), &request) {
            Err(ControlError::Unknown(why)) => {
                assert!(why.contains("timed out after 0.2s"), "{why}");
                assert!(!why.contains("nothing was changed"), "{why}");
            }
            other => panic!("expected an unknown outcome, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn no_answer_to_a_status_request_changes_nothing() -> std::io::Result<()> {
        let (dir, _listener) = silent_runtime()?;
        let request = Request {
            wait: Duration::from_millis(200),
            ..Request::op("status")
        };
        assert!(matches!(
            send(dir.path(), &request),
            Err(ControlError::Unreachable(_))
        ));
        Ok(())
    }

    #[test]
    fn an_unreachable_socket_changes_nothing() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(TOKEN_FILE), "secret")?;
        match send(dir.path(), &Request::timer("pause", "x")) {
            Err(ControlError::Unreachable(why)) => {
                assert!(why.contains("nothing was changed"), "{why}")
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
        Ok(())
    }
}
