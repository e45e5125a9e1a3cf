//! `kron job status NAME`: everything known about a timer, plus its next fire times.

use kron_core::engine::TimerView;
use kron_core::run::{RunPhase, RunRecord};
use kron_core::schedule::Schedule;
use kron_core::time::{format_utc, EpochMs};
use kron_core::timer::Lifecycle;
use serde::Serialize;

use super::Ctx;
use crate::data::{self, phase_str, RunJson, TimerJson};
use crate::error::CliResult;
use crate::output::style::{state_color, status_color, Color};
use crate::output::timefmt::duration;
use crate::parse;

/// How many upcoming fire times status lists.
const UPCOMING: usize = 5;

#[derive(Serialize)]
struct StatusJson {
    #[serde(flatten)]
    timer: TimerJson,
    /// The next occurrences, ISO 8601 UTC (the first includes jitter).
    next_fire_times: Vec<String>,
    /// Runs in flight.
    runs: Vec<RunJson>,
}

pub fn run(ctx: &mut Ctx, name: &str, json: bool) -> CliResult {
    let name = parse::timer_name(name)?;
    let reader = ctx.dir.reader()?;
    let directory = data::directory_view(&reader)?;
    let Some(view) = directory.views.iter().find(|v| *v.record.def.id == *name) else {
        return Err(data::unknown_timer(&reader, &ctx.dir, name, &ctx.time));
    };
    let runs: Vec<_> = directory
        .runs
        .iter()
        .filter(|r| r.timer_id == name)
        .collect();
    let upcoming = upcoming(view, &runs, ctx.time.now, UPCOMING);
    if json {
        let value = data::to_value(&StatusJson {
            timer: TimerJson::from_view(view),
            next_fire_times: upcoming.iter().map(|&t| format_utc(t)).collect(),
            runs: runs.iter().map(|r| RunJson::from_run(r)).collect(),
        })?;
        return ctx.out.json(&value);
    }

    let time = ctx.time.clone();
    let style = ctx.out.style;
    let rec = &view.record;
    let state = view.state.as_str();
    ctx.out.line(format!(
        "{}  {}",
        style.paint(Some(Color::Bold), &rec.def.id),
        style.paint(state_color(state), state)
    ))?;
    let mut fields: Vec<(&str, String)> = vec![
        ("schedule", view.schedule.clone()),
        ("function", rec.def.fn_name.to_string()),
        (
            "next run",
            view.next_run_at.map_or_else(
                || match rec.lifecycle {
                    Lifecycle::Paused => "- (paused)".to_string(),
                    Lifecycle::Orphaned => "- (orphaned: no function registered)".to_string(),
                    _ => "-".to_string(),
                },
                |at| time.when(at),
            ),
        ),
    ];
    let last_run = match rec.last_run_at {
        Some(at) => {
            let mut text = time.when(at);
            if let Some(status) = &rec.last_status {
                let shown = status.display();
                text.push_str(": ");
                text.push_str(&style.paint(status_color(&shown), &shown));
            }
            if let Some(ms) = rec.last_duration_ms {
                text.push_str(&format!(" ({})", duration(ms)));
            }
            text
        }
        None => "never".to_string(),
    };
    fields.push(("last run", last_run));
    fields.push((
        "runs",
        format!(
            "{} attempts started, {} failed",
            rec.run_count, rec.failure_count
        ),
    ));
    fields.push((
        "policy",
        format!(
            "max_attempts {}, overlap {}, catchup {}, jitter {}",
            rec.def.max_attempts,
            rec.def.overlap.as_str(),
            rec.def.catchup.as_str(),
            duration(rec.def.jitter_ms)
        ),
    ));
    fields.push(("active runs", view.active_runs.to_string()));
    fields.push(("created", time.when(rec.created_at)));
    fields.push(("updated", time.when(rec.updated_at)));
    for (key, value) in fields {
        ctx.out.line(format!("  {key:<12} {value}"))?;
    }
    if let Some(error) = rec.last_status.as_ref().and_then(|s| s.error()) {
        ctx.out.line("  last error:")?;
        for line in error.lines() {
            ctx.out.line(format!("    {line}"))?;
        }
    }
    ctx.out.line("")?;
    if upcoming.is_empty() {
        ctx.out
            .line(format!("Next fire times: none ({})", why_none(view)))?;
    } else {
        let note = match rec.lifecycle {
            Lifecycle::Paused => " (if resumed now)",
            _ if rec.next_scheduled_at.is_none() && view.active_runs > 0 => {
                " (if the run in progress ends now)"
            }
            _ => "",
        };
        ctx.out
            .line(format!("Next {} fire times{note}:", upcoming.len()))?;
        for at in &upcoming {
            ctx.out.line(format!(
                "  {}  ({})",
                time.local_auto(*at),
                time.relative(*at)
            ))?;
        }
    }
    if !runs.is_empty() {
        ctx.out.line("")?;
        ctx.out.line("Runs in flight:")?;
        for run in runs {
            let when = match run.phase {
                RunPhase::Running => format!("started {}", time.when(run.fire_at)),
                _ => format!("starts {}", time.when(run.fire_at)),
            };
            ctx.out.line(format!(
                "  {}  {:<10} attempt {}  {}{}",
                run.run_id,
                phase_str(run.phase),
                run.attempt,
                when,
                if run.manual { "  (manual)" } else { "" }
            ))?;
        }
    }
    Ok(())
}

