//! The local control socket: how the `kron` command line reaches a live runtime.
//!
//! While a runtime runs, its data directory holds `control.sock` (a Unix socket) and
//! `control.token`, both readable only by the directory's owner (mode 0600). A client sends one
//! JSON line, a [`ControlEnvelope`], and reads one [`ControlReply`] line back (the protocol is
//! [`kron_core::admin`]). The token keeps other local users out even where the socket's
//! permissions are not enforced. Idle, the server is a thread blocked in `accept`: no CPU.
//!
//! Each connection is served on a thread of its own (at most [`MAX_CONNECTIONS`] at once; more
//! are answered `busy` at once), and its request line must arrive within [`REQUEST_DEADLINE`]:
//! a client that connects and sends nothing holds neither the socket nor other clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kron_core::admin::{
    ControlEnvelope, ControlReply, ControlRequest, RefusalKind, RuntimeStatus, TimerOp,
    SOCKET_FILE, TOKEN_FILE,
};
use kron_core::run::RunId;
use kron_core::CommandError;

use crate::error::RuntimeError;

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;
/// How long a client has to send its whole request line after connecting.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// How long writing the reply may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; a further one is answered `busy` without waiting.
pub const MAX_CONNECTIONS: usize = 8;

/// The operations the control socket offers, implemented by the embedding's runtime handle.
pub trait Admin: Send + Sync + 'static {
    /// Carries out an operator's command on the timer named `id`, at the runtime's own instant.
    /// A trigger answers the run it made.
    fn command(&self, op: TimerOp, id: &str) -> Result<Option<RunId>, RuntimeError>;
    /// Begins a graceful shutdown; must not wait for it (it stops this server).
    fn begin_shutdown(&self, timeout: Duration);
    fn runtime_status(&self) -> Option<RuntimeStatus>;
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
        // A child forked while this serves must close the listener: kept open there after this
        // process died, it would accept connections nobody answers.
        let fd = listener.as_raw_fd();
        kron_store::fork_fds::remember(fd);
        let spawned = std::thread::Builder::new()
            .name("kron-control".to_string())
            .spawn(move || serve(listener, token, admin, flag));
        if let Err(e) = spawned {
            kron_store::fork_fds::forget(fd);
            return Err(e);
        }
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

/// Serves until stopped, then unlists the listener (see `ControlServer::start`) and closes it.
fn serve(listener: UnixListener, token: String, admin: Arc<dyn Admin>, stopping: Arc<AtomicBool>) {
    serve_until_stopped(&listener, token, admin, &stopping);
    kron_store::fork_fds::forget(listener.as_raw_fd());
}

fn serve_until_stopped(
    listener: &UnixListener,
    token: String,
    admin: Arc<dyn Admin>,
    stopping: &AtomicBool,
) {
    let token: Arc<str> = token.into();
    let serving = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if serving.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            serving.fetch_sub(1, Ordering::AcqRel);
            let busy = ControlReply::refused(
                RefusalKind::Busy,
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

fn reply(mut stream: &UnixStream, answer: &ControlReply) {
    // Plain data: serializing it cannot fail.
    let mut out = serde_json::to_string(answer).unwrap_or_default();
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

fn respond(line: &str, token: &str, admin: &dyn Admin) -> (ControlReply, Option<Duration>) {
    let envelope: ControlEnvelope = match serde_json::from_str(line) {
        Ok(envelope) => envelope,
        Err(e) => return (bad_request(format!("invalid request: {e}")), None),
    };
    if !constant_time_eq(envelope.token.as_bytes(), token.as_bytes()) {
        return (
            ControlReply::refused(RefusalKind::Unauthorized, "bad token"),
            None,
        );
    }
    let request = match ControlRequest::try_from(envelope.request) {
        Ok(request) => request,
        Err(e) => return (bad_request(e.to_string()), None),
    };
    match request {
        ControlRequest::Status => match admin.runtime_status() {
            Some(status) => (ControlReply::Status(status), None),
            None => (
                ControlReply::refused(RefusalKind::Internal, "the runtime is stopping"),
                None,
            ),
        },
        ControlRequest::Shutdown { timeout_s } => (
            ControlReply::Done,
            Some(ControlRequest::shutdown_timeout(timeout_s)),
        ),
        ControlRequest::Timer { op, timer } => (command(admin, op, &timer), None),
    }
}

fn command(admin: &dyn Admin, op: TimerOp, id: &str) -> ControlReply {
    match admin.command(op, id) {
        Ok(Some(run_id)) => ControlReply::Triggered { run_id },
        Ok(None) => ControlReply::Done,
        Err(RuntimeError::Command(CommandError::UnknownTimer(id))) => {
            ControlReply::refused(RefusalKind::UnknownTimer, format!("no timer named {id:?}"))
        }
        Err(RuntimeError::Command(e @ CommandError::NotRunnable { .. })) => {
            ControlReply::refused(RefusalKind::NotRunnable, e.to_string())
        }
        Err(e) => ControlReply::refused(RefusalKind::Internal, e.to_string()),
    }
}

fn bad_request(message: String) -> ControlReply {
    ControlReply::refused(RefusalKind::BadRequest, message)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Idle;

    impl Admin for Idle {
        fn command(&self, op: TimerOp, _id: &str) -> Result<Option<RunId>, RuntimeError> {
            Ok((op == TimerOp::Trigger).then(|| RunId::from("run_x".to_string())))
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
