//! `kron job explain NAME [--at TIME]`: why a timer did (or did not) run around a time, from its
//! history, in plain words. The reasoning is [`kron_core::explain`]'s; this reads the timer and
//! its history from the data directory, hands them in, and renders the answer.

use kron_core::engine::settle_taken_occurrences;
use kron_core::event::{EventKind, StoredEvent};
use kron_core::explain::{
    explain_at, explain_latest, is_final, Explanation, Finding, History, Standing, Subject,
    FOLLOW_MS, RUN_KINDS,
};
use kron_core::time::{format_utc, EpochMs};
use kron_store::{EventFilter, Reader};
use serde::Serialize;

use super::history::detail;
use super::Ctx;
use crate::cli::ExplainArgs;
use crate::data::{self, EventJson};
use crate::error::{CliError, CliResult};
use crate::output::style::{kind_color, Color};
use crate::output::table::{Cell, Column, Table};
use crate::output::timefmt::{duration, TimeFormatter};
use crate::parse;

/// The first window `first_after` searches; doubled until something is found.
const FIRST_WINDOW_MS: i64 = 60_000;
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
    /// removed, not_created, pending, never_due, future, unknown.
    outcome: &'static str,
    run_id: Option<String>,
    manual: bool,
    summary: String,
    events: Vec<EventJson>,
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
    let hist = StoreHistory {
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
    let subject = Subject {
        record: record.as_ref(),
        runs: &runs,
        now: ctx.time.now,
        live: ctx.dir.is_live(),
    };
    let (at, explanation) = match asked {
        Some(at) => (at, explain_at(&subject, &hist, at)?),
        None => explain_latest(&subject, &hist)?,
    };
    let summary = summary(&explanation, name, &ctx.time);

    if args.json.json {
        let value = data::to_value(&ExplainJson {
            timer: name.to_string(),
            at: format_utc(at),
            occurrence: data::iso(explanation.occurrence),
            outcome: explanation.outcome.as_str(),
            run_id: explanation.run_id.clone(),
            manual: explanation.manual,
            summary,
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
        .line(format!("  outcome     {}", explanation.outcome.as_str()))?;
    ctx.out.line("")?;
    for line in wrap(&summary, ctx.out.width.unwrap_or(100).clamp(40, 120) - 2) {
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

/// The latest occurrence of `name` explained from the data directory, as `kron job explain
/// NAME` explains it, for the dashboard.
pub(crate) fn latest_in_store(
    reader: &Reader,
    name: &str,
    live: bool,
    time: &TimeFormatter,
) -> CliResult<kron_ui::model::Explanation> {
    let _pinned = reader.pin()?;
    let mut record = reader.timer(name)?;
    let runs = reader.runs()?;
    if let Some(rec) = record.as_mut() {
        settle_taken_occurrences(std::slice::from_mut(rec), &runs);
    }
    let hist = StoreHistory {
        reader,
        timer: name,
        now: time.now,
    };
    let subject = Subject {
        record: record.as_ref(),
        runs: &runs,
        now: time.now,
        live,
    };
    let (_, explanation) = explain_latest(&subject, &hist)?;
    Ok(for_dashboard(&explanation, name, time))
}

/// The latest occurrence of a timer explained from its record, runs and latest events (oldest
/// first), for the dashboard of a server, whose history is not a data directory's.
pub(crate) fn latest_in_events(
    record: Option<&kron_core::timer::TimerRecord>,
    runs: &[kron_core::run::RunRecord],
    events: &[StoredEvent],
    name: &str,
    time: &TimeFormatter,
) -> kron_ui::model::Explanation {
    let mut record = record.cloned();
    if let Some(rec) = record.as_mut() {
        settle_taken_occurrences(std::slice::from_mut(rec), runs);
    }
    let subject = Subject {
        record: record.as_ref(),
        runs,
        now: time.now,
        live: true,
    };
    let log = kron_core::explain::EventLog { events };
    let (_, explanation) = match explain_latest(&subject, &log) {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    for_dashboard(&explanation, name, time)
}

fn for_dashboard(
    explanation: &Explanation,
    name: &str,
    time: &TimeFormatter,
) -> kron_ui::model::Explanation {
    kron_ui::model::Explanation {
        outcome: explanation.outcome.as_str().to_string(),
        occurrence: explanation.occurrence,
        summary: summary(explanation, name, time),
    }
}

/// The explanation's findings in words, one or two sentences each.
fn summary(explanation: &Explanation, name: &str, time: &TimeFormatter) -> String {
    explanation
        .findings
        .iter()
        .map(|f| sentence(f, name, time))
        .collect::<Vec<_>>()
        .join(" ")
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn sentence(finding: &Finding, name: &str, time: &TimeFormatter) -> String {
    let at = |ms: EpochMs| time.local_ms(ms);
    match finding {
        Finding::NeverDue {
            created_at,
            standing,
        } => {
            let next = match standing {
                Standing::Paused => "it is paused".to_string(),
                Standing::Orphaned => {
                    "it is orphaned: no function was registered for it at the last start"
                        .to_string()
                }
                Standing::FirstDue(due) => format!("its first run is due {}", time.when(*due)),
                Standing::Unscheduled => "it has no occurrence scheduled".to_string(),
            };
            format!(
                "{name} has never been due: it was created {}, and {next}.",
                time.when(*created_at)
            )
        }
        Finding::NoDueInHistory => format!("{name} has no due occurrence in its history."),
        Finding::NotYet { next_due } => format!(
            "That time has not come yet.{}",
            next_due
                .map(|n| format!(" Its next run is due {}.", time.when(n)))
                .unwrap_or_default()
        ),
        Finding::NotCreatedYet {
            created_at,
            first_due,
        } => format!(
            "{name} did not exist yet: it was created {}.{}",
            at(*created_at),
            first_due
                .map(|d| format!(" Its first occurrence was due {}.", at(d)))
                .unwrap_or_default()
        ),
        Finding::HistoryStartsLater { oldest } => format!(
            "History has nothing for {name} at that time: its oldest event is from {} (older events may have been compacted).",
            at(*oldest)
        ),
        Finding::NoOccurrence => {
            format!("History records no occurrence of {name} at or before that time.")
        }
        Finding::Paused { since, resumed } => {
            let until = match resumed {
                Some(r) => format!("and resumed {}", at(*r)),
                None => "and is still paused".to_string(),
            };
            format!(
                "It did not run: {name} was paused {} {until}. Occurrences that fall due while a timer is paused are not run.",
                at(*since)
            )
        }
        Finding::Orphaned {
            since,
            registered_again,
        } => format!(
            "It did not run: when the runtime started {}, the application registered no function for {name}, so it was orphaned (listed, never run).{}",
            at(*since),
            registered_again
                .map(|r| format!(" It was registered again {}.", at(r)))
                .unwrap_or_default()
        ),
        Finding::Removed { at: removed } => {
            format!("It did not run: {name} had been removed {}.", at(*removed))
        }
        Finding::Pending {
            quiet_since,
            catchup,
        } => format!(
            "It has not run: no runtime has run since {}{}. The occurrence is still pending; when the application starts, catchup={} decides what happens to it and any others missed meanwhile.",
            quiet_since.map_or("then".to_string(), at),
            if quiet_since.is_some() { " (the timer's last event)" } else { "" },
            catchup.as_str()
        ),
        Finding::Unexplained { gap, previous } => format!(
            "History has no run for the occurrence due {}, and nothing that explains why (was the process suspended, or its events compacted?).{}",
            at(*gap),
            previous
                .map(|p| format!(" The previous occurrence was due {}.", at(p)))
                .unwrap_or_default()
        ),
        Finding::Missed {
            count,
            from,
            until,
            recorded_at,
            next_run_at,
        } => format!(
            "It did not run: {count} occurrence{} from {} to {} fell due while no runtime was up. At the next start ({}) they were recorded as missed and not run (catchup=skip).{}",
            plural(*count),
            at(*from),
            at(*until),
            at(*recorded_at),
            next_run_at
                .map(|n| format!(" The timer went on with the next occurrence, {}.", at(n)))
                .unwrap_or_default()
        ),
        Finding::Manual { at: triggered } => {
            format!("This run was triggered by hand {}.", at(*triggered))
        }
        Finding::CaughtUp {
            recorded_at,
            count,
            from,
            until,
        } => format!(
            "No runtime was up when it fell due: at the next start ({}) this one run stood for {count} missed occurrences, from {} to {} (catchup=once).",
            at(*recorded_at),
            at(*from),
            at(*until)
        ),
        Finding::RecordedLate { due, recorded_at } => format!(
            "It fell due {} but was only recorded as due {}, after a start-up or a pause in the process (catch-up).",
            at(*due),
            at(*recorded_at)
        ),
        Finding::StartedLate { late_ms } => format!(
            "Its first attempt started {} after the occurrence (a busy worker pool, or an earlier run of {name} still in progress).",
            duration(*late_ms)
        ),
        Finding::Interrupted { attempt, found_at } => format!(
            "Attempt {attempt} was interrupted: the process ended while it ran (found at the next start, {}).",
            at(*found_at)
        ),
        Finding::Failed {
            attempt,
            after_ms,
            error,
        } => format!(
            "Attempt {attempt} failed{}: {error}.",
            after_ms
                .map(|ms| format!(" after {}", duration(ms)))
                .unwrap_or_default()
        ),
        Finding::Succeeded {
            attempt,
            took_ms,
            finished_at,
        } => format!(
            "It ran and succeeded on attempt {attempt}{}, finishing {}.",
            took_ms
                .map(|ms| format!(" in {}", duration(ms)))
                .unwrap_or_default(),
            at(*finished_at)
        ),
        Finding::Dead { attempts } => format!(
            "It gave up after {attempts} attempt{}: the run is dead.",
            plural(*attempts as u64)
        ),
        Finding::SkippedOverlap => format!(
            "It did not run: when it fell due the previous run of {name} was still in progress, and overlap=skip skips such occurrences."
        ),
        Finding::Retrying { next_attempt_at } => format!(
            "Another attempt is scheduled{}.",
            next_attempt_at
                .map(|n| format!(" {}", time.when(n)))
                .unwrap_or_default()
        ),
        Finding::NotStarted { attempt } => format!(
            "Attempt {attempt} was handed to a worker, but the runtime shut down before it began; it runs at the next start, still as attempt {attempt}."
        ),
        Finding::Running { attempt, started } => format!(
            "Attempt {attempt} is running: it started {}.",
            time.when(*started)
        ),
        Finding::OutcomeMissing { attempt, started } => format!(
            "Attempt {attempt} started {}; its outcome is not in history yet (the process may have ended; the next start records it as interrupted).",
            time.when(*started)
        ),
        Finding::HeldByPause => format!(
            "It is due but has not started: {name} is paused, which holds its runs until resumed."
        ),
        Finding::AboutToStart => "It is due and about to start.".to_string(),
        Finding::WaitingForRuntime => {
            "It is due and has not started: no runtime is running; it starts when the application does."
                .to_string()
        }
        Finding::DelayedByRun => "With overlap=delay the next occurrence is computed from this run's finish, so none falls due while it runs.".to_string(),
    }
}

/// One timer's history in the data directory, read in windows so a busy history is never
/// read in bulk.
struct StoreHistory<'a> {
    reader: &'a Reader,
    timer: &'a str,
    now: EpochMs,
}

impl StoreHistory<'_> {
    fn filter(&self, kinds: &[EventKind]) -> EventFilter {
        EventFilter {
            timer_id: Some(self.timer.to_string()),
            kinds: kinds.to_vec(),
            ..Default::default()
        }
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
}

impl History for StoreHistory<'_> {
    type Error = CliError;

    /// The last event of these kinds (any kind when empty) with `ts <= t`.
    fn last_before(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, CliError> {
        let filter = EventFilter {
            until: Some(t.saturating_add(1)),
            limit: Some(1),
            ..self.filter(kinds)
        };
        Ok(self.reader.events(&filter)?.pop())
    }

    /// The first event of these kinds with `ts > t`: growing windows find one that holds events,
    /// halving narrows it down, so a busy history is never read in bulk.
    fn first_after(
        &self,
        kinds: &[EventKind],
        t: EpochMs,
    ) -> Result<Option<StoredEvent>, CliError> {
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
    fn run_events(&self, run_id: &str, from: EpochMs) -> Result<Vec<StoredEvent>, CliError> {
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
