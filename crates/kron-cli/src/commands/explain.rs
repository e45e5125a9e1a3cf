//! `kron job explain NAME [--at TIME]`: why a timer did (or did not) run around a time, from its
//! history, in plain words.
//!
//! The occurrence explained is the one due at or just before TIME (1 s of tolerance): the
//! latest `RUN_DUE` written by then, or a later catch-up (`RUN_DUE` standing for missed
//! occurrences, `RUN_MISSED`) covering TIME. If the schedule says another occurrence fell due
//! between that one and TIME, that occurrence is explained instead: paused, orphaned, removed,
//! waiting for a `delay` run to finish, or still pending because no runtime has run since.

use kron_core::engine::settle_taken_occurrences;
use kron_core::event::{EventKind, StoredEvent};
use kron_core::run::RunRecord;
use kron_core::schedule::{Schedule, ScheduleSpec};
use kron_core::time::{format_utc, EpochMs};
use kron_core::timer::{Lifecycle, Overlap, TimerRecord};
use kron_store::{EventFilter, Reader};
use serde::Serialize;

use super::history::detail;
use super::Ctx;
use crate::cli::ExplainArgs;
use crate::data::{self, EventJson};
use crate::error::CliResult;
use crate::output::style::{kind_color, Color};
use crate::output::table::{Cell, Column, Table};
use crate::output::timefmt::{duration, TimeFormatter};
use crate::parse;

/// Tolerance around the asked time: asking for 08:00:00 finds the occurrence due at 08:00:00.4.
/// Never more than half the schedule's period, so a fast timer's next occurrence is not taken.
const TOLERANCE_MS: i64 = 1_000;
/// The first window `first_after` searches; doubled until something is found.
const FIRST_WINDOW_MS: i64 = 60_000;
/// How far forward a run is followed (retries with back-off end well within this).
const FOLLOW_MS: i64 = 7 * 24 * 3_600_000;
/// The widest window read at once while following a run.
const MAX_WINDOW_MS: i64 = 3_600_000;
/// Following a run stops after reading this many of the timer's events.
const MAX_SCAN: usize = 200_000;
/// `first_after` narrows its window down to this before reading it.
const NARROW_MS: i64 = 1_000;

#[derive(Debug, Serialize)]
struct ExplainJson {
    timer: String,
    /// The time asked about (ISO 8601 UTC).
    at: String,
    /// The occurrence explained: its nominal due time, when there is one.
    occurrence: Option<String>,
    /// succeeded, dead, skipped_overlap, retrying, running, due, missed, paused, orphaned,
    /// removed, not_created, delayed, pending, never_due, future, unknown.
    outcome: &'static str,
    run_id: Option<String>,
    manual: bool,
    summary: String,
    events: Vec<EventJson>,
}

struct Explanation {
    occurrence: Option<EpochMs>,
    outcome: &'static str,
    run_id: Option<String>,
    manual: bool,
    summary: String,
    events: Vec<StoredEvent>,
}

impl Explanation {
    fn plain(outcome: &'static str, occurrence: Option<EpochMs>, summary: String) -> Explanation {
        Explanation {
            occurrence,
            outcome,
            run_id: None,
            manual: false,
            summary,
            events: Vec::new(),
        }
    }
}

