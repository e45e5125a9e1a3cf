//! The reasoning over histories written by hand, answered from memory.

use super::*;
use crate::event::{Event, EventDetail, EventKind, StoredEvent};
use crate::run::RunId;
use crate::schedule::ScheduleSpec;
use crate::time::EpochMs;
use crate::timer::{Catchup, Lifecycle, Overlap, TimerDef, TimerRecord};

const T0: EpochMs = 1_800_000_000_000;
const MIN: EpochMs = 60_000;

fn def(overlap: Overlap) -> TimerDef {
    TimerDef {
        overlap,
        ..crate::engine::tests::def("job", ScheduleSpec::Every { ms: MIN as u64 })
    }
}

fn event(seq: i64, ts: EpochMs, kind: EventKind, run: Option<&str>) -> StoredEvent {
    StoredEvent {
        seq,
        event: Event {
            ts,
            timer_id: "job".into(),
            kind,
            run_id: run.map(RunId::from),
            attempt: run.map(|_| 1),
            detail: EventDetail::default(),
        },
    }
}

fn due(seq: i64, at: EpochMs, run: &str) -> StoredEvent {
    let mut e = event(seq, at, EventKind::RunDue, Some(run));
    e.event.detail.scheduled_at = Some(at);
    e
}

fn subject(record: Option<&TimerRecord>, now: EpochMs) -> Subject<'_> {
    Subject {
        record,
        runs: &[],
        now,
        live: false,
    }
}

#[test]
fn a_succeeded_run_is_found_from_any_time_in_its_interval() {
    let rec = TimerRecord::created(def(Overlap::Skip), T0, Some(T0 + MIN), Some(T0 + MIN));
    let mut ok = event(4, T0 + MIN + 20, EventKind::RunSucceeded, Some("r1"));
    ok.event.detail.duration_ms = Some(20);
    let events = [
        event(1, T0, EventKind::TimerCreated, None),
        due(2, T0 + MIN, "r1"),
        event(3, T0 + MIN, EventKind::RunStarted, Some("r1")),
        ok,
    ];
    let log = EventLog { events: &events };
    let s = subject(Some(&rec), T0 + MIN + 30_000);
    let Ok(ex) = explain_at(&s, &log, T0 + MIN + 10_000);
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(ex.occurrence, Some(T0 + MIN));
    assert_eq!(ex.run_id.as_deref(), Some("r1"));
    assert_eq!(ex.events.len(), 3);
    assert_eq!(
        ex.findings,
        [Finding::Succeeded {
            attempt: 1,
            took_ms: Some(20),
            finished_at: T0 + MIN + 20
        }]
    );
    let Ok((at, latest)) = explain_latest(&s, &log);
    assert_eq!((at, latest), (T0 + MIN, ex));
}

#[test]
fn an_occurrence_while_paused_names_the_pause_and_resume() {
    let rec = TimerRecord::created(def(Overlap::Skip), T0, Some(T0 + MIN), Some(T0 + MIN));
    let events = [
        event(1, T0, EventKind::TimerCreated, None),
        event(2, T0 + 30_000, EventKind::TimerPaused, None),
        event(3, T0 + 5 * MIN + 30_000, EventKind::TimerResumed, None),
    ];
    let log = EventLog { events: &events };
    let Ok(ex) = explain_at(&subject(Some(&rec), T0 + 10 * MIN), &log, T0 + 3 * MIN);
    assert_eq!(ex.outcome, Outcome::Paused);
    assert_eq!(ex.occurrence, Some(T0 + 3 * MIN));
    assert_eq!(
        ex.findings,
        [Finding::Paused {
            since: T0 + 30_000,
            resumed: Some(T0 + 5 * MIN + 30_000)
        }]
    );
}

#[test]
fn no_runtime_since_the_last_event_leaves_the_occurrence_pending() {
    let rec = TimerRecord::created(def(Overlap::Skip), T0, Some(T0 + MIN), Some(T0 + MIN));
    let events = [event(1, T0, EventKind::TimerCreated, None)];
    let log = EventLog { events: &events };
    let Ok(ex) = explain_at(&subject(Some(&rec), T0 + 60 * MIN), &log, T0 + 30 * MIN);
    assert_eq!(ex.outcome, Outcome::Pending);
    assert_eq!(
        ex.findings,
        [Finding::Pending {
            quiet_since: Some(T0),
            catchup: Catchup::Once
        }]
    );
}

#[test]
fn a_delay_run_still_going_holds_the_next_occurrence() {
    let rec = TimerRecord::created(def(Overlap::Delay), T0, Some(T0 + MIN), Some(T0 + MIN));
    let events = [
        event(1, T0, EventKind::TimerCreated, None),
        due(2, T0 + MIN, "r1"),
        event(3, T0 + MIN, EventKind::RunStarted, Some("r1")),
    ];
    let log = EventLog { events: &events };
    let Ok(ex) = explain_at(&subject(Some(&rec), T0 + 5 * MIN), &log, T0 + 3 * MIN);
    assert_eq!(ex.outcome, Outcome::Running);
    assert_eq!(
        ex.findings,
        [
            Finding::OutcomeMissing {
                attempt: 1,
                started: T0 + MIN
            },
            Finding::DelayedByRun
        ]
    );
}

#[test]
fn before_creation_in_the_future_and_never_due() {
    let mut rec = TimerRecord::created(def(Overlap::Skip), T0, Some(T0 + MIN), Some(T0 + MIN));
    let log = EventLog { events: &[] };
    let s = subject(Some(&rec), T0 + 30_000);
    let Ok(ex) = explain_at(&s, &log, T0 - 10 * MIN);
    assert_eq!(ex.outcome, Outcome::NotCreated);
    let Ok(ex) = explain_at(&s, &log, T0 + 100 * MIN);
    assert_eq!(
        (ex.outcome, ex.findings),
        (
            Outcome::Future,
            vec![Finding::NotYet {
                next_due: Some(T0 + MIN)
            }]
        )
    );
    rec.lifecycle = Lifecycle::Paused;
    let s = subject(Some(&rec), T0 + 30_000);
    let Ok((at, ex)) = explain_latest(&s, &log);
    assert_eq!(at, T0 + 30_000);
    assert_eq!(
        ex.findings,
        [Finding::NeverDue {
            created_at: T0,
            standing: Standing::Paused
        }]
    );
}

#[test]
fn a_removed_timer_explains_occurrences_after_its_removal() {
    let rec = TimerRecord::created(def(Overlap::Skip), T0, Some(T0 + MIN), Some(T0 + MIN));
    let events = [
        event(1, T0, EventKind::TimerCreated, None),
        event(2, T0 + 90_000, EventKind::TimerRemoved, None),
    ];
    let log = EventLog { events: &events };
    let Ok(ex) = explain_at(&subject(Some(&rec), T0 + 10 * MIN), &log, T0 + 2 * MIN);
    assert_eq!(ex.outcome, Outcome::Removed);
    assert_eq!(ex.findings, [Finding::Removed { at: T0 + 90_000 }]);
}
