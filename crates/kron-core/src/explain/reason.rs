//! The reasoning: which occurrence an instant is about, and what history says happened to it.
//!
//! The occurrence explained is the one due at or just before the instant ([`TOLERANCE_MS`] of
//! tolerance): the latest `RUN_DUE` written by then, or a later catch-up (`RUN_DUE` standing
//! for missed occurrences, `RUN_MISSED`) covering it. If the schedule says another occurrence
//! fell due between that one and the instant, that occurrence is explained instead: paused,
//! orphaned, removed, waiting for a `delay` run to finish, or still pending because no runtime
//! has run since.

use super::answer::{Explanation, Finding, Outcome, Standing};
use super::history::{is_final, History, LIFECYCLE};
use crate::event::{EventKind, StoredEvent};
use crate::run::RunRecord;
use crate::schedule::{Schedule, ScheduleSpec};
use crate::time::EpochMs;
use crate::timer::{Catchup, Lifecycle, Overlap, TimerRecord};

/// Tolerance around the asked time: asking for 08:00:00 finds the occurrence due at 08:00:00.4.
/// Never more than half the schedule's period, so a fast timer's next occurrence is not taken.
pub const TOLERANCE_MS: i64 = 1_000;

/// The timer an explanation is about, as read together at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Its record, when it still exists (its stored next occurrence settled against `runs`).
    pub record: Option<&'a TimerRecord>,
    /// Every run in flight, read with the record.
    pub runs: &'a [RunRecord],
    pub now: EpochMs,
    /// Whether a runtime is running on the data now.
    pub live: bool,
}

/// Why the timer did or did not run around `at`.
pub fn explain_at<H: History>(
    subject: &Subject<'_>,
    history: &H,
    at: EpochMs,
) -> Result<Explanation, H::Error> {
    Reasoner::new(subject, history).explain(at)
}

/// Explains the timer's latest due occurrence, or that it never fell due (then "at" is now).
/// Returns the instant explained with the explanation.
pub fn explain_latest<H: History>(
    subject: &Subject<'_>,
    history: &H,
) -> Result<(EpochMs, Explanation), H::Error> {
    let reasoner = Reasoner::new(subject, history);
    Ok(match reasoner.last_due_time()? {
        Some(at) => (at, reasoner.explain(at)?),
        None => (subject.now, reasoner.never_due()),
    })
}

/// The nominal occurrence a due or missed event is about.
fn scheduled(e: &StoredEvent) -> EpochMs {
    e.event.detail.scheduled_at.unwrap_or(e.event.ts)
}

/// The last occurrence an event covers (a catch-up stands for several).
fn covered_until(e: &StoredEvent) -> EpochMs {
    e.event.detail.until.unwrap_or_else(|| scheduled(e))
}

fn run_id_of(e: &StoredEvent) -> String {
    e.event
        .run_id
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default()
}

/// What the schedule says comes after an occurrence.
enum Next {
    /// The next occurrence after the chosen one.
    At(EpochMs),
    /// A `delay` timer whose run has not finished: the next occurrence waits for it.
    WaitingForRun,
    Unknown,
}

struct Reasoner<'a, H> {
    subject: &'a Subject<'a>,
    hist: &'a H,
    schedule: Option<Schedule>,
}

impl<'a, H: History> Reasoner<'a, H> {
    fn new(subject: &'a Subject<'a>, hist: &'a H) -> Self {
        let schedule = subject
            .record
            .and_then(|r| Schedule::from_spec(r.def.schedule.clone()).ok());
        Reasoner {
            subject,
            hist,
            schedule,
        }
    }

