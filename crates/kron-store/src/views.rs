//! What the timers of a data directory look like now, read without owning it.

use kron_core::engine::{Engine, EngineConfig, TimerView};
use kron_core::run::RunRecord;

use crate::error::OpenError;
use crate::reader::Reader;

/// Timers and runs in flight as one moment of the store, with the views the engine derives from
/// them, so that `state` and `next_run_at` mean exactly what they mean in a runtime.
#[derive(Debug, Clone)]
pub struct StoredViews {
    /// Sorted by timer id.
    pub views: Vec<TimerView>,
    /// Sorted by run id.
    pub runs: Vec<RunRecord>,
}

impl Reader {
    /// Every timer's view, from one read transaction: a run that finishes meanwhile is not
    /// missing from the runs while its timer still waits for it.
    pub fn views(&self) -> Result<StoredViews, OpenError> {
        let _pinned = self.pin()?;
        let timers = self.timers()?;
        let runs = self.runs()?;
        // Restored only to be read: the seed draws nothing.
        let engine = Engine::restored(EngineConfig::default(), 0, timers, runs.clone())
            .map_err(OpenError::Restore)?;
        Ok(StoredViews {
            views: engine.views(),
            runs,
        })
    }
}
