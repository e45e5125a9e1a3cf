//! Events: the append-only history. Every change to a timer or run is one event, written in the
//! same transaction as the state it produces.

use serde::{Deserialize, Serialize};

use crate::run::RunId;
use crate::time::EpochMs;

macro_rules! event_kinds {
    ($($variant:ident = $text:literal: $doc:literal),+ $(,)?) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind {
            $(#[doc = $doc] $variant),+
        }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<EventKind> {
                match text { $($text => Some(EventKind::$variant),)+ _ => None }
            }
        }
    };
}

event_kinds! {
    TimerCreated = "TIMER_CREATED": "A timer was registered for the first time.",
    TimerUpdated = "TIMER_UPDATED": "A timer was registered again with a different definition.",
    TimerPaused = "TIMER_PAUSED": "The timer will start no runs until resumed.",
    TimerResumed = "TIMER_RESUMED": "A paused timer is active again.",
    TimerRemoved = "TIMER_REMOVED": "The timer was deleted; its history stays.",
    TimerOrphaned = "TIMER_ORPHANED": "The runtime started without a function for this persisted timer.",
    RunDue = "RUN_DUE": "An occurrence is due (written ahead of its instant); a run exists for it.",
    RunStarted = "RUN_STARTED": "An attempt was handed to a worker.",
    RunNotStarted = "RUN_NOT_STARTED": "Shutdown came before the attempt handed to a worker began: it is due again at the next start, with the same attempt number (it did not count).",
    RunSucceeded = "RUN_SUCCEEDED": "The attempt returned normally.",
    RunFailed = "RUN_FAILED": "The attempt raised.",
    RunRetrying = "RUN_RETRYING": "Another attempt is scheduled at next_attempt_at.",
    RunDead = "RUN_DEAD": "The last attempt failed; the run is over.",
    RunSkippedOverlap = "RUN_SKIPPED_OVERLAP": "The occurrence found a run in progress and was skipped (overlap=skip).",
    RunMissed = "RUN_MISSED": "Occurrences fell due while no runtime was up and were not run (catchup=skip).",
    RunInterrupted = "RUN_INTERRUPTED": "The process ended during the attempt; found at the next start.",
    RunClaimed = "RUN_CLAIMED": "Server mode: a worker claimed the run under a lease (detail: worker, fencing_token); follows the attempt's RUN_STARTED.",
    RunLeaseExpired = "RUN_LEASE_EXPIRED": "Server mode: the worker's lease ran out before it reported (detail: worker, fencing_token); RUN_INTERRUPTED follows.",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind-specific fields. Absent fields are not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The occurrence a run event is about (nominal, before jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<EpochMs>,
    /// Error type, message and traceback of a failed attempt, or why a run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<EpochMs>,
    /// RUN_MISSED: how many occurrences; RUN_DUE: how many missed occurrences this run stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// RUN_MISSED / coalesced RUN_DUE: the last occurrence covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<EpochMs>,
    /// RUN_DUE from `trigger`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    /// TIMER_CREATED / TIMER_UPDATED: the schedule as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When the timer's next occurrence was set by this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<EpochMs>,
    /// RUN_CLAIMED / RUN_LEASE_EXPIRED: the worker holding the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// RUN_CLAIMED / RUN_LEASE_EXPIRED: the claim's fencing token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<u64>,
}

impl EventDetail {
    pub fn is_empty(&self) -> bool {
        *self == EventDetail::default()
    }
}

/// One history entry. `seq` is assigned by storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub ts: EpochMs,
    pub timer_id: String,
    pub kind: EventKind,
    pub run_id: Option<RunId>,
    pub attempt: Option<u32>,
    pub detail: EventDetail,
}

/// An event as read back from storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: Event,
}
