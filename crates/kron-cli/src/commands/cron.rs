//! `kron cron "EXPR"`: what an expression means and when it fires next, across DST changes.

use std::io::Write;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use kron_core::schedule::{explain_cron, Schedule, ScheduleSpec, CRON_LAST_YEAR as LAST_YEAR};
use kron_core::time::{format_utc, parse_datetime, EpochMs};
use serde::Serialize;

use super::Ctx;
use crate::cli::CronArgs;
use crate::data;
use crate::error::{CliError, CliResult};
use crate::output::style::Color;
use crate::output::table::{Cell, Column, Table};
use crate::output::timefmt::zoned_in;

/// The most fire times one call lists.
const MAX_COUNT: usize = 10_000;

#[derive(Serialize)]
struct CronJson {
    expr: String,
    timezone: String,
    description: String,
    fire_times: Vec<FireJson>,
}

#[derive(Serialize)]
struct FireJson {
    /// ISO 8601 UTC.
    at: String,
    /// The same instant in the expression's time zone, with its offset.
    local: String,
    offset: String,
}

pub fn run(ctx: &mut Ctx, args: &CronArgs) -> CliResult {
    if args.count == 0 || args.count > MAX_COUNT {
        return Err(CliError::usage(format!(
            "invalid -n {}: must be between 1 and {MAX_COUNT}",
            args.count
        )));
    }
    let spec = ScheduleSpec::Cron {
        expr: args.expr.as_str().into(),
        timezone: args.timezone.as_str().into(),
    };
    let schedule = Schedule::from_spec(spec)?;
    let description = explain_cron(&args.expr)?;
    // The bundled database, the one schedules are computed with.
    let tz: TimeZone = TimeZoneDatabase::bundled()
        .get(&args.timezone)
        .map_err(|e| CliError::usage(format!("invalid timezone {:?}: {e}", args.timezone)))?;
    let from = match &args.from {
        Some(text) => parse_datetime("from", text, &args.timezone)?,
        None => ctx.time.now,
    };
    let mut times = Vec::with_capacity(args.count);
    let mut t = from;
    while times.len() < args.count {
        match schedule.next_after(t) {
            Some(next) => {
                times.push(next);
                t = next;
            }
            None => break,
        }
    }
    if !times.is_empty() && times.len() < args.count {
        // Diagnostics go to stderr, so the listing (and --json) stays clean for programs.
        let _ = writeln!(
            std::io::stderr(),
            "kron: only {} fire time{} before the end of the supported range (the year {LAST_YEAR}); \
             the expression has no later ones that Kron can compute",
            times.len(),
            if times.len() == 1 { "" } else { "s" },
        );
    }
    let offset_of = |ms| zoned_in(ms, &tz).strftime("%:z").to_string();
    if args.json.json {
        let value = data::to_value(&CronJson {
            expr: args.expr.trim().to_string(),
            timezone: args.timezone.clone(),
            description,
            fire_times: times
                .iter()
                .map(|&at| FireJson {
                    at: format_utc(at),
                    local: zoned_in(at, &tz)
                        .strftime("%Y-%m-%dT%H:%M:%S%:z")
                        .to_string(),
                    offset: offset_of(at),
                })
                .collect(),
        })?;
        return ctx.out.json(&value);
    }

    let style = ctx.out.style;
    ctx.out.line(format!(
        "{}  ({})",
        style.paint(Some(Color::Bold), args.expr.trim()),
        args.timezone
    ))?;
    ctx.out.line(format!("  {description}"))?;
    ctx.out.line("")?;
    if times.is_empty() {
        return ctx.out.line(format!(
            "It never fires after that time (fire times are computed up to the year {LAST_YEAR})."
        ));
    }
    let mut table = Table::new(vec![
        Column::left(format!("TIME IN {}", args.timezone)),
        Column::left("UTC").shrink(2, 9),
        Column::left("FROM NOW").shrink(3, 8),
        Column::left("NOTE").shrink(1, 8),
    ]);
    let mut previous = offset_of(from);
    for &at in &times {
        let zoned = zoned_in(at, &tz);
        let offset = offset_of(at);
        let note = if offset != previous {
            format!("offset {previous} -> {offset} (DST)")
        } else {
            String::new()
        };
        previous = offset;
        table.push(vec![
            Cell::new(zoned.strftime("%a %Y-%m-%d %H:%M:%S%:z").to_string()),
            Cell::new(format_utc(at)).or_compact(utc_time(at)),
            Cell::new(ctx.time.relative(at)).or_compact(""),
            Cell::colored(note, Some(Color::Yellow)),
        ]);
    }
    ctx.out.line(format!(
        "Next {} fire times in {}:",
        times.len(),
        args.timezone
    ))?;
    for line in table.render(&style, ctx.out.width.map(|w| w.saturating_sub(2))) {
        ctx.out.line(format!("  {line}"))?;
    }
    Ok(())
}

/// `01:30:00Z`: the UTC time of day alone, for narrow terminals.
fn utc_time(at: EpochMs) -> String {
    zoned_in(at, &TimeZone::UTC)
        .strftime("%H:%M:%SZ")
        .to_string()
}
