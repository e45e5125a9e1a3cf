//! Batches of attempts handed to the workers, and the claim that decides, per attempt, whether
//! its callback begins or shutdown came first.
//!
//! A batch is claimed in order by the one worker that runs it: before each callback the worker
//! (or the host it calls) claims the next attempt. Shutdown cancels every batch still held: the
//! attempts claimed by then have begun (shutdown waits for them), the rest never will, and
//! shutdown records them as not started. One atomic decides both sides, so an attempt is either
//! begun or cancelled, never both and never neither.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::host::Job;

/// Set in [`Claims`]' word once shutdown cancelled the batch; the low bits count the attempts
/// claimed (begun) before that.
const CANCELLED: u32 = 1 << 31;

/// The begin claims of one batch. Shared with the host for the time of a call, so it can claim
/// each attempt right before invoking it.
#[derive(Debug, Default)]
pub struct Claims(AtomicU32);

impl Claims {
    /// Claims the batch's next attempt: true if its callback may begin now, false once shutdown
    /// cancelled the batch (this attempt and every later one must not begin). Uncontended: one
    /// compare-and-swap.
    pub fn begin(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                (word & CANCELLED == 0).then_some(word + 1)
            })
            .is_ok()
    }

    /// Attempts claimed so far.
    pub(crate) fn begun(&self) -> usize {
        (self.0.load(Ordering::Acquire) & !CANCELLED) as usize
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// Cancels the batch: no attempt begins from now on. Returns how many had begun.
    fn cancel(&self) -> usize {
        (self.0.fetch_or(CANCELLED, Ordering::AcqRel) & !CANCELLED) as usize
    }
}

/// Attempts handed to one worker together, invoked in order.
pub(crate) struct Batch<C> {
    pub jobs: Vec<Job<C>>,
    pub claims: Arc<Claims>,
    /// Its place in [`Dispatched`].
    slot: usize,
}

/// Every batch handed to the workers and not yet done, so that shutdown can find the attempts
/// that have not begun: those still queued, and those later in a batch whose earlier callback
/// runs. A table with a free list: a batch is added and removed under the core's lock, which
/// the committer and the worker take at those moments anyway.
pub(crate) struct Dispatched<C> {
    slots: Vec<Option<Arc<Batch<C>>>>,
    free: Vec<usize>,
}

impl<C> Default for Dispatched<C> {
    fn default() -> Self {
        Dispatched {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<C> Dispatched<C> {
    /// Registers `jobs` as a batch about to be queued for the workers.
    pub fn add(&mut self, jobs: Vec<Job<C>>) -> Arc<Batch<C>> {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        let batch = Arc::new(Batch {
            jobs,
            claims: Arc::default(),
            slot,
        });
        if slot == self.slots.len() {
            self.slots.push(Some(batch.clone()));
        } else {
            self.slots[slot] = Some(batch.clone());
        }
        batch
    }

    /// The batch is done (every attempt reported, or cancelled).
    pub fn remove(&mut self, batch: &Arc<Batch<C>>) {
        if let Some(entry) = self.slots.get_mut(batch.slot) {
            if entry.as_ref().is_some_and(|held| Arc::ptr_eq(held, batch)) {
                *entry = None;
                self.free.push(batch.slot);
            }
        }
    }

    /// Cancels every batch: calls `not_started` for each attempt that had not begun, and returns
    /// how many those were. The batches stay with their workers, which report what did begin.
    pub fn cancel_all(&mut self, mut not_started: impl FnMut(&Job<C>)) -> usize {
        let mut count = 0;
        for batch in self.slots.drain(..).flatten() {
            let begun = batch.claims.cancel();
            for job in batch.jobs.iter().skip(begun) {
                not_started(job);
                count += 1;
            }
        }
        self.free.clear();
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_either_begun_or_cancelled() {
        let claims = Claims::default();
        assert!(claims.begin());
        assert!(claims.begin());
        assert_eq!(claims.cancel(), 2);
        assert!(!claims.begin());
        assert!(claims.is_cancelled());
        assert_eq!(claims.begun(), 2);
    }

    #[test]
    fn claims_race_with_cancel_without_losing_an_attempt() {
        for _ in 0..200 {
            let claims = Arc::new(Claims::default());
            let worker = {
                let claims = claims.clone();
                std::thread::spawn(move || (0..32).take_while(|_| claims.begin()).count())
            };
            let at_cancel = claims.cancel();
            let begun = worker.join().unwrap_or(usize::MAX);
            assert_eq!(begun, at_cancel);
        }
    }
}
