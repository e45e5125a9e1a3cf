//! `kron job history NAME`: a timer's events, oldest first.

use kron_core::event::{EventKind, StoredEvent};
use kron_store::{EventFilter, Reader};
use serde::Serialize;

use super::Ctx;
use crate::cli::HistoryArgs;
use crate::data::{self, DataDir, EventJson};
use crate::error::CliResult;
use crate::output::style::{kind_color, Color};
use crate::output::table::{Cell, Column, Table};
use crate::output::timefmt::{duration, TimeFormatter};
use crate::parse;

#[derive(Serialize)]
struct HistoryJson {
    timer: String,
    events: Vec<EventJson>,
}

pub fn run(ctx: &mut Ctx, args: &HistoryArgs) -> CliResult {
    let name = parse::timer_name(&args.name)?;
    let kinds = parse::kinds(&args.kind)?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse::time_or_ago("since", s, ctx.time.now, &ctx.time.tz))
        .transpose()?;
    let reader = ctx.dir.reader()?;
    ensure_known(&reader, &ctx.dir, name, &ctx.time)?;
    let events = reader.events(&EventFilter {
        timer_id: Some(name.to_string()),
        kinds,
        since,
        until: None,
        timer_ids: None,
        limit: Some(args.limit),
    })?;
    if args.json.json {
        let value = data::to_value(&HistoryJson {
            timer: name.to_string(),
            events: events.iter().map(EventJson::from_event).collect(),
        })?;
        return ctx.out.json(&value);
    }
    if events.is_empty() {
        return ctx.out.line(format!("No events for {name} match."));
    }
    render(ctx, &events, args.verbose)
}

/// Prints `events` as a table (with whole tracebacks under their line when `verbose`).
pub(crate) fn render(ctx: &mut Ctx, events: &[StoredEvent], verbose: bool) -> CliResult {
    let time = &ctx.time;
    let mut table = Table::new(vec![
        Column::left("TIME"),
        Column::left("EVENT"),
        Column::left("RUN").shrink(2, 11),
        Column::right("ATT"),
        Column::right("DURATION"),
        Column::left("DETAIL").shrink(1, 16),
    ]);
    for stored in events {
        let e = &stored.event;
        table.push(vec![
            Cell::new(time.local_ms(e.ts)),
            Cell::colored(e.kind.as_str(), kind_color(e.kind.as_str())),
            match &e.run_id {
                // Compact: the end of the id, its random part (the start is the time).
                Some(run) => {
                    let tail: String = run
                        .as_str()
                        .chars()
                        .skip(run.as_str().chars().count().saturating_sub(10))
                        .collect();
                    Cell::new(run.to_string()).or_compact(format!("…{tail}"))
                }
                None => Cell::new("-"),
            },
            Cell::new(e.attempt.map_or("-".to_string(), |a| a.to_string())),
            Cell::new(e.detail.duration_ms.map_or(String::new(), duration)),
            Cell::new(detail(stored, time)),
        ]);
    }
    let lines = table.render(&ctx.out.style, ctx.out.width);
    let mut lines = lines.into_iter();
    if let Some(header) = lines.next() {
        ctx.out.line(header)?;
    }
    for (line, stored) in lines.zip(events) {
        ctx.out.line(line)?;
        if verbose {
            if let Some(error) = &stored.event.detail.error {
                if error.lines().nth(1).is_some() {
                    for text in error.lines() {
                        let shown = format!("    {text}");
                        ctx.out
                            .line(ctx.out.style.paint(Some(Color::Dim), &shown))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A name is known when the timer exists or has history (a removed timer's history stays).
fn ensure_known(reader: &Reader, dir: &DataDir, name: &str, time: &TimeFormatter) -> CliResult {
    if reader.timer(name)?.is_some() {
        return Ok(());
    }
    let any = reader.events(&EventFilter {
        timer_id: Some(name.to_string()),
        limit: Some(1),
        ..Default::default()
    })?;
    if any.is_empty() {
        return Err(data::unknown_timer(reader, dir, name, time));
    }
    Ok(())
}

/// The one-line detail of an event, in words.
pub fn detail(stored: &StoredEvent, time: &TimeFormatter) -> String {
    let e = &stored.event;
    let d = &e.detail;
    let first_line = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| t.lines().next())
            .unwrap_or("")
            .to_string()
    };
    match e.kind {
        EventKind::TimerCreated | EventKind::TimerUpdated => {
            let mut parts = Vec::new();
            if let Some(schedule) = &d.schedule {
                parts.push(schedule.clone());
            }
            if let Some(next) = d.next_run_at {
                parts.push(format!("next run {}", time.short_auto(next)));
            }
            parts.join("; ")
        }
        EventKind::TimerResumed => d
            .next_run_at
            .map(|n| format!("next run {}", time.short_auto(n)))
            .unwrap_or_default(),
        EventKind::TimerOrphaned => "no function registered for it at start-up".to_string(),
        EventKind::RunDue => {
            let mut text = if d.manual {
                "manual trigger".to_string()
            } else {
                d.scheduled_at
                    .map(|s| format!("occurrence {}", time.short_auto(s)))
                    .unwrap_or_default()
            };
            if let (Some(count), Some(until)) = (d.count, d.until) {
                text.push_str(&format!(
                    "; stands for {count} missed occurrences up to {}",
                    time.short_auto(until)
                ));
            }
            text
        }
        EventKind::RunStarted => match d.scheduled_at {
            Some(s) if e.ts.saturating_sub(s) > 1_000 => format!(
                "{} after its occurrence {}",
                duration(u64::try_from(e.ts.saturating_sub(s)).unwrap_or(0)),
                time.short_auto(s)
            ),
            _ => String::new(),
        },
        EventKind::RunRetrying => d
            .next_attempt_at
            .map(|n| format!("next attempt {}", time.short_auto(n)))
            .unwrap_or_default(),
        EventKind::RunFailed | EventKind::RunDead | EventKind::RunInterrupted => {
            first_line(&d.error)
        }
        EventKind::RunSkippedOverlap => "the previous run was still in progress".to_string(),
        EventKind::RunNotStarted => {
            "shut down before it began; due again at the next start (not counted)".to_string()
        }
        EventKind::RunMissed => match (d.count, d.scheduled_at, d.until) {
            (Some(count), Some(from), Some(until)) => format!(
                "{count} occurrences from {} to {} not run (no runtime was up)",
                time.short_auto(from),
                time.short_auto(until)
            ),
            _ => "occurrences not run (no runtime was up)".to_string(),
        },
        EventKind::RunClaimed => format!(
            "claimed by worker {} (fencing token {})",
            d.worker.as_deref().unwrap_or("?"),
            d.fencing_token.map_or("?".to_string(), |t| t.to_string())
        ),
        EventKind::RunLeaseExpired => format!(
            "the lease of worker {} (fencing token {}) expired before it reported",
            d.worker.as_deref().unwrap_or("?"),
            d.fencing_token.map_or("?".to_string(), |t| t.to_string())
        ),
        EventKind::TimerPaused | EventKind::TimerRemoved | EventKind::RunSucceeded => String::new(),
    }
}
