//! How a runtime is started.

use std::path::PathBuf;

use kron_core::engine::EngineConfig;
use kron_store::{Durability, DEFAULT_HISTORY_LIMIT};

/// How [`crate::Kron::start`] runs: where, with how many workers, how durably. It holds no clock:
/// the runtime reads the clock of the `Kron` that starts it (see [`crate::Kron::with_clock`]),
/// so registrations, commands and the runtime's threads share one source of time.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub data_dir: PathBuf,
    /// Worker threads that run callbacks.
    pub max_workers: usize,
    /// `Normal` (default) survives any process crash; `Full` also survives power loss, at the cost
    /// of an fsync per commit.
    pub durability: Durability,
    pub engine: EngineConfig,
    /// Keep only the latest N runs of each timer in history, and the latest N of its events that
    /// belong to no run (events of runs in flight are always kept). Applied by a background
    /// thread from start on and as history grows; `None` keeps everything. Default
    /// [`DEFAULT_HISTORY_LIMIT`] (1,000 runs, about 0.5 MB per timer).
    pub history_limit: Option<usize>,
    /// With a history limit, retention runs again after this many new events (or ten minutes
    /// after the last time, if anything was written since).
    pub retention_every_events: usize,
}

/// How far ahead of its instant the runtime starts an attempt (see
/// [`EngineConfig::start_ahead_ms`]): room for the commit of its `RUN_STARTED` (well under a
/// millisecond) and the hand-over to a worker. Instants are whole milliseconds rounded up, so an
/// exact instant with a fraction of one is still 1 to 2 ms ahead.
pub const START_AHEAD_MS: i64 = 2;

/// The default of [`RuntimeConfig::retention_every_events`].
pub const RETENTION_EVERY_EVENTS: usize = 200_000;

impl RuntimeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        RuntimeConfig {
            data_dir: data_dir.into(),
            max_workers: 8,
            durability: Durability::Normal,
            engine: EngineConfig {
                start_ahead_ms: START_AHEAD_MS,
                ..EngineConfig::default()
            },
            history_limit: Some(DEFAULT_HISTORY_LIMIT),
            retention_every_events: RETENTION_EVERY_EVENTS,
        }
    }
}
