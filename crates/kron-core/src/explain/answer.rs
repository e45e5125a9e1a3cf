//! The answer to "why did (or didn't) this timer run then": an outcome, the occurrence it is
//! about, and the findings that explain it as data. Words are the caller's to choose.

use crate::event::StoredEvent;
use crate::time::EpochMs;
use crate::timer::Catchup;

/// What an explanation concludes about the occurrence it explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The run succeeded (maybe after retries).
    Succeeded,
    /// Every attempt failed: the run is over.
    Dead,
    /// The occurrence found a run in progress and was skipped (overlap=skip).
    SkippedOverlap,
    /// An attempt failed and another is scheduled.
    Retrying,
    /// An attempt started and history has no outcome for it yet.
    Running,
    /// The run exists and has not started.
    Due,
    /// It fell due while no runtime was up and was recorded as missed (catchup=skip).
    Missed,
    /// The timer was paused when it fell due.
    Paused,
    /// The timer was orphaned (no function registered) when it fell due.
    Orphaned,
    /// The timer had been removed.
    Removed,
    /// The time asked about is before the timer was created.
    NotCreated,
    /// It is due and no runtime has run since: catch-up decides at the next start.
    Pending,
    /// The timer has never been due.
    NeverDue,
    /// The time asked about has not come yet.
    Future,
    /// History does not say.
    Unknown,
}

impl Outcome {
    /// The outcome's name in `kron job explain --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Dead => "dead",
            Outcome::SkippedOverlap => "skipped_overlap",
            Outcome::Retrying => "retrying",
            Outcome::Running => "running",
            Outcome::Due => "due",
            Outcome::Missed => "missed",
            Outcome::Paused => "paused",
            Outcome::Orphaned => "orphaned",
            Outcome::Removed => "removed",
            Outcome::NotCreated => "not_created",
            Outcome::Pending => "pending",
            Outcome::NeverDue => "never_due",
            Outcome::Future => "future",
            Outcome::Unknown => "unknown",
        }
    }
}

/// What a timer that has never been due is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Paused,
    Orphaned,
    /// Active, with its first occurrence due then.
    FirstDue(EpochMs),
    /// Active, with no occurrence scheduled.
    Unscheduled,
}

/// One fact of an explanation, in the order a reader wants them. Instants are epoch ms; the
/// timer's name is the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The timer exists and has never been due.
    NeverDue {
        created_at: EpochMs,
        standing: Standing,
    },
    /// Neither the timer nor any due occurrence of it is known.
    NoDueInHistory,
    /// The time asked about has not come; the active timer's next run, when known.
    NotYet { next_due: Option<EpochMs> },
    /// The time asked about is before the timer was created.
    NotCreatedYet {
        created_at: EpochMs,
        first_due: Option<EpochMs>,
    },
    /// History has nothing for the timer at the time asked about.
    HistoryStartsLater { oldest: EpochMs },
    /// History records no occurrence at or before the time asked about.
    NoOccurrence,
    /// The occurrence fell while the timer was paused.
    Paused {
        since: EpochMs,
        resumed: Option<EpochMs>,
    },
    /// The occurrence fell while the timer was orphaned.
    Orphaned {
        since: EpochMs,
        registered_again: Option<EpochMs>,
    },
    /// The occurrence fell after the timer was removed.
    Removed { at: EpochMs },
    /// No runtime has run since the timer's last event (`None`: it has none); the occurrence
    /// waits for the next start, where `catchup` decides.
    Pending {
        quiet_since: Option<EpochMs>,
        catchup: Catchup,
    },
    /// The schedule had an occurrence at `gap` and nothing in history explains its absence.
    Unexplained {
        gap: EpochMs,
        previous: Option<EpochMs>,
    },
    /// Occurrences `from..=until` fell due while down and were recorded as missed at
    /// `recorded_at` (catchup=skip).
    Missed {
        count: u64,
        from: EpochMs,
        until: EpochMs,
        recorded_at: EpochMs,
        next_run_at: Option<EpochMs>,
    },
    /// The run was triggered by hand.
    Manual { at: EpochMs },
    /// One run stood for `count` occurrences missed while down (catchup=once).
    CaughtUp {
        recorded_at: EpochMs,
        count: u64,
        from: EpochMs,
        until: EpochMs,
    },
    /// The occurrence was recorded as due well after it fell due (catch-up after a pause in
    /// the process).
    RecordedLate { due: EpochMs, recorded_at: EpochMs },
    /// The first attempt started this long after the occurrence.
    StartedLate { late_ms: u64 },
    /// An attempt was interrupted by the process ending; found at `found_at`.
    Interrupted { attempt: u32, found_at: EpochMs },
    /// An attempt failed: the first line of its error.
    Failed {
        attempt: u32,
        after_ms: Option<u64>,
        error: String,
    },
    Succeeded {
        attempt: u32,
        took_ms: Option<u64>,
        finished_at: EpochMs,
    },
    /// The run gave up after `attempts` attempts.
    Dead { attempts: usize },
    /// overlap=skip skipped the occurrence: the previous run was still in progress.
    SkippedOverlap,
    /// Another attempt is scheduled.
    Retrying { next_attempt_at: Option<EpochMs> },
    /// The attempt handed to a worker never began (shutdown); it runs at the next start.
    NotStarted { attempt: u32 },
    /// The attempt is in flight.
    Running { attempt: usize, started: EpochMs },
    /// The attempt started and its outcome is not in history (the process may have ended).
    OutcomeMissing { attempt: usize, started: EpochMs },
    /// Due but held: the timer is paused.
    HeldByPause,
    /// Due, and a runtime is up to start it.
    AboutToStart,
    /// Due, and no runtime is running.
    WaitingForRuntime,
    /// overlap=delay: the next occurrence is computed from this run's finish.
    DelayedByRun,
}

/// Why a timer did or did not run around an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The occurrence explained: its nominal due time, when there is one.
    pub occurrence: Option<EpochMs>,
    pub outcome: Outcome,
    /// The run the occurrence made, when it made one.
    pub run_id: Option<String>,
    /// Whether that run was triggered by hand.
    pub manual: bool,
    pub findings: Vec<Finding>,
    /// The history events the findings rest on, oldest first.
    pub events: Vec<StoredEvent>,
}

impl Explanation {
    pub(super) fn plain(
        outcome: Outcome,
        occurrence: Option<EpochMs>,
        finding: Finding,
    ) -> Explanation {
        Explanation {
            occurrence,
            outcome,
            run_id: None,
            manual: false,
            findings: vec![finding],
            events: Vec::new(),
        }
    }
}
