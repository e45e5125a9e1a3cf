//! What the HTTP side of a server needs from its data directory and command line, and the
//! errors of setting it up. Errors answered to requests are [`crate::http::ApiError`].

use std::path::{Path, PathBuf};

/// Default lease of a claimed run, when neither the worker nor `KRON_WORKER_LEASE_SECONDS` says.
pub const DEFAULT_LEASE_SECONDS: u64 = 30;

/// Default limit of a request body, in bytes (a timer's payload is at most 64 KiB of JSON; a
/// batch of completions with tracebacks is larger).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The HTTP side's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The data directory: `kron.token`, `kron.tokens.json` and `kron.audit.jsonl` live here.
    pub data_dir: PathBuf,
    /// `--cluster-token`: the shared admin token (else `DIR/kron.token`, generated when missing).
    pub cluster_token: Option<String>,
    /// Requests with a larger body are answered 413.
    pub body_limit: usize,
    /// The lease of a worker that does not choose one.
    pub default_lease_seconds: u64,
}

impl ServeConfig {
    /// Defaults for `data_dir`, the lease from `KRON_WORKER_LEASE_SECONDS` when it is set.
    pub fn new(data_dir: &Path, cluster_token: Option<String>) -> Result<ServeConfig, SetupError> {
        let default_lease_seconds = match std::env::var("KRON_WORKER_LEASE_SECONDS") {
            Ok(text) => parse_lease_seconds(&text)?,
            Err(_) => DEFAULT_LEASE_SECONDS,
        };
        Ok(ServeConfig {
            data_dir: data_dir.to_path_buf(),
            cluster_token,
            body_limit: DEFAULT_BODY_LIMIT,
            default_lease_seconds,
        })
    }
}

fn parse_lease_seconds(text: &str) -> Result<u64, SetupError> {
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(n),
        _ => Err(SetupError::Config(format!(
            "invalid KRON_WORKER_LEASE_SECONDS {text:?}: must be a whole number of seconds from 1 to 86400"
        ))),
    }
}

/// Why the server's HTTP side could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// A file of the data directory could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
}

impl SetupError {
    pub fn io(path: &Path, error: std::io::Error) -> SetupError {
        SetupError::Io(format!("{}: {error}", path.display()))
    }
}
