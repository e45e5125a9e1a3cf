//! What the runtime needs from its embedding: invoking callbacks and logging.

use std::sync::Arc;

use kron_core::engine::{Dispatch, Outcome};

use crate::batch::Claims;

/// A callback to invoke for one dispatched attempt.
#[derive(Debug, Clone)]
pub struct Job<C> {
    pub dispatch: Dispatch,
    pub callback: C,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

pub trait Host<C>: Send + Sync + 'static {
    /// Invokes a batch of callbacks on the calling worker thread, in order, and returns one
    /// outcome per job invoked, in order. Right before invoking each job the host calls
    /// `claims.begin()`; when it returns false (the runtime is shutting down) that job and every
    /// later one must not be invoked: return the outcomes so far. Batching lets a host pay its
    /// per-call setup (a language runtime's lock) once.
    fn invoke(&self, jobs: &[Job<C>], claims: &Arc<Claims>) -> Vec<Outcome>;

    /// Reports something an operator should see (storage errors and recoveries).
    fn log(&self, level: LogLevel, message: &str);
}
