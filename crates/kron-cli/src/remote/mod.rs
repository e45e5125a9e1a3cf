//! The command line against a Kron server instead of a data directory: `--server URL` (or
//! `KRON_SERVER`) sends the `job` commands to the server's HTTP API, and `kron server
//! join|leave|status` administer a cluster.
//!
//! The token comes from `--token`, else `KRON_TOKEN`, else the data directory's `kron.token`
//! (the admin token a server generates there), so an operator on the server's machine needs
//! neither.

mod client;
pub mod cluster;
pub mod jobs;
mod wire;

use std::path::Path;

pub use client::{RemoteError, Server};

use crate::error::{one_line, CliError};

/// The server `kron server join|leave|status` talk to when none is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7379";

/// The token to send: the one given (flag or environment), else `DIR/kron.token` when it exists.
pub fn token(given: Option<&str>, data_dir: &Path) -> Option<String> {
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        return Some(token.to_string());
    }
    std::fs::read_to_string(data_dir.join("kron.token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// A command that reads or writes a data directory directly, asked for while a server is set.
pub fn unsupported(command: &str) -> CliError {
    CliError::usage(format!(
        "`kron {command}` works on a data directory only, not against a server (--server or \
         KRON_SERVER is set; unset it to use --data-dir)"
    ))
}

/// What a [`RemoteError`] means for the user of `command` (e.g. "job pause"), whose token needs
/// role `role` (e.g. "an operator or admin").
pub fn cli_error(error: RemoteError, server: &Server, command: &str, role: &str) -> CliError {
    match error {
        RemoteError::Unreachable { tried } => {
            let why = if server.nodes.len() == 1 {
                // One node: its reason alone (the URL is already in the message).
                tried
                    .first()
                    .and_then(|t| t.split_once(" (").map(|(_, why)| why.trim_end_matches(')')))
                    .unwrap_or("no answer")
                    .to_string()
            } else {
                tried.join("; ")
            };
            CliError::failure(one_line(&format!(
                "cannot reach server {}: {why}",
                server.display()
            )))
        }
        RemoteError::NoLeader { tried } => CliError::failure(one_line(&format!(
            "no leader at {}: the nodes answered but know no leader yet (an election may be \
             under way; try again in a few seconds): {}",
            server.display(),
            tried.join("; ")
        ))),
        RemoteError::TimedOut { node } => CliError::unknown(format!(
            "{node} did not answer `kron {command}` in time: it may still be carried out \
             (check with kron job status or kron server status)"
        )),
        RemoteError::Unauthorized { had_token: false } => CliError::failure(format!(
            "{} needs a token (401 unauthorized): give --token TOKEN or set KRON_TOKEN",
            server.display()
        )),
        RemoteError::Unauthorized { had_token: true } => CliError::failure(format!(
            "{} refused the token (401 unauthorized): it is unknown, expired or not yet valid; \
             check --token or KRON_TOKEN",
            server.display()
        )),
        RemoteError::Forbidden => CliError::failure(format!(
            "the token's role may not run `kron {command}` (403 forbidden): it needs {role} \
             token"
        )),
        RemoteError::NotFound(message) => CliError::failure(one_line(&message)),
        RemoteError::Refused { status, message } => match status {
            // The server's own words, as embedded mode would say them.
            400 | 409 | 413 => CliError::failure(one_line(&message)),
            _ => CliError::failure(one_line(&format!(
                "{} answered HTTP {status}: {message}",
                server.display()
            ))),
        },
    }
}

/// An answer's JSON for `--json`: pretty, keys as the server sent them.
pub fn pretty(value: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(one_line(&format!("encoding JSON: {e}"))))
}