pub fn run(ctx: &mut Ctx, args: &ExplainArgs) -> CliResult {
    let name = parse::timer_name(&args.name)?;
    let reader = ctx.dir.reader()?;
    // The record, its runs and its history as of one moment, however many reads it takes.
    let _pinned = reader.pin()?;
    let mut record = reader.timer(name)?;
    let runs = reader.runs()?;
    if let Some(rec) = record.as_mut() {
        // Its stored next occurrence may be one already made due (and in flight).
        settle_taken_occurrences(std::slice::from_mut(rec), &runs);
    }
    let hist = History {
        reader: &reader,
        timer: name,
        now: ctx.time.now,
    };
    if record.is_none() && hist.last_before(&[], i64::MAX)?.is_none() {
        return Err(data::unknown_timer(&reader, &ctx.dir, name, &ctx.time));
    }
    let asked = args
        .at
        .as_deref()
        .map(|s| parse::time_or_ago("at", s, ctx.time.now, &ctx.time.tz))
        .transpose()?;
    let live = ctx.dir.is_live();
    let explainer = Explainer {
        hist,
        name,
        record: record.as_ref(),
        runs: &runs,
        schedule: record
            .as_ref()
            .and_then(|r| Schedule::from_spec(r.def.schedule.clone()).ok()),
        time: &ctx.time,
        live,
    };
    let (at, explanation) = match asked {
        Some(at) => (at, explainer.explain(at)?),
        None => match explainer.last_due_time()? {
            Some(at) => (at, explainer.explain(at)?),
            None => (ctx.time.now, explainer.never_due()?),
        },
    };

    if args.json.json {
        let value = data::to_value(&ExplainJson {
            timer: name.to_string(),
            at: format_utc(at),
            occurrence: data::iso(explanation.occurrence),
            outcome: explanation.outcome,
            run_id: explanation.run_id.clone(),
            manual: explanation.manual,
            summary: explanation.summary.clone(),
            events: explanation
                .events
                .iter()
                .map(EventJson::from_event)
                .collect(),
        })?;
        return ctx.out.json(&value);
    }
    let style = ctx.out.style;
    ctx.out.line(format!(
        "{} around {}",
        style.paint(Some(Color::Bold), name),
        ctx.time.local_ms(at)
    ))?;
    if let Some(occurrence) = explanation.occurrence {
        ctx.out.line(format!(
            "  occurrence  {}{}",
            ctx.time.local_ms(occurrence),
            explanation
                .run_id
                .as_ref()
                .map(|r| format!(" (run {r})"))
                .unwrap_or_default()
        ))?;
    }
    ctx.out
        .line(format!("  outcome     {}", explanation.outcome))?;
    ctx.out.line("")?;
    for line in wrap(
        &explanation.summary,
        ctx.out.width.unwrap_or(100).clamp(40, 120) - 2,
    ) {
        ctx.out.line(format!("  {line}"))?;
    }
    if !explanation.events.is_empty() {
        ctx.out.line("")?;
        ctx.out.line("From history:")?;
        let mut table = Table::new(vec![
            Column::left("TIME"),
            Column::left("EVENT"),
            Column::right("ATT"),
            Column::right("DURATION"),
            Column::left("DETAIL").shrink(1, 16),
        ]);
        for stored in &explanation.events {
            let e = &stored.event;
            table.push(vec![
                Cell::new(ctx.time.local_ms(e.ts)),
                Cell::colored(e.kind.as_str(), kind_color(e.kind.as_str())),
                Cell::new(e.attempt.map_or("-".to_string(), |a| a.to_string())),
                Cell::new(e.detail.duration_ms.map_or(String::new(), duration)),
                Cell::new(detail(stored, &ctx.time)),
            ]);
        }
        let width = ctx.out.width.map(|w| w.saturating_sub(2));
        for line in table.render(&style, width) {
            ctx.out.line(format!("  {line}"))?;
        }
    }
    Ok(())
}

/// Timer-scoped history queries.
struct History<'a> {
    reader: &'a Reader,
    timer: &'a str,
    now: EpochMs,
}

