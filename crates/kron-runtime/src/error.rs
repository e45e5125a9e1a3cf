//! Errors of the runtime's public operations.

use std::path::PathBuf;

use kron_core::input::Rejected;
use kron_core::{CommandError, CoreError};
use kron_store::{OpenError, StoreError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RuntimeError {
    /// Bad input: nothing was registered or written.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// An unknown timer, or a command the timer cannot take.
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("kron is already started (data_dir={0})")]
    AlreadyStarted(PathBuf),
    #[error("kron is not started: {0}")]
    NotStarted(&'static str),
    #[error("max_workers must be at least 1, got {0}")]
    InvalidWorkers(usize),
    /// Opening, reading or writing storage failed (locked directory, corrupt file, disk full...).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not start the scheduler thread: {0}")]
    Thread(#[source] std::io::Error),
    /// This process is a standby and the runtime that owns the directory could not be reached,
    /// refused, or did not answer (the message says which, and whether it may have acted).
    #[error("{0}")]
    Unreachable(String),
    /// The engine answered an input with an output of another kind: a defect, reported rather
    /// than hidden.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Rejected> for RuntimeError {
    fn from(rejected: Rejected) -> Self {
        match rejected {
            Rejected::Invalid(e) => RuntimeError::Invalid(e),
            Rejected::Command(e) => RuntimeError::Command(e),
            // The embedded runtime makes no claims: a lease error would be its own defect.
            Rejected::Lease(e) => RuntimeError::Internal(e.to_string()),
        }
    }
}

impl From<OpenError> for RuntimeError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Store(e) => RuntimeError::Store(e),
            // A stored definition this build refuses: reported as bad input, as registering it
            // would be.
            OpenError::Restore(e) => RuntimeError::Invalid(e),
        }
    }
}
