//! The local control socket: how the `kron` command line reaches a live runtime.
//!
//! While a runtime runs, its data directory holds `control.sock` (a Unix socket) and
//! `control.token`, both readable only by the directory's owner (mode 0600). A client sends one
//! JSON line `{"token", "op", "timer"?, "timeout_s"?}` and reads one JSON line back. The token
//! keeps other local users out even where the socket's permissions are not enforced. Idle, the
//! server is a thread blocked in `accept`: no CPU.
//!
//! Each connection is served on a thread of its own (at most [`MAX_CONNECTIONS`] at once; more
//! are answered `busy` at once), and its request line must arrive within [`REQUEST_DEADLINE`]:
//! a client that connects and sends nothing holds neither the socket nor other clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kron_core::CommandError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::RuntimeError;

/// How long a `shutdown` request waits for attempts in flight when it names no `timeout_s`.
const DEFAULT_SHUTDOWN_TIMEOUT_S: f64 = 30.0;
/// The longest `timeout_s` a `shutdown` request may ask for: a day.
const MAX_SHUTDOWN_TIMEOUT_S: f64 = 86_400.0;
pub const SOCKET_FILE: &str = "control.sock";
pub const TOKEN_FILE: &str = "control.token";
/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a client has to send its whole request line after connecting.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// How long writing the reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; a further one is answered `busy` without waiting.
pub const MAX_CONNECTIONS: usize = 8;

/// What a live runtime reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub pid: u32,
    pub started_at: i64,
    pub version: String,
    pub active_runs: usize,
    pub timers: usize,
    pub data_dir: String,
}

/// The operations the control socket offers, implemented by the embedding's runtime handle.
pub trait Admin: Send + Sync + 'static {
    fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    fn trigger(&self, id: &str) -> Result<String, RuntimeError>;
    fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Begins a graceful shutdown; must not wait for it (it stops this server).
    fn begin_shutdown(&self, timeout: Duration);
    fn runtime_status(&self) -> Option<RuntimeStatus>;
}

#[derive(Debug, Deserialize)]
struct Request {
    token: String,
    op: String,
    #[serde(default)]
    timer: Option<String>,
    #[serde(default)]
    timeout_s: Option<f64>,
}

/// A running control server. Dropping it does not stop it; call [`ControlServer::stop`].
pub(crate) struct ControlServer {
    socket: PathBuf,
    token_file: PathBuf,
    stopping: Arc<AtomicBool>,
}