    fn record(&self) -> Option<&'a TimerRecord> {
        self.subject.record
    }

    /// The definition of the schedule, when it compiled.
    fn spec(&self) -> Option<&'a ScheduleSpec> {
        self.schedule
            .as_ref()
            .and(self.record().map(|r| &r.def.schedule))
    }

    /// How close to the asked time an occurrence must be to count as "at" it.
    fn tolerance(&self) -> i64 {
        let period = match self.schedule.as_ref().zip(self.spec()) {
            Some((_, ScheduleSpec::Every { ms })) => i64::try_from(*ms).unwrap_or(i64::MAX),
            Some((s, ScheduleSpec::Cron { .. })) => s
                .next_after(self.subject.now)
                .and_then(|a| s.next_after(a).map(|b| b.saturating_sub(a)))
                .unwrap_or(i64::MAX),
            _ => i64::MAX,
        };
        TOLERANCE_MS.min(period / 2)
    }

    /// The nominal time of the timer's latest due (or missed) occurrence.
    fn last_due_time(&self) -> Result<Option<EpochMs>, H::Error> {
        let last = self
            .hist
            .last_before(&[EventKind::RunDue, EventKind::RunMissed], i64::MAX)?;
        Ok(last.map(|e| match e.event.kind {
            EventKind::RunMissed => covered_until(&e),
            _ => scheduled(&e),
        }))
    }

    fn never_due(&self) -> Explanation {
        let finding = match self.record() {
            Some(rec) => Finding::NeverDue {
                created_at: rec.created_at,
                standing: match (rec.lifecycle, rec.next_fire_at) {
                    (Lifecycle::Paused, _) => Standing::Paused,
                    (Lifecycle::Orphaned, _) => Standing::Orphaned,
                    (_, Some(at)) => Standing::FirstDue(at),
                    (_, None) => Standing::Unscheduled,
                },
            },
            None => Finding::NoDueInHistory,
        };
        Explanation::plain(Outcome::NeverDue, None, finding)
    }

    fn explain(&self, at: EpochMs) -> Result<Explanation, H::Error> {
        let now = self.subject.now;
        if at > now.saturating_add(TOLERANCE_MS) {
            let next_due = self.record().and_then(|r| match r.lifecycle {
                Lifecycle::Active => r.next_fire_at,
                _ => None,
            });
            return Ok(Explanation::plain(
                Outcome::Future,
                None,
                Finding::NotYet { next_due },
            ));
        }
        if let Some(rec) = self.record() {
            if rec.created_at > at.saturating_add(TOLERANCE_MS) {
                let first = self
                    .hist
                    .first_after(&[EventKind::RunDue], rec.created_at.saturating_sub(1))?;
                return Ok(Explanation::plain(
                    Outcome::NotCreated,
                    None,
                    Finding::NotCreatedYet {
                        created_at: rec.created_at,
                        first_due: first.as_ref().map(scheduled),
                    },
                ));
            }
        }

        // The occurrence at or before `at`: the latest due event written by then, or a later
        // catch-up that covers `at`.
        let tolerance = self.tolerance();
        let horizon = at.saturating_add(tolerance);
        let before = self.last_scheduled_due(horizon)?;
        let manual = self
            .hist
            .last_before(&[EventKind::RunDue], horizon)?
            .filter(|e| {
                e.event.detail.manual
                    && at.saturating_sub(scheduled(e)).saturating_abs() <= tolerance
                    && before.as_ref().is_none_or(|b| scheduled(e) >= scheduled(b))
            });
        if let Some(manual) = manual {
            return self.narrate_run(&manual);
        }
        let catch_up = self
            .hist
            .first_after(&[EventKind::RunDue, EventKind::RunMissed], horizon)?
            .filter(|e| scheduled(e) <= horizon && !e.event.detail.manual);
        let chosen = match (before, catch_up) {
            (Some(b), Some(c)) if scheduled(&c) >= scheduled(&b) => Some(c),
            (Some(b), _) => Some(b),
            (None, c) => c,
        };

        // Did the schedule have another occurrence between the chosen one and `at`?
        match &chosen {
            Some(event) => match self.next_expected(event)? {
                Next::At(gap) if gap <= horizon => self.explain_gap(gap, Some(event)),
                Next::WaitingForRun if event.event.kind == EventKind::RunDue => {
                    let mut ex = self.narrate_run(event)?;
                    if self.delay_interval_passed(event, at) {
                        ex.findings.push(Finding::DelayedByRun);
                    }
                    Ok(ex)
                }
                _ if event.event.kind == EventKind::RunMissed => Ok(narrate_missed(event)),
                _ => self.narrate_run(event),
            },
            None => match self.expected_at_or_before(at) {
                Some(gap) => self.explain_gap(gap, None),
                None => {
                    let finding = match self.hist.first_after(&[], 0)? {
                        Some(e) if e.event.ts > at => {
                            Finding::HistoryStartsLater { oldest: e.event.ts }
                        }
                        _ => Finding::NoOccurrence,
                    };
                    Ok(Explanation::plain(Outcome::Unknown, None, finding))
                }
            },
        }
    }

    /// The latest scheduled (not manual) due event written by `t`.
    fn last_scheduled_due(&self, t: EpochMs) -> Result<Option<StoredEvent>, H::Error> {
        let mut until = t;
        // Manual triggers are rare; skip over a few of them.
        for _ in 0..16 {
            match self.hist.last_before(&[EventKind::RunDue], until)? {
                Some(e) if e.event.detail.manual => until = e.event.ts.saturating_sub(1),
                other => return Ok(other),
            }
        }
        Ok(None)
    }

    /// What the schedule says comes after the chosen occurrence.
    fn next_expected(&self, chosen: &StoredEvent) -> Result<Next, H::Error> {
        let (Some(schedule), Some(rec)) = (&self.schedule, self.record()) else {
            return Ok(Next::Unknown);
        };
        if schedule.is_one_shot() {
            return Ok(Next::Unknown);
        }
        let last = covered_until(chosen);
        if rec.def.overlap == Overlap::Delay && chosen.event.kind == EventKind::RunDue {
            let events = self.hist.run_events(&run_id_of(chosen), chosen.event.ts)?;
            let finish = events
                .iter()
                .find(|e| is_final(e.event.kind))
                .map(|e| e.event.ts);
            return Ok(match finish {
                Some(f) => match &rec.def.schedule {
                    ScheduleSpec::Every { ms } => {
                        Next::At(f.saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX)))
                    }
                    _ => schedule.next_after(f).map_or(Next::Unknown, Next::At),
                },
                None => Next::WaitingForRun,
            });
        }
        Ok(schedule.next_after(last).map_or(Next::Unknown, Next::At))
    }

    /// Whether a `delay` timer's interval passed during the (unfinished) run, so "why did it not
    /// run again" is worth answering.
    fn delay_interval_passed(&self, chosen: &StoredEvent, at: EpochMs) -> bool {
        match self.spec() {
            Some(ScheduleSpec::Every { ms }) => {
                scheduled(chosen).saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX)) <= at
            }
            Some(ScheduleSpec::Cron { .. }) => self
                .schedule
                .as_ref()
                .and_then(|s| s.next_after(scheduled(chosen)))
                .is_some_and(|n| n <= at),
            _ => false,
        }
    }

    /// The schedule's latest occurrence at or before `t`, when no history anchors it.
    fn expected_at_or_before(&self, t: EpochMs) -> Option<EpochMs> {
        let schedule = self.schedule.as_ref()?;
        let rec = self.record()?;
        match &rec.def.schedule {
            ScheduleSpec::At { at_ms, .. } => (*at_ms <= t).then_some(*at_ms),
            ScheduleSpec::After { .. } | ScheduleSpec::Every { .. } => {
                // The grid starts at the first occurrence after creation.
                let first = schedule.first(rec.created_at)?;
                if first > t {
                    return None;
                }
                match &rec.def.schedule {
                    ScheduleSpec::Every { ms } => {
                        let ms = i64::try_from(*ms).ok()?;
                        Some(first + (t - first) / ms * ms)
                    }
                    _ => Some(first),
                }
            }
            ScheduleSpec::Cron { .. } => {
                let mut window: i64 = 60_000;
                while window < 800 * 86_400_000 {
                    let start = t.saturating_sub(window).max(rec.created_at);
                    let mut last = None;
                    let mut cursor = start;
                    while let Some(next) = schedule.next_after(cursor) {
                        if next > t {
                            break;
                        }
                        last = Some(next);
                        cursor = next;
                    }
                    if last.is_some() || start == rec.created_at {
                        return last;
                    }
                    window = window.saturating_mul(4);
                }
                None
            }
        }
    }

    /// An occurrence (`gap`) the schedule had but history has no run for.
    fn explain_gap(
        &self,
        gap: EpochMs,
        previous: Option<&StoredEvent>,
    ) -> Result<Explanation, H::Error> {
        let lifecycle = self
            .hist
            .last_before(LIFECYCLE, gap.saturating_add(self.tolerance()))?;
        let mut events: Vec<StoredEvent> = Vec::new();
        if let Some(e) = &lifecycle {
            events.push(e.clone());
        }
        let since = lifecycle.as_ref().map_or(gap, |e| e.event.ts);
        let (outcome, finding) = match lifecycle.as_ref().map(|e| e.event.kind) {
            Some(EventKind::TimerPaused) => {
                let resumed = self.hist.first_after(&[EventKind::TimerResumed], since)?;
                let finding = Finding::Paused {
                    since,
                    resumed: resumed.as_ref().map(|r| r.event.ts),
                };
                events.extend(resumed);
                (Outcome::Paused, finding)
            }
            Some(EventKind::TimerOrphaned) => {
                let revived = self.hist.first_after(&[EventKind::TimerResumed], since)?;
                let finding = Finding::Orphaned {
                    since,
                    registered_again: revived.as_ref().map(|r| r.event.ts),
                };
                events.extend(revived);
                (Outcome::Orphaned, finding)
            }
            Some(EventKind::TimerRemoved) => (Outcome::Removed, Finding::Removed { at: since }),
            _ => {
                let last_event = self.hist.last_before(&[], i64::MAX)?;
                let quiet_since = last_event.as_ref().map(|e| e.event.ts);
                if !self.subject.live && quiet_since.is_none_or(|t| t < gap) {
                    let catchup = self.record().map_or(Catchup::Once, |r| r.def.catchup);
                    (
                        Outcome::Pending,
                        Finding::Pending {
                            quiet_since,
                            catchup,
                        },
                    )
                } else {
                    (
                        Outcome::Unknown,
                        Finding::Unexplained {
                            gap,
                            previous: previous.map(scheduled),
                        },
                    )
                }
            }
        };
        Ok(Explanation {
            occurrence: Some(gap),
            outcome,
            run_id: None,
            manual: false,
            findings: vec![finding],
            events,
        })
    }

    /// What happened to the run a `RUN_DUE` created.
    fn narrate_run(&self, due: &StoredEvent) -> Result<Explanation, H::Error> {
        let run_id = run_id_of(due);
        let mut events = self.hist.run_events(&run_id, due.event.ts)?;
        if !events.iter().any(|e| e.seq == due.seq) {
            events.insert(0, due.clone());
        }
        let d = &due.event.detail;
        let manual = d.manual;
        let occurrence = scheduled(due);
        let mut findings: Vec<Finding> = Vec::new();
        if manual {
            findings.push(Finding::Manual { at: due.event.ts });
        } else if let (Some(count), Some(until)) = (d.count, d.until) {
            findings.push(Finding::CaughtUp {
                recorded_at: due.event.ts,
                count,
                from: occurrence,
                until,
            });
        } else if due.event.ts.saturating_sub(occurrence) > TOLERANCE_MS {
            findings.push(Finding::RecordedLate {
                due: occurrence,
                recorded_at: due.event.ts,
            });
        }
        // An attempt whose start was undone (shutdown came before it began) does not count.
        let count_of = |kind: EventKind| events.iter().filter(|e| e.event.kind == kind).count();
        let attempts =
            count_of(EventKind::RunStarted).saturating_sub(count_of(EventKind::RunNotStarted));
        if let Some(first_start) = events
            .iter()
            .find(|e| e.event.kind == EventKind::RunStarted)
        {
            let late = first_start.event.ts.saturating_sub(occurrence);
            if late > TOLERANCE_MS && !manual && d.count.is_none() {
                findings.push(Finding::StartedLate {
                    late_ms: u64::try_from(late).unwrap_or(0),
                });
            }
        }
        for failure in &events {
            let attempt = failure.event.attempt.unwrap_or(0);
            match failure.event.kind {
                EventKind::RunInterrupted => findings.push(Finding::Interrupted {
                    attempt,
                    found_at: failure.event.ts,
                }),
                EventKind::RunFailed => findings.push(Finding::Failed {
                    attempt,
                    after_ms: failure.event.detail.duration_ms,
                    error: failure
                        .event
                        .detail
                        .error
                        .as_deref()
                        .and_then(|e| e.lines().next())
                        .unwrap_or("")
                        .to_string(),
                }),
                _ => {}
            }
        }
        let last = events.last();
        let outcome = match last.map(|e| e.event.kind) {
            Some(EventKind::RunSucceeded) => {
                findings.push(Finding::Succeeded {
                    attempt: last.and_then(|e| e.event.attempt).unwrap_or(1),
                    took_ms: last.and_then(|e| e.event.detail.duration_ms),
                    finished_at: last.map_or(0, |e| e.event.ts),
                });
                Outcome::Succeeded
            }
            Some(EventKind::RunDead) => {
                findings.push(Finding::Dead { attempts });
                Outcome::Dead
            }
            Some(EventKind::RunSkippedOverlap) => {
                findings.push(Finding::SkippedOverlap);
                Outcome::SkippedOverlap
            }
            Some(EventKind::RunRetrying) => {
                findings.push(Finding::Retrying {
                    next_attempt_at: last.and_then(|e| e.event.detail.next_attempt_at),
                });
                Outcome::Retrying
            }
            Some(EventKind::RunNotStarted) => {
                findings.push(Finding::NotStarted {
                    attempt: last.and_then(|e| e.event.attempt).unwrap_or(1),
                });
                Outcome::Due
            }
            Some(EventKind::RunStarted) => {
                let attempt = attempts.max(1);
                let started = last.map_or(0, |e| e.event.ts);
                let in_flight = self
                    .subject
                    .runs
                    .iter()
                    .any(|r| r.run_id.as_str() == run_id);
                findings.push(if in_flight {
                    Finding::Running { attempt, started }
                } else {
                    Finding::OutcomeMissing { attempt, started }
                });
                Outcome::Running
            }
            _ => {
                let paused = self
                    .record()
                    .is_some_and(|r| r.lifecycle == Lifecycle::Paused);
                findings.push(if paused && !manual {
                    Finding::HeldByPause
                } else if self.subject.live {
                    Finding::AboutToStart
                } else {
                    Finding::WaitingForRuntime
                });
                Outcome::Due
            }
        };
        Ok(Explanation {
            occurrence: Some(occurrence),
            outcome,
            run_id: Some(run_id),
            manual,
            findings,
            events,
        })
    }
}

fn narrate_missed(missed: &StoredEvent) -> Explanation {
    let d = &missed.event.detail;
    Explanation {
        occurrence: Some(scheduled(missed)),
        outcome: Outcome::Missed,
        run_id: None,
        manual: false,
        findings: vec![Finding::Missed {
            count: d.count.unwrap_or(1),
            from: scheduled(missed),
            until: covered_until(missed),
            recorded_at: missed.event.ts,
            next_run_at: d.next_run_at,
        }],
        events: vec![missed.clone()],
    }
}