fn why_none(view: &TimerView) -> &'static str {
    match view.record.lifecycle {
        Lifecycle::Orphaned => "orphaned: no function is registered for it",
        Lifecycle::Completed => "a one-shot that has run",
        Lifecycle::Dead => "a one-shot whose last attempt failed",
        _ if view.active_runs > 0 && view.record.def.schedule.is_one_shot() => {
            "a one-shot whose run is in progress"
        }
        _ => "the schedule has no further occurrence",
    }
}

/// The timer's next `n` occurrences: the pending one (with its jitter) or the scheduled run
/// waiting to start, then the schedule's (nominal; a `delay` timer's assume prompt runs). A
/// paused timer shows what resuming now would give; orphaned and finished timers have none. A
/// `delay` timer whose run is in progress schedules its next occurrence when the run is over, so
/// the list assumes it ends promptly: now for a running attempt, at its retry for one waiting.
pub fn upcoming(view: &TimerView, runs: &[&RunRecord], now: EpochMs, n: usize) -> Vec<EpochMs> {
    let rec = &view.record;
    if matches!(
        rec.lifecycle,
        Lifecycle::Orphaned | Lifecycle::Completed | Lifecycle::Dead
    ) || n == 0
    {
        return Vec::new();
    }
    let Ok(schedule) = Schedule::from_spec(rec.def.schedule.clone()) else {
        return Vec::new();
    };
    let waiting = runs
        .iter()
        .filter(|r| !r.manual && r.phase == RunPhase::Due)
        .min_by_key(|r| r.fire_at)
        .map(|r| (r.scheduled_at, r.fire_at));
    let in_flight_ends = runs
        .iter()
        .filter(|r| !r.manual)
        .filter_map(|r| match r.phase {
            RunPhase::Running => Some(now),
            RunPhase::RetryWait => Some(r.fire_at.max(now)),
            RunPhase::Due => None,
        })
        .max();
    let (mut nominal, mut first) = match (rec.next_scheduled_at, rec.next_fire_at, waiting) {
        (_, _, Some((scheduled, fire))) => (scheduled, fire),
        (Some(scheduled), Some(fire), None) => (scheduled, fire),
        (None, _, None) => match in_flight_ends.and_then(|end| schedule.next_after(end)) {
            Some(next) => (next, next),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    if rec.lifecycle == Lifecycle::Paused && first < now && !schedule.is_one_shot() {
        match schedule.first(now) {
            Some(at) => {
                nominal = at;
                first = at;
            }
            None => return Vec::new(),
        }
    }
    let mut out = vec![first];
    while out.len() < n {
        match schedule.next_after(nominal) {
            Some(next) => {
                out.push(next);
                nominal = next;
            }
            None => break,
        }
    }
    out
}