impl ControlServer {
    /// Binds the socket and starts serving. Fails (and the runtime runs without live admin) when
    /// the path is too long for a Unix socket or the directory refuses it.
    pub fn start(data_dir: &Path, admin: Arc<dyn Admin>) -> std::io::Result<ControlServer> {
        let socket = data_dir.join(SOCKET_FILE);
        let token_file = data_dir.join(TOKEN_FILE);
        let token = new_token();
        // We hold the writer lock, so a socket file left here is from a process that died.
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_file(&token_file);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&token_file)?;
        file.write_all(token.as_bytes())?;
        let listener = UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        std::thread::Builder::new()
            .name("kron-control".to_string())
            .spawn(move || serve(listener, token, admin, flag))?;
        Ok(ControlServer {
            socket,
            token_file,
            stopping,
        })
    }

    /// Stops accepting and removes the socket and token files.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocked accept so the thread sees the flag and exits.
        let _ = UnixStream::connect(&self.socket);
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.token_file);
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // No /dev/urandom: derive from time and pid; the socket's 0600 mode is the main guard.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        bytes.copy_from_slice(&seed.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(listener: UnixListener, token: String, admin: Arc<dyn Admin>, stopping: Arc<AtomicBool>) {
    let token: Arc<str> = token.into();
    let serving = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if serving.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            serving.fetch_sub(1, Ordering::AcqRel);
            let busy = error(
                "busy",
                "too many control connections at once; nothing was done",
            );
            reply(&stream, &busy);
            continue;
        }
        let (token, admin, slot) = (token.clone(), admin.clone(), serving.clone());
        let spawned = std::thread::Builder::new()
            .name("kron-control-conn".to_string())
            .spawn(move || {
                let shutdown = handle(stream, &token, admin.as_ref());
                slot.fetch_sub(1, Ordering::AcqRel);
                if let Some(timeout) = shutdown {
                    admin.begin_shutdown(timeout);
                }
            });
        if spawned.is_err() {
            // The stream went with the closure: the client sees the connection closed.
            serving.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Serves one connection; returns a shutdown request to act on after replying.
fn handle(stream: UnixStream, token: &str, admin: &dyn Admin) -> Option<Duration> {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut line = String::new();
    let reader = Deadline {
        stream: &stream,
        at: Instant::now() + REQUEST_DEADLINE,
    };
    let read = BufReader::new(reader.take(MAX_REQUEST)).read_line(&mut line);
    let (answer, shutdown) = match read {
        Ok(0) | Err(_) => return None,
        Ok(_) => respond(&line, token, admin),
    };
    reply(&stream, &answer);
    shutdown
}

fn reply(mut stream: &UnixStream, answer: &Value) {
    let mut out = answer.to_string();
    out.push('\n');
    let _ = stream.write_all(out.as_bytes());
}

/// Reads from the stream until an instant: however the client trickles its bytes, the request
/// takes no longer than that.
struct Deadline<'a> {
    stream: &'a UnixStream,
    at: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

fn error(kind: &str, message: impl Into<String>) -> Value {
    json!({"ok": false, "kind": kind, "error": message.into()})
}

fn respond(line: &str, token: &str, admin: &dyn Admin) -> (Value, Option<Duration>) {
    let request: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => return (error("bad_request", format!("invalid request: {e}")), None),
    };
    if !constant_time_eq(request.token.as_bytes(), token.as_bytes()) {
        return (error("unauthorized", "bad token"), None);
    }
    let timer = request.timer.as_deref();
    let result = match (request.op.as_str(), timer) {
        ("status", _) => {
            return match admin.runtime_status() {
                Some(s) => (
                    json!({"ok": true, "pid": s.pid, "started_at": s.started_at, "version": s.version,
                    "active_runs": s.active_runs, "timers": s.timers, "data_dir": s.data_dir}),
                    None,
                ),
                None => (error("internal", "the runtime is stopping"), None),
            };
        }
        ("shutdown", _) => {
            // Refused, not replaced by a default: a client that asked for something else must
            // not see its shutdown go ahead with another timeout. (JSON has no NaN or infinity.)
            let secs = request.timeout_s.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_S);
            if !(0.0..=MAX_SHUTDOWN_TIMEOUT_S).contains(&secs) {
                return (
                    error(
                        "bad_request",
                        format!(
                            "invalid timeout_s {secs}: must be between 0 and \
                             {MAX_SHUTDOWN_TIMEOUT_S} seconds"
                        ),
                    ),
                    None,
                );
            }
            return (json!({"ok": true}), Some(Duration::from_secs_f64(secs)));
        }
        ("pause", Some(id)) => admin.pause(id).map(|()| json!({"ok": true})),
        ("resume", Some(id)) => admin.resume(id).map(|()| json!({"ok": true})),
        ("remove", Some(id)) => admin.remove(id).map(|()| json!({"ok": true})),
        ("trigger", Some(id)) => admin
            .trigger(id)
            .map(|run_id| json!({"ok": true, "run_id": run_id})),
        ("pause" | "resume" | "remove" | "trigger", None) => {
            return (
                error("bad_request", format!("{} needs a timer", request.op)),
                None,
            )
        }
        (op, _) => return (error("bad_request", format!("unknown op {op:?}")), None),
    };
    match result {
        Ok(v) => (v, None),
        Err(RuntimeError::Command(CommandError::UnknownTimer(id))) => (
            error("unknown_timer", format!("no timer named {id:?}")),
            None,
        ),
        Err(RuntimeError::Command(e @ CommandError::NotRunnable { .. })) => {
            (error("not_runnable", e.to_string()), None)
        }
        Err(e) => (error("internal", e.to_string()), None),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Idle;

    impl Admin for Idle {
        fn pause(&self, _id: &str) -> Result<(), RuntimeError> {
            Ok(())
        }
        fn resume(&self, _id: &str) -> Result<(), RuntimeError> {
            Ok(())
        }
        fn trigger(&self, _id: &str) -> Result<String, RuntimeError> {
            Ok("run_x".to_string())
        }
        fn remove(&self, _id: &str) -> Result<(), RuntimeError> {
            Ok(())
        }
        fn begin_shutdown(&self, _timeout: Duration) {}
        fn runtime_status(&self) -> Option<RuntimeStatus> {
            None
        }
    }

    #[test]
    fn idle_clients_do_not_hold_up_a_request() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let server = ControlServer::start(dir.path(), Arc::new(Idle))?;
        let socket = dir.path().join(SOCKET_FILE);
        let idle: Vec<UnixStream> = (0..3)
            .map(|_| UnixStream::connect(&socket))
            .collect::<Result<_, _>>()?;
        let token = std::fs::read_to_string(dir.path().join(TOKEN_FILE))?;
        let stream = UnixStream::connect(&socket)?;
        // Less than one idle client's request deadline: served beside them, not after them.
        stream.set_read_timeout(Some(REQUEST_DEADLINE / 2))?;
        let request = json!({"token": token, "op": "pause", "timer": "x"});
        (&stream).write_all(format!("{request}\n").as_bytes())?;
        let mut reply = String::new();
        BufReader::new(&stream).read_line(&mut reply)?;
        assert_eq!(reply.trim(), r#"{"ok":true}"#);
        drop(idle);
        server.stop();
        Ok(())
    }

    /// Sends one request and returns the reply line.
    fn ask(dir: &Path, request: serde_json::Value) -> std::io::Result<String> {
        let stream = UnixStream::connect(dir.join(SOCKET_FILE))?;
        (&stream).write_all(format!("{request}\n").as_bytes())?;
        let mut reply = String::new();
        BufReader::new(&stream).read_line(&mut reply)?;
        Ok(reply)
    }

    #[test]
    fn a_shutdown_with_a_bad_timeout_is_refused_not_defaulted() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let server = ControlServer::start(dir.path(), Arc::new(Idle))?;
        let token = std::fs::read_to_string(dir.path().join(TOKEN_FILE))?;
        for bad in [-1.0, 86_401.0] {
            let reply = ask(
                dir.path(),
                json!({"token": token, "op": "shutdown", "timeout_s": bad}),
            )?;
            assert!(reply.contains("bad_request"), "{bad}: {reply}");
            assert!(reply.contains("invalid timeout_s"), "{bad}: {reply}");
        }
        server.stop();
        Ok(())
    }
}
