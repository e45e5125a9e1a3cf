//! A timer's next occurrence once an occurrence became a due run, and how a stored record is
//! brought up to date with it.
//!
//! Making an occurrence due writes its run row and its `RUN_DUE`, but not the timer's row: the
//! run row says the occurrence is taken, and the row is rewritten anyway with the run's outcome.
//! That saves one of the two timer-row writes of every run (the widest row a run touches). So a
//! stored record may still name, as its next occurrence, one that already has a run in flight;
//! [`settle_taken_occurrences`] moves it on exactly as the engine did in memory. Every reader of
//! stored records goes through it (start-up, and the command line on a live or stopped
//! directory).

use std::collections::HashSet;

use crate::run::RunRecord;
use crate::schedule::Schedule;
use crate::time::EpochMs;
use crate::timer::{Overlap, TimerRecord};

/// The next occurrence of a timer after the one ending at `after` became a due run: the grid's
/// next for recurring `skip` / `allow` timers; none for one-shots, and none for `delay` timers
/// (theirs is counted from the run's finish).
pub(crate) fn next_after_due(
    schedule: &Schedule,
    overlap: Overlap,
    after: EpochMs,
) -> Option<EpochMs> {
    match overlap {
        Overlap::Skip | Overlap::Allow if !schedule.is_one_shot() => schedule.next_after(after),
        _ => None,
    }
}

/// Moves the record's next occurrence past every occurrence that `taken` says already has a run,
/// as making it due did in memory. Only records whose row was not rewritten then can be behind,
/// and those have no jitter, so the next fire time is the next occurrence itself.
pub(crate) fn settle_record(
    rec: &mut TimerRecord,
    schedule: &Schedule,
    taken: impl Fn(EpochMs) -> bool,
) {
    let mut moved = false;
    while let Some(at) = rec.next_scheduled_at.filter(|at| taken(*at)) {
        rec.next_scheduled_at = next_after_due(schedule, rec.def.overlap, at);
        moved = true;
    }
    if moved {
        rec.next_fire_at = rec.next_scheduled_at;
    }
}

/// Brings stored records up to date with the stored runs in flight (see the module
/// documentation). Records whose schedule does not compile are left as they are: loading them
/// reports that.
pub fn settle_taken_occurrences(timers: &mut [TimerRecord], runs: &[RunRecord]) {
    let taken = taken_occurrences(runs);
    for rec in timers {
        if let Ok(schedule) = Schedule::from_spec(rec.def.schedule.clone()) {
            let id = rec.def.id.clone();
            settle_record(rec, &schedule, |at| taken.contains(&(&*id, at)));
        }
    }
}

/// (timer, scheduled instant) of every scheduled run in flight. Manual runs do not take an
/// occurrence.
pub(crate) fn taken_occurrences(runs: &[RunRecord]) -> HashSet<(&str, EpochMs)> {
    runs.iter()
        .filter(|run| !run.manual)
        .map(|run| (run.timer_id.as_str(), run.scheduled_at))
        .collect()
}
