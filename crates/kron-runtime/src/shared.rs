//! State shared by the API caller, the scheduler thread and the workers, behind one mutex.

use std::sync::{Condvar, Mutex, MutexGuard};

use kron_core::engine::{Engine, TimerKey};

use crate::batch::Dispatched;

/// Each timer's callback, by the engine's slot for the timer ([`Engine::key`]): a table, not a
/// map keyed by name, so a timer costs one pointer here. Slots are reused after a removal, so
/// removing a timer clears its entry.
pub(crate) struct Callbacks<C> {
    slots: Vec<Option<C>>,
}

impl<C> Callbacks<C> {
    pub fn new() -> Self {
        Callbacks { slots: Vec::new() }
    }

    pub fn get(&self, key: TimerKey) -> Option<&C> {
        self.slots.get(key as usize)?.as_ref()
    }

    pub fn set(&mut self, key: TimerKey, callback: C) {
        let index = key as usize;
        if index >= self.slots.len() {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(callback);
    }

    pub fn clear(&mut self, key: TimerKey) {
        if let Some(slot) = self.slots.get_mut(key as usize) {
            *slot = None;
        }
    }
}

/// Everything the scheduler decides on. Held only for short, non-blocking sections: never while
/// committing to storage or running a callback.
pub(crate) struct SchedulerState<C> {
    pub engine: Engine,
    pub callbacks: Callbacks<C>,
    /// False once shutdown began: no new attempts start.
    pub accepting: bool,
    /// Set by shutdown after waiting for active runs: flush once more and exit.
    pub stop: bool,
    /// The scheduler exited; outcomes arriving later are not recorded (the next start reports
    /// those runs as interrupted).
    pub closed: bool,
    /// Attempts handed to workers and not yet reported (or recorded as not started).
    pub in_flight: usize,
    /// Batches queued for or held by workers, until done: what shutdown cancels.
    pub dispatched: Dispatched<C>,
    /// Batches taken from the engine / durably committed; `history()` waits for them to meet.
    pub taken_gen: u64,
    pub committed_gen: u64,
    /// The last storage error, until a commit succeeds again.
    pub storage_error: Option<String>,
    /// A commit failed and waits for its retry: the scheduler decides nothing new meanwhile.
    pub commit_failing: bool,
}

impl<C> SchedulerState<C> {
    /// The callback registered for the timer named `id`.
    pub fn callback(&self, id: &str) -> Option<&C> {
        self.callbacks.get(self.engine.key(id)?)
    }
}

pub(crate) struct Shared<C> {
    state: Mutex<SchedulerState<C>>,
    /// Wakes the scheduler: something changed.
    pub wake: Condvar,
    /// Wakes waiters: a commit finished or an attempt ended.
    pub progress: Condvar,
}

impl<C> Shared<C> {
    pub fn new(state: SchedulerState<C>) -> Self {
        Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
            progress: Condvar::new(),
        }
    }

    /// Locks the scheduler state. A panic while holding the lock (a bug) must not take the whole
    /// runtime down with poisoning: the engine's invariants hold between its calls.
    pub fn lock(&self) -> MutexGuard<'_, SchedulerState<C>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn wait_wake<'a>(
        &self,
        guard: MutexGuard<'a, SchedulerState<C>>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, SchedulerState<C>> {
        match self.wake.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    pub fn wait_progress<'a>(
        &self,
        guard: MutexGuard<'a, SchedulerState<C>>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, SchedulerState<C>> {
        match self.progress.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    pub fn notify(&self) {
        self.wake.notify_one();
        self.progress.notify_all();
    }
}