impl History<'_> {
    fn filter(&self, kinds: &[EventKind]) -> EventFilter {
        EventFilter {
            timer_id: Some(self.timer.to_string()),
            kinds: kinds.to_vec(),
            ..Default::default()
        }
    }

    /// The last event of these kinds (any kind when empty) with `ts <= t`.
    fn last_before(&self, kinds: &[EventKind], t: EpochMs) -> CliResult<Option<StoredEvent>> {
        let filter = EventFilter {
            until: Some(t.saturating_add(1)),
            limit: Some(1),
            ..self.filter(kinds)
        };
        Ok(self.reader.events(&filter)?.pop())
    }

    /// Whether any event of these kinds has `since <= ts < until`.
    fn any_between(&self, kinds: &[EventKind], since: EpochMs, until: EpochMs) -> CliResult<bool> {
        let filter = EventFilter {
            since: Some(since),
            until: Some(until),
            limit: Some(1),
            ..self.filter(kinds)
        };
        Ok(!self.reader.events(&filter)?.is_empty())
    }

    /// The first event of these kinds with `ts > t`: growing windows find one that holds events,
    /// halving narrows it down, so a busy history is never read in bulk.
    fn first_after(&self, kinds: &[EventKind], t: EpochMs) -> CliResult<Option<StoredEvent>> {
        let mut from = t.saturating_add(1);
        let mut window = FIRST_WINDOW_MS;
        let end = self.now.max(t).saturating_add(FIRST_WINDOW_MS);
        let (mut lo, mut hi) = loop {
            if from > end {
                return Ok(None);
            }
            let until = from.saturating_add(window);
            if self.any_between(kinds, from, until)? {
                break (from, until);
            }
            from = until;
            window = window.saturating_mul(2);
        };
        while hi.saturating_sub(lo) > NARROW_MS {
            let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
            if self.any_between(kinds, lo, mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let filter = EventFilter {
            since: Some(lo),
            until: Some(hi),
            ..self.filter(kinds)
        };
        Ok(self.reader.events(&filter)?.into_iter().next())
    }

    /// Every event of `run_id` from `from` on, until its final outcome, the present, or
    /// `MAX_SCAN` events of the timer read.
    fn run_events(&self, run_id: &str, from: EpochMs) -> CliResult<Vec<StoredEvent>> {
        let mut out: Vec<StoredEvent> = Vec::new();
        let mut start = from;
        let mut window = FIRST_WINDOW_MS;
        let mut scanned = 0usize;
        let end = self
            .now
            .saturating_add(FIRST_WINDOW_MS)
            .min(from.saturating_add(FOLLOW_MS));
        while start <= end && scanned < MAX_SCAN {
            let until = start.saturating_add(window);
            let filter = EventFilter {
                since: Some(start),
                until: Some(until),
                ..self.filter(RUN_KINDS)
            };
            let events = self.reader.events(&filter)?;
            scanned += events.len();
            out.extend(events.into_iter().filter(|e| {
                e.event
                    .run_id
                    .as_ref()
                    .is_some_and(|r| r.as_str() == run_id)
            }));
            if out.iter().any(|e| is_final(e.event.kind)) {
                break;
            }
            start = until;
            window = window.saturating_mul(2).min(MAX_WINDOW_MS);
        }
        Ok(out)
    }
}

const RUN_KINDS: &[EventKind] = &[
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

fn is_final(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::RunSucceeded | EventKind::RunDead | EventKind::RunSkippedOverlap
    )
}

/// The nominal occurrence a due or missed event is about.
fn scheduled(e: &StoredEvent) -> EpochMs {
    e.event.detail.scheduled_at.unwrap_or(e.event.ts)
}

/// The last occurrence an event covers (a catch-up stands for several).
fn covered_until(e: &StoredEvent) -> EpochMs {
    e.event.detail.until.unwrap_or_else(|| scheduled(e))
}

const LIFECYCLE: &[EventKind] = &[
    EventKind::TimerCreated,
    EventKind::TimerUpdated,
    EventKind::TimerPaused,
    EventKind::TimerResumed,
    EventKind::TimerOrphaned,
    EventKind::TimerRemoved,
];

struct Explainer<'a> {
    hist: History<'a>,
    name: &'a str,
    record: Option<&'a TimerRecord>,
    /// Every run in flight, read with the record.
    runs: &'a [RunRecord],
    schedule: Option<Schedule>,
    time: &'a TimeFormatter,
    live: bool,
}

