//! The CLI's one error type and its exit codes: 0 success, 1 failure, 2 usage error, 3 outcome
//! unknown.

use std::fmt;

use kron_store::StoreError;

/// Exit code of a failure (unknown timer, unreadable data, refused command, failed check).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a usage error (bad arguments or option values).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when a request reached the live runtime but its outcome is not known (no reply in
/// time): it may have been carried out, or may still be.
pub const EXIT_UNKNOWN: i32 = 3;

/// Why a command did not succeed. The message is one line, shown as `kron: <message>`.
#[derive(Debug)]
pub enum CliError {
    /// The command line (or a value in it) is wrong.
    Usage(String),
    /// The command could not do what was asked.
    Failure(String),
    /// The request was delivered but whether it was carried out is not known.
    Unknown(String),
    /// A failure that was already reported on standard output (e.g. `doctor` with a FAIL line):
    /// exit 1 without a further message.
    Reported,
    /// Standard output was closed by the reader (`kron job list | head`): stop quietly.
    BrokenPipe,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::Usage(message.into())
    }

    pub fn failure(message: impl Into<String>) -> CliError {
        CliError::Failure(message.into())
    }

    pub fn unknown(message: impl Into<String>) -> CliError {
        CliError::Unknown(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Failure(_) | CliError::Reported => EXIT_FAILURE,
            CliError::Unknown(_) => EXIT_UNKNOWN,
            CliError::BrokenPipe => 0,
        }
    }

    /// The line to print on standard error, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            CliError::Usage(m) | CliError::Failure(m) | CliError::Unknown(m) => Some(m),
            CliError::Reported | CliError::BrokenPipe => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or(""))
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        CliError::Failure(one_line(&e.to_string()))
    }
}

impl From<kron_core::CoreError> for CliError {
    /// Core errors are invalid arguments: usage errors.
    fn from(e: kron_core::CoreError) -> CliError {
        CliError::Usage(one_line(&e.to_string()))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Failure(format!("writing output: {e}"))
        }
    }
}

/// Joins the lines of a message so every error stays on one line.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(line);
    }
    out
}

pub type CliResult<T = ()> = Result<T, CliError>;
