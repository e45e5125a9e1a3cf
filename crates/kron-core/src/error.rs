//! Errors the core reports. Every one of them is bad input a caller can fix.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    /// An argument failed validation. `arg` is the public parameter name (`cron`, `every`, ...),
    /// `value` the offending input as the user wrote it, `reason` what is wrong with it.
    #[error("invalid {arg} {value:?}: {reason}")]
    InvalidArgument {
        arg: &'static str,
        value: String,
        reason: String,
    },
}

impl CoreError {
    pub fn invalid(arg: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            arg,
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Why the engine refused a command on an existing or missing timer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("no timer named {0:?}")]
    UnknownTimer(String),
    #[error("timer {id:?} cannot run: {reason}")]
    NotRunnable { id: String, reason: &'static str },
}