impl Explainer<'_> {
    fn when(&self, ms: EpochMs) -> String {
        self.time.local_ms(ms)
    }

    /// How close to the asked time an occurrence must be to count as "at" it.
    fn tolerance(&self) -> i64 {
        let period = match self.schedule.as_ref().map(|s| (s, s.spec())) {
            Some((_, ScheduleSpec::Every { ms })) => i64::try_from(*ms).unwrap_or(i64::MAX),
            Some((s, ScheduleSpec::Cron { .. })) => s
                .next_after(self.hist.now)
                .and_then(|a| s.next_after(a).map(|b| b.saturating_sub(a)))
                .unwrap_or(i64::MAX),
            _ => i64::MAX,
        };
        TOLERANCE_MS.min(period / 2)
    }

    /// The nominal time of the timer's latest due (or missed) occurrence.
    fn last_due_time(&self) -> CliResult<Option<EpochMs>> {
        let last = self
            .hist
            .last_before(&[EventKind::RunDue, EventKind::RunMissed], i64::MAX)?;
        Ok(last.map(|e| match e.event.kind {
            EventKind::RunMissed => covered_until(&e),
            _ => scheduled(&e),
        }))
    }

    fn never_due(&self) -> CliResult<Explanation> {
        let name = self.name;
        let summary = match self.record {
            Some(rec) => {
                let next = match (rec.lifecycle, rec.next_fire_at) {
                    (Lifecycle::Paused, _) => "it is paused".to_string(),
                    (Lifecycle::Orphaned, _) => {
                        "it is orphaned: no function was registered for it at the last start"
                            .to_string()
                    }
                    (_, Some(at)) => format!("its first run is due {}", self.time.when(at)),
                    (_, None) => "it has no occurrence scheduled".to_string(),
                };
                format!(
                    "{name} has never been due: it was created {}, and {next}.",
                    self.time.when(rec.created_at)
                )
            }
            None => format!("{name} has no due occurrence in its history."),
        };
        Ok(Explanation::plain("never_due", None, summary))
    }

    fn explain(&self, at: EpochMs) -> CliResult<Explanation> {
        let name = self.name;
        let now = self.hist.now;
        if at > now.saturating_add(TOLERANCE_MS) {
            let next = self
                .record
                .and_then(|r| match r.lifecycle {
                    Lifecycle::Active => r.next_fire_at,
                    _ => None,
                })
                .map(|n| format!(" Its next run is due {}.", self.time.when(n)))
                .unwrap_or_default();
            return Ok(Explanation::plain(
                "future",
                None,
                format!("That time has not come yet.{next}"),
            ));
        }
        if let Some(rec) = self.record {
            if rec.created_at > at.saturating_add(TOLERANCE_MS) {
                let first = self
                    .hist
                    .first_after(&[EventKind::RunDue], rec.created_at.saturating_sub(1))?;
                let first = first
                    .map(|e| {
                        format!(
                            " Its first occurrence was due {}.",
                            self.when(scheduled(&e))
                        )
                    })
                    .unwrap_or_default();
                return Ok(Explanation::plain(
                    "not_created",
                    None,
                    format!(
                        "{name} did not exist yet: it was created {}.{first}",
                        self.when(rec.created_at)
                    ),
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
                        ex.summary.push_str(
                            " With overlap=delay the next occurrence is computed from this run's finish, so none falls due while it runs.",
                        );
                    }
                    Ok(ex)
                }
                _ if event.event.kind == EventKind::RunMissed => Ok(self.narrate_missed(event)),
                _ => self.narrate_run(event),
            },
            None => match self.expected_at_or_before(at) {
                Some(gap) => self.explain_gap(gap, None),
                None => {
                    let oldest = self.hist.first_after(&[], 0)?;
                    let text = match oldest {
                        Some(e) if e.event.ts > at => format!(
                            "History has nothing for {name} at that time: its oldest event is from {} (older events may have been compacted).",
                            self.when(e.event.ts)
                        ),
                        _ => format!("History records no occurrence of {name} at or before that time."),
                    };
                    Ok(Explanation::plain("unknown", None, text))
                }
            },
        }
    }

    /// The latest scheduled (not manual) due event written by `t`.
    fn last_scheduled_due(&self, t: EpochMs) -> CliResult<Option<StoredEvent>> {
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
    fn next_expected(&self, chosen: &StoredEvent) -> CliResult<Next> {
        let (Some(schedule), Some(rec)) = (&self.schedule, self.record) else {
            return Ok(Next::Unknown);
        };
        if schedule.is_one_shot() {
            return Ok(Next::Unknown);
        }
        let last = covered_until(chosen);
        if rec.def.overlap == Overlap::Delay && chosen.event.kind == EventKind::RunDue {
            let run_id = chosen
                .event
                .run_id
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default();
            let events = self.hist.run_events(&run_id, chosen.event.ts)?;
            let finish = events
                .iter()
                .find(|e| is_final(e.event.kind))
                .map(|e| e.event.ts);
            return Ok(match finish {
                Some(f) => match schedule.spec() {
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
        match self.schedule.as_ref().map(Schedule::spec) {
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
        let rec = self.record?;
        match schedule.spec() {
            ScheduleSpec::At { at_ms, .. } => (*at_ms <= t).then_some(*at_ms),
            ScheduleSpec::After { .. } | ScheduleSpec::Every { .. } => {
                // The grid starts at the first occurrence after creation.
                let first = schedule.first(rec.created_at)?;
                if first > t {
                    return None;
                }
                match schedule.spec() {
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
    fn explain_gap(&self, gap: EpochMs, previous: Option<&StoredEvent>) -> CliResult<Explanation> {
        let name = self.name;
        let occurrence = Some(gap);
        let lifecycle = self
            .hist
            .last_before(LIFECYCLE, gap.saturating_add(self.tolerance()))?;
        let mut events: Vec<StoredEvent> = Vec::new();
        if let Some(e) = &lifecycle {
            events.push(e.clone());
        }
        let ended = |kind: EventKind, since: EpochMs| self.hist.first_after(&[kind], since);
        let (outcome, summary) = match lifecycle.as_ref().map(|e| e.event.kind) {
            Some(EventKind::TimerPaused) => {
                let paused_at = lifecycle.as_ref().map_or(gap, |e| e.event.ts);
                let resumed = ended(EventKind::TimerResumed, paused_at)?;
                let until = match &resumed {
                    Some(r) => format!("and resumed {}", self.when(r.event.ts)),
                    None => "and is still paused".to_string(),
                };
                if let Some(r) = resumed {
                    events.push(r);
                }
                (
                    "paused",
                    format!(
                        "It did not run: {name} was paused {} {until}. Occurrences that fall due while a timer is paused are not run.",
                        self.when(paused_at)
                    ),
                )
            }
            Some(EventKind::TimerOrphaned) => {
                let since = lifecycle.as_ref().map_or(gap, |e| e.event.ts);
                let revived = ended(EventKind::TimerResumed, since)?;
                let until = match &revived {
                    Some(r) => format!(" It was registered again {}.", self.when(r.event.ts)),
                    None => String::new(),
                };
                if let Some(r) = revived {
                    events.push(r);
                }
                (
                    "orphaned",
                    format!(
                        "It did not run: when the runtime started {}, the application registered no function for {name}, so it was orphaned (listed, never run).{until}",
                        self.when(since)
                    ),
                )
            }
            Some(EventKind::TimerRemoved) => (
                "removed",
                format!(
                    "It did not run: {name} had been removed {}.",
                    self.when(lifecycle.as_ref().map_or(gap, |e| e.event.ts))
                ),
            ),
            _ => {
                let last_event = self.hist.last_before(&[], i64::MAX)?;
                let quiet_since = last_event.as_ref().map(|e| e.event.ts);
                if !self.live && quiet_since.is_none_or(|t| t < gap) {
                    let catchup = self
                        .record
                        .map(|r| r.def.catchup.as_str())
                        .unwrap_or("once");
                    (
                        "pending",
                        format!(
                            "It has not run: no runtime has run since {}{}. The occurrence is still pending; when the application starts, catchup={catchup} decides what happens to it and any others missed meanwhile.",
                            quiet_since.map_or("then".to_string(), |t| self.when(t)),
                            if quiet_since.is_some() { " (the timer's last event)" } else { "" }
                        ),
                    )
                } else {
                    let prev = previous
                        .map(|p| {
                            format!(
                                " The previous occurrence was due {}.",
                                self.when(scheduled(p))
                            )
                        })
                        .unwrap_or_default();
                    (
                        "unknown",
                        format!(
                            "History has no run for the occurrence due {}, and nothing that explains why (was the process suspended, or its events compacted?).{prev}",
                            self.when(gap)
                        ),
                    )
                }
            }
        };
        Ok(Explanation {
            occurrence,
            outcome,
            run_id: None,
            manual: false,
            summary,
            events,
        })
    }

    fn narrate_missed(&self, missed: &StoredEvent) -> Explanation {
        let d = &missed.event.detail;
        let count = d.count.unwrap_or(1);
        let next = d
            .next_run_at
            .map(|n| {
                format!(
                    " The timer went on with the next occurrence, {}.",
                    self.when(n)
                )
            })
            .unwrap_or_default();
        let summary = format!(
            "It did not run: {count} occurrence{} from {} to {} fell due while no runtime was up. At the next start ({}) they were recorded as missed and not run (catchup=skip).{next}",
            if count == 1 { "" } else { "s" },
            self.when(scheduled(missed)),
            self.when(covered_until(missed)),
            self.when(missed.event.ts)
        );
        Explanation {
            occurrence: Some(scheduled(missed)),
            outcome: "missed",
            run_id: None,
            manual: false,
            summary,
            events: vec![missed.clone()],
        }
    }

    /// What happened to the run a `RUN_DUE` created.
    fn narrate_run(&self, due: &StoredEvent) -> CliResult<Explanation> {
        let name = self.name;
        let run_id = due
            .event
            .run_id
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let mut events = self.hist.run_events(&run_id, due.event.ts)?;
        if !events.iter().any(|e| e.seq == due.seq) {
            events.insert(0, due.clone());
        }
        let d = &due.event.detail;
        let manual = d.manual;
        let occurrence = scheduled(due);
        let mut parts: Vec<String> = Vec::new();
        if manual {
            parts.push(format!(
                "This run was triggered by hand {}.",
                self.when(due.event.ts)
            ));
        } else if let (Some(count), Some(until)) = (d.count, d.until) {
            parts.push(format!(
                "No runtime was up when it fell due: at the next start ({}) this one run stood for {count} missed occurrences, from {} to {} (catchup=once).",
                self.when(due.event.ts),
                self.when(occurrence),
                self.when(until)
            ));
        } else if due.event.ts.saturating_sub(occurrence) > TOLERANCE_MS {
            parts.push(format!(
                "It fell due {} but was only recorded as due {}, after a start-up or a pause in the process (catch-up).",
                self.when(occurrence),
                self.when(due.event.ts)
            ));
        }
        // An attempt whose start was undone (shutdown came before it began) does not count.
        let count_of = |kind: EventKind| events.iter().filter(|e| e.event.kind == kind).count();
        let attempts =
            count_of(EventKind::RunStarted).saturating_sub(count_of(EventKind::RunNotStarted));
        let failures: Vec<&StoredEvent> = events
            .iter()
            .filter(|e| {
                matches!(
                    e.event.kind,
                    EventKind::RunFailed | EventKind::RunInterrupted
                )
            })
            .collect();
        if let Some(first_start) = events
            .iter()
            .find(|e| e.event.kind == EventKind::RunStarted)
        {
            let late = first_start.event.ts.saturating_sub(occurrence);
            if late > TOLERANCE_MS && !manual && d.count.is_none() {
                parts.push(format!(
                    "Its first attempt started {} after the occurrence (a busy worker pool, or an earlier run of {name} still in progress).",
                    duration(u64::try_from(late).unwrap_or(0))
                ));
            }
        }
        for failure in &failures {
            let attempt = failure.event.attempt.unwrap_or(0);
            let error = failure
                .event
                .detail
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or("");
            match failure.event.kind {
                EventKind::RunInterrupted => parts.push(format!(
                    "Attempt {attempt} was interrupted: the process ended while it ran (found at the next start, {}).",
                    self.when(failure.event.ts)
                )),
                _ => parts.push(format!(
                    "Attempt {attempt} failed{}: {error}.",
                    failure
                        .event
                        .detail
                        .duration_ms
                        .map(|ms| format!(" after {}", duration(ms)))
                        .unwrap_or_default()
                )),
            }
        }
        let last = events.last().map(|e| e.event.kind);
        let outcome = match last {
            Some(EventKind::RunSucceeded) => {
                let ok = events.last();
                let took = ok
                    .and_then(|e| e.event.detail.duration_ms)
                    .map(|ms| format!(" in {}", duration(ms)))
                    .unwrap_or_default();
                let attempt = ok.and_then(|e| e.event.attempt).unwrap_or(1);
                parts.push(format!(
                    "It ran and succeeded on attempt {attempt}{took}{}.",
                    ok.map(|e| format!(", finishing {}", self.when(e.event.ts)))
                        .unwrap_or_default()
                ));
                "succeeded"
            }
            Some(EventKind::RunDead) => {
                parts.push(format!(
                    "It gave up after {attempts} attempt{}: the run is dead.",
                    if attempts == 1 { "" } else { "s" }
                ));
                "dead"
            }
            Some(EventKind::RunSkippedOverlap) => {
                parts.push(format!(
                    "It did not run: when it fell due the previous run of {name} was still in progress, and overlap=skip skips such occurrences."
                ));
                "skipped_overlap"
            }
            Some(EventKind::RunRetrying) => {
                let next = events
                    .last()
                    .and_then(|e| e.event.detail.next_attempt_at)
                    .map(|n| format!(" {}", self.time.when(n)))
                    .unwrap_or_default();
                parts.push(format!("Another attempt is scheduled{next}."));
                "retrying"
            }
            Some(EventKind::RunNotStarted) => {
                let attempt = events.last().and_then(|e| e.event.attempt).unwrap_or(1);
                parts.push(format!(
                    "Attempt {attempt} was handed to a worker, but the runtime shut down before it began; it runs at the next start, still as attempt {attempt}."
                ));
                "due"
            }
            Some(EventKind::RunStarted) => {
                let in_flight = self.run_in_flight(&run_id);
                let started = events.last().map_or(0, |e| e.event.ts);
                if in_flight {
                    parts.push(format!(
                        "Attempt {} is running: it started {}.",
                        attempts.max(1),
                        self.time.when(started)
                    ));
                } else {
                    parts.push(format!(
                        "Attempt {} started {}; its outcome is not in history yet (the process may have ended; the next start records it as interrupted).",
                        attempts.max(1),
                        self.time.when(started)
                    ));
                }
                "running"
            }
            _ => {
                let paused = self
                    .record
                    .is_some_and(|r| r.lifecycle == Lifecycle::Paused);
                if paused && !manual {
                    parts.push(format!(
                        "It is due but has not started: {name} is paused, which holds its runs until resumed."
                    ));
                } else if self.live {
                    parts.push("It is due and about to start.".to_string());
                } else {
                    parts.push(
                        "It is due and has not started: no runtime is running; it starts when the application does."
                            .to_string(),
                    );
                }
                "due"
            }
        };
        Ok(Explanation {
            occurrence: Some(occurrence),
            outcome,
            run_id: Some(run_id),
            manual,
            summary: parts.join(" "),
            events,
        })
    }

    fn run_in_flight(&self, run_id: &str) -> bool {
        self.runs.iter().any(|r| r.run_id.as_str() == run_id)
    }
}

enum Next {
    /// The next occurrence after the chosen one.
    At(EpochMs),
    /// A `delay` timer whose run has not finished: the next occurrence waits for it.
    WaitingForRun,
    Unknown,
}

/// Wraps `text` at `width` characters, on spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
