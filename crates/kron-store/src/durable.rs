//! [`DurableEngine`]: the one way to open a data directory as its writer and act on it.
//!
//! Opening takes the directory's writer lock, loads what is stored (timers and runs in flight,
//! never the history) and restores an engine from it, seeded by [`engine_seed`]. Inputs are then
//! applied to the engine and what they changed is committed as one transaction. The embedded
//! runtime starts through it (its registrations, then [`DurableEngine::recover`], committed
//! before anything runs) and then hands the store and the engine to its threads; the command
//! line's offline admin applies one operator command through it and closes.
//!
//! Time is data here, as in the engine: every instant is an argument, nothing reads a clock.

use std::path::Path;

use kron_core::changes::Changes;
use kron_core::engine::{Engine, EngineConfig};
use kron_core::input::{Input, Output, Rejected};
use kron_core::time::EpochMs;

use crate::error::{OpenError, StoreError};
use crate::lock::DirLock;
use crate::writer::{Durability, Store};

/// The seed of the randomness (jitter, run ids) of an engine that process `pid` restores at
/// `now`. Two processes opening the same directory in the same millisecond still differ.
pub fn engine_seed(now: EpochMs, pid: u32) -> u64 {
    (now as u64) ^ (u64::from(pid) << 32)
}

/// An engine restored from a data directory, with the directory's [`Store`] to make what it
/// decides durable. See the module documentation.
#[derive(Debug)]
pub struct DurableEngine {
    engine: Engine,
    store: Store,
    /// What a failed commit could not write: written with the next commit, so the engine never
    /// runs ahead of storage by more than what is pending.
    unsaved: Changes,
}

impl DurableEngine {
    /// Opens `data_dir` as its only writer (see [`Store::open`]: `Locked` when another process
    /// holds it) and restores the engine stored there, for this process at `now`.
    ///
    /// Nothing is recovered yet: runs stored as running stay so until
    /// [`DurableEngine::recover`].
    pub fn open(
        data_dir: &Path,
        durability: Durability,
        config: EngineConfig,
        now: EpochMs,
    ) -> Result<DurableEngine, OpenError> {
        DurableEngine::restore(Store::open(data_dir, durability)?, config, now)
    }

    /// [`DurableEngine::open`] for a caller that already holds the directory's writer lock (a
    /// standby the lock was just granted to, see [`DirLock::wait`]).
    pub fn open_locked(
        data_dir: &Path,
        lock: DirLock,
        durability: Durability,
        config: EngineConfig,
        now: EpochMs,
    ) -> Result<DurableEngine, OpenError> {
        let store = Store::open_locked(data_dir, durability, lock)?;
        DurableEngine::restore(store, config, now)
    }

    fn restore(
        store: Store,
        config: EngineConfig,
        now: EpochMs,
    ) -> Result<DurableEngine, OpenError> {
        let stored = store.load()?;
        let seed = engine_seed(now, std::process::id());
        let engine = Engine::restored(config, seed, stored.timers, stored.runs)
            .map_err(OpenError::Restore)?;
        Ok(DurableEngine {
            engine,
            store,
            unsaved: Changes::default(),
        })
    }

    /// The engine, to read (views, definitions, next wake-up).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies one input. What it changed waits for [`DurableEngine::commit`]; a refused input
    /// changes nothing.
    pub fn apply(&mut self, input: Input) -> Result<Output, Rejected> {
        self.engine.apply(input)
    }

    /// The process that will run the timers' functions (re)starts on this state at `at`: the
    /// timers in `orphans` (it has no function for them) are marked orphaned, then runs the
    /// previous process left running are recorded as interrupted and occurrences missed
    /// meanwhile follow their catch-up policy. Commit before anything runs.
    ///
    /// Only that process recovers. The command line's offline admin does not: it cannot tell
    /// orphans, and settling catch-up at its own instant would make the application's next start
    /// catch up a second time.
    ///
    /// Returns the timers that became orphaned.
    pub fn recover(&mut self, at: EpochMs, orphans: Vec<String>) -> Vec<String> {
        let orphaned = match self.engine.apply_fact(Input::MarkOrphans {
            at,
            timers: orphans,
        }) {
            Output::Orphaned { timers } => timers,
            _ => Vec::new(),
        };
        self.engine.apply_fact(Input::Recover { at });
        orphaned
    }

    /// Commits what was applied since the last commit, as one transaction, and says whether it
    /// changed anything. If writing fails nothing is lost: the next commit writes it too.
    pub fn commit(&mut self) -> Result<bool, StoreError> {
        let mut changes = std::mem::take(&mut self.unsaved);
        changes.merge(self.engine.take_changes());
        if changes.is_empty() {
            return Ok(false);
        }
        match self.store.commit(&changes) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.unsaved = changes;
                Err(e)
            }
        }
    }

    /// Commits what is pending and hands over the store and the engine, for a runtime that
    /// commits from its own threads from here on.
    pub fn into_parts(mut self) -> Result<(Store, Engine), StoreError> {
        self.commit()?;
        Ok((self.store, self.engine))
    }

    /// Commits what is pending and closes the store: the directory is left as a single file and
    /// its lock is released.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.commit()?;
        self.store.close()
    }
}

#[cfg(test)]
mod tests;
