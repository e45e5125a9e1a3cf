//! The questions an explanation asks of one timer's history. Storage answers them its own way
//! (kron-store reads windows of a large history); [`EventLog`] answers them from events in
//! memory.

use std::convert::Infallible;

use crate::event::{EventKind, StoredEvent};
use crate::time::EpochMs;

/// How far forward a run is followed (retries with back-off end well within this).
pub const FOLLOW_MS: i64 = 7 * 24 * 3_600_000;

/// The kinds of a run's events.
pub const RUN_KINDS: &[EventKind] = &[
    EventKind::RunDue,
    EventKind::RunStarted,
    EventKind::RunNotStarted,
    EventKind::RunSucceeded,
    EventKind::RunFailed,
    EventKind::RunRetrying,
    EventKind::RunDead,
    EventKind::RunSkippedOverlap,
    EventKind::RunInterrupted,
];

/// The kinds that change a timer's lifecycle.
pub const LIFECYCLE: &[EventKind] = &[
    EventKind::TimerCreated,
    EventKind::TimerUpdated,
    EventKind::TimerPaused,
    EventKind::TimerResumed,
    EventKind::TimerOrphaned,
    EventKind::TimerRemoved,
];

/// Whether a run's event ends it.
pub fn is_final(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::RunSucceeded | EventKind::RunDead | EventKind::RunSkippedOverlap
    )
}

/// One timer's history, as the explanation queries it. An empty `kinds` means any kind.
pub trait History {
    type Error;

    /// The last event of these kinds with `ts <= t`.
    fn last_before(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, Self::Error>;

    /// The first event of these kinds with `ts > t`.
    fn first_after(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, Self::Error>;

    /// The events of run `run_id` ([`RUN_KINDS`]) from `from` on, oldest first: at least up to
    /// its final one ([`is_final`]), within [`FOLLOW_MS`] of `from`.
    fn run_events(&self, run_id: &str, from: EpochMs) -> Result<Vec<StoredEvent>, Self::Error>;
}

/// A timer's history held in memory, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct EventLog<'a> {
    pub events: &'a [StoredEvent],
}

fn of(kinds: &[EventKind], e: &StoredEvent) -> bool {
    kinds.is_empty() || kinds.contains(&e.event.kind)
}

impl History for EventLog<'_> {
    type Error = Infallible;

    fn last_before(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, Infallible> {
        Ok(self
            .events
            .iter()
            .rev()
            .find(|e| e.event.ts <= t && of(kinds, e))
            .cloned())
    }

    fn first_after(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, Infallible> {
        Ok(self
            .events
            .iter()
            .find(|e| e.event.ts > t && of(kinds, e))
            .cloned())
    }

    fn run_events(&self, run_id: &str, from: EpochMs) -> Result<Vec<StoredEvent>, Infallible> {
        let mut out = Vec::new();
        let end = from.saturating_add(FOLLOW_MS);
        for e in self.events.iter().filter(|e| {
            (from..=end).contains(&e.event.ts)
                && of(RUN_KINDS, e)
                && e.event
                    .run_id
                    .as_ref()
                    .is_some_and(|r| r.as_str() == run_id)
        }) {
            out.push(e.clone());
            if is_final(e.event.kind) {
                break;
            }
        }
        Ok(out)
    }
}
