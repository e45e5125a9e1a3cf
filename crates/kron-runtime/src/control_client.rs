//! The client side of the live runtime's control socket: how the `kron` command line and a
//! standby runtime reach the runtime that owns a data directory.
//!
//! While a runtime owns a data directory it listens on `control.sock` (a Unix domain socket,
//! mode 0600) and keeps a secret in `control.token` (mode 0600). A client connects, sends one
//! line of JSON, a [`ControlRequest`] beside the token, and reads one [`ControlReply`] line back.
//! The protocol is defined once, in [`kron_core::admin`], for both ends.
//!
//! Once the request is sent, the runtime may carry it out even if no reply comes back in time (a
//! stopped or overloaded process answers late): such a failure is [`ControlError::Unknown`],
//! never "nothing was changed".

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kron_core::admin::{
    ControlEnvelope, ControlReply, ControlRequest, RefusalKind, SOCKET_FILE, TOKEN_FILE,
};

/// How long one request may take to be answered by default (the runtime answers at once;
/// `shutdown` replies before it stops).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// `sun_path` holds 108 bytes on Linux (104 on macOS); longer paths go through `/proc/self/fd`.
const MAX_SOCKET_PATH: usize = 100;
/// Replies longer than this are not from a Kron runtime.
const MAX_REPLY: u64 = 1 << 20;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// The runtime could not be reached (no socket, refused, no token): nothing was sent.
    Unreachable(String),
    /// The request was sent but no usable reply came (timeout, connection lost, garbage): the
    /// runtime may have carried it out, or may still.
    Unknown(String),
    /// The runtime answered `{"ok": false, ...}`: nothing was done.
    Refused { kind: RefusalKind, error: String },
}

/// Sends `request` to the runtime owning `dir`, waits up to `wait` for the reply and returns it
/// when the runtime carried the request out.
pub fn send(
    dir: &Path,
    request: &ControlRequest,
    wait: Duration,
) -> Result<ControlReply, ControlError> {
    let token_path = dir.join(TOKEN_FILE);
    let token = std::fs::read_to_string(&token_path).map_err(|e| {
        ControlError::Unreachable(format!(
            "a runtime{} owns {} but its control token {} cannot be read ({e}); nothing was changed",
            owner_text(dir),
            dir.display(),
            token_path.display()
        ))
    })?;
    let envelope = ControlEnvelope::new(token.trim(), request.clone());
    // Plain data: serializing it cannot fail.
    let mut line = serde_json::to_string(&envelope).unwrap_or_default();
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
        .set_read_timeout(Some(wait))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .map_err(|e| unreachable(e.to_string()))?;
    // From the first byte sent on, the runtime may act on the request: a failure no longer means
    // that nothing was changed.
    let unknown = |what: String| {
        let text = format!(
            "a runtime{} owns {} but {what} on {}",
            owner_text(dir),
            dir.display(),
            socket_path.display()
        );
        if request.changes_anything() {
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
    match serde_json::from_str::<ControlReply>(reply.trim()) {
        Ok(ControlReply::Refused { kind, error }) => Err(ControlError::Refused { kind, error }),
        Ok(reply) => Ok(reply),
        Err(e) => Err(unknown(format!("its reply is unreadable ({e})"))),
    }
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
    use kron_core::admin::TimerOp;
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
        let request = ControlRequest::timer(TimerOp::Trigger, "x");
        match send(dir.path(), &request, Duration::from_millis(200)) {
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
        let request = ControlRequest::Status;
        assert!(matches!(
            send(dir.path(), &request, Duration::from_millis(200)),
            Err(ControlError::Unreachable(_))
        ));
        Ok(())
    }

    #[test]
    fn an_unreachable_socket_changes_nothing() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(TOKEN_FILE), "secret")?;
        let request = ControlRequest::timer(TimerOp::Pause, "x");
        match send(dir.path(), &request, DEFAULT_WAIT) {
            Err(ControlError::Unreachable(why)) => {
                assert!(why.contains("nothing was changed"), "{why}")
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
        Ok(())
    }
}
