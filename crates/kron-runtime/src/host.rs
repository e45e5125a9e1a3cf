//! What the runtime needs from its embedding: invoking callbacks and logging.

use kron_core::engine::{Dispatch, Outcome};

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
    /// Invokes a batch of callbacks on the calling worker thread and returns one outcome per job,
    /// in order. Batching lets a host pay its per-call setup (a language runtime's lock) once.
    fn invoke(&self, jobs: Vec<Job<C>>) -> Vec<Outcome>;

    /// Reports something an operator should see (storage errors and recoveries).
    fn log(&self, level: LogLevel, message: &str);
}
