//! `kron --server URL job list|status|history|pause|resume|trigger|remove`: the job commands
//! over the server's HTTP API, printed as they are for a data directory.

use std::time::Duration;

use kron_core::admin::TimerOp;
use serde::Serialize;
use serde_json::{json, Value};

use super::client::{segment, Answer, RemoteError, Server};
use super::wire::{self, instant, TimerDict};
use crate::cli::{AdminArgs, HistoryArgs, JsonArg};
use crate::commands::{history, list, Ctx};
use crate::data;
use crate::error::{CliError, CliResult};
use crate::output::style::{state_color, status_color, Color};
use crate::output::timefmt::duration;
use crate::parse;

/// The role a reading token needs, for 403 messages.
const READER: &str = "a reader, operator or admin";
/// The role a writing token needs.
const OPERATOR: &str = "an operator or admin";

/// The largest `limit` a history request may ask for (the server's bound).
const MAX_HISTORY: usize = 100_000;

pub fn list(ctx: &mut Ctx, server: &Server, args: JsonArg) -> CliResult {
    let answer = server
        .get("/v1/timers")
        .map_err(|e| super::cli_error(e, server, "job list", READER))?;
    if args.json {
        let value = json!({ "server": answer.node, "timers": answer.body });
        return ctx.out.json(&super::pretty(&value)?);
    }
    let timers = wire::timers(&answer.body)?;
    if timers.is_empty() {
        return ctx.out.line(format!("No timers on {}.", answer.node));
    }
    let rows = timers
        .iter()
        .map(|t| {
            Ok(list::Row {
                id: t.id.clone(),
                state: t.state.clone(),
                schedule: t.schedule.clone(),
                next: instant(t.next_run_at.as_deref())?,
                last: instant(t.last_run_at.as_deref())?,
                status: t.last_status.clone(),
                runs: t.run_count,
                fails: t.failure_count,
            })
        })
        .collect::<CliResult<Vec<_>>>()?;
    list::render(ctx, &rows)?;
    Ok(())
}

pub fn status(ctx: &mut Ctx, server: &Server, name: &str, json: bool) -> CliResult {
    let name = parse::timer_name(name)?;
    let answer = server
        .get(&format!("/v1/timers/{}", segment(name)))
        .map_err(|e| known(e, ctx, server, name, "job status", READER))?;
    if json {
        return ctx.out.json(&super::pretty(&answer.body)?);
    }
    let timer = wire::timer(&answer.body)?;
    print_status(ctx, &timer)
}

fn print_status(ctx: &mut Ctx, t: &TimerDict) -> CliResult {
    let time = ctx.time.clone();
    let style = ctx.out.style;
    ctx.out.line(format!(
        "{}  {}",
        style.paint(Some(Color::Bold), &t.id),
        style.paint(state_color(&t.state), &t.state)
    ))?;
    let mut fields: Vec<(&str, String)> = vec![("schedule", t.schedule.clone())];
    match &t.task {
        Some(task) => fields.push(("task", task.clone())),
        None => fields.push(("function", t.fn_name.clone())),
    }
    if let Some(tenant) = &t.tenant_id {
        fields.push(("tenant", tenant.clone()));
    }
    let next = match instant(t.next_run_at.as_deref())? {
        Some(at) => time.when(at),
        None if t.state == "paused" => "- (paused)".to_string(),
        None => "-".to_string(),
    };
    fields.push(("next run", next));
    let last_run = match instant(t.last_run_at.as_deref())? {
        Some(at) => {
            let mut text = time.when(at);
            if let Some(status) = &t.last_status {
                text.push_str(": ");
                text.push_str(&style.paint(status_color(status), status));
            }
            if let Some(ms) = t.last_duration_ms {
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
            t.run_count, t.failure_count
        ),
    ));
    fields.push((
        "policy",
        format!(
            "max_attempts {}, overlap {}, catchup {}, jitter {}",
            t.max_attempts,
            t.overlap,
            t.catchup,
            duration(t.jitter_ms)
        ),
    ));
    fields.push(("active runs", t.active_runs.to_string()));
    if let Some(at) = instant(t.created_at.as_deref())? {
        fields.push(("created", time.when(at)));
    }
    if let Some(at) = instant(t.updated_at.as_deref())? {
        fields.push(("updated", time.when(at)));
    }
    for (key, value) in fields {
        ctx.out.line(format!("  {key:<12} {value}"))?;
    }
    if let Some(error) = &t.last_error {
        ctx.out.line("  last error:")?;
        for line in error.lines() {
            ctx.out.line(format!("    {line}"))?;
        }
    }
    Ok(())
}

pub fn history(ctx: &mut Ctx, server: &Server, args: &HistoryArgs) -> CliResult {
    let name = parse::timer_name(&args.name)?;
    let kinds = parse::kinds(&args.kind)?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse::time_or_ago("since", s, ctx.time.now, &ctx.time.tz))
        .transpose()?;
    // The server keeps only `limit`; other filters apply here, over everything it has.
    let filtered = !kinds.is_empty() || since.is_some();
    let fetch = if filtered {
        MAX_HISTORY
    } else {
        args.limit.clamp(1, MAX_HISTORY)
    };
    let answer = server
        .get(&format!(
            "/v1/timers/{}/history?limit={fetch}",
            segment(name)
        ))
        .map_err(|e| known(e, ctx, server, name, "job history", READER))?;
    let events = wire::events(&answer.body)?;
    if events.is_empty() {
        // No history at all: known only if the timer exists (a removed timer keeps its history).
        server
            .get(&format!("/v1/timers/{}", segment(name)))
            .map_err(|e| known(e, ctx, server, name, "job history", READER))?;
    }
    let raw = answer.body.as_array().cloned().unwrap_or_default();
    let mut kept: Vec<_> = events
        .into_iter()
        .zip(raw)
        .filter(|(e, _)| kinds.is_empty() || kinds.contains(&e.event.kind))
        .filter(|(e, _)| since.is_none_or(|s| e.event.ts >= s))
        .collect();
    let skip = kept.len().saturating_sub(args.limit);
    kept.drain(..skip);
    if args.json.json {
        let events: Vec<Value> = kept.into_iter().map(|(_, raw)| raw).collect();
        let value = json!({ "timer": name, "server": answer.node, "events": events });
        return ctx.out.json(&super::pretty(&value)?);
    }
    if kept.is_empty() {
        return ctx.out.line(format!("No events for {name} match."));
    }
    let events: Vec<_> = kept.into_iter().map(|(e, _)| e).collect();
    history::render(ctx, &events, args.verbose)
}

#[derive(Serialize)]
struct AdminJson {
    ok: bool,
    op: &'static str,
    timer: String,
    /// Always "server" here ("runtime" or "storage" against a data directory).
    via: &'static str,
    /// The node that carried it out (the leader).
    server: String,
    /// Not known through a server.
    changed: Option<bool>,
    run_id: Option<String>,
    pid: Option<u32>,
}

pub fn admin(ctx: &mut Ctx, server: &Server, op: TimerOp, args: &AdminArgs) -> CliResult {
    let name = parse::timer_name(&args.name)?;
    let wait_ms = parse::seconds_or_duration("timeout", &args.timeout)?;
    if wait_ms == 0 {
        return Err(CliError::usage(format!(
            "--timeout must be more than 0, got {:?}",
            args.timeout
        )));
    }
    let wait = Duration::from_millis(wait_ms);
    let path = format!("/v1/timers/{}", segment(name));
    let command = format!("job {}", op.as_str());
    let sent = match op {
        TimerOp::Pause => server.post(&format!("{path}/pause"), &json!({}), wait),
        TimerOp::Resume => server.post(&format!("{path}/resume"), &json!({}), wait),
        TimerOp::Trigger => server.post(&format!("{path}/trigger"), &json!({}), wait),
        TimerOp::Remove => server.delete(&path, wait),
    };
    let answer = sent.map_err(|e| known(e, ctx, server, name, &command, OPERATOR))?;
    let run_id = answer
        .body
        .get("run_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    if args.json.json {
        let value = data::to_value(&AdminJson {
            ok: true,
            op: op.as_str(),
            timer: name.to_string(),
            via: "server",
            server: answer.node,
            changed: None,
            run_id,
            pid: None,
        })?;
        return ctx.out.json(&value);
    }
    let on = &answer.node;
    let text = match op {
        TimerOp::Pause => format!("Paused {name} on {on}: it starts no runs until resumed."),
        TimerOp::Resume => {
            let next = next_run(&answer)?
                .map(|at| format!(" Next run {}.", ctx.time.when(at)))
                .unwrap_or_default();
            format!("Resumed {name} on {on}.{next}")
        }
        TimerOp::Trigger => format!(
            "Triggered {name} on {on}: run {} is due now, for a worker serving its task.",
            run_id.as_deref().unwrap_or("?")
        ),
        TimerOp::Remove => format!("Removed {name} on {on}; its history remains."),
    };
    ctx.out.line(text)
}

fn next_run(answer: &Answer) -> CliResult<Option<i64>> {
    instant(answer.body.get("next_run_at").and_then(Value::as_str))
}

/// [`super::cli_error`], with a 404 worded as for a data directory: the unknown timer, or when
/// it was removed (its history says so).
fn known(
    error: RemoteError,
    ctx: &Ctx,
    server: &Server,
    name: &str,
    command: &str,
    role: &str,
) -> CliError {
    let RemoteError::NotFound(_) = error else {
        return super::cli_error(error, server, command, role);
    };
    let removed = server
        .get(&format!("/v1/timers/{}/history?limit=1", segment(name)))
        .ok()
        .and_then(|a| wire::events(&a.body).ok())
        .and_then(|events| events.into_iter().last())
        .filter(|e| e.event.kind == kron_core::event::EventKind::TimerRemoved);
    match removed {
        Some(event) => CliError::failure(format!(
            "timer {name:?} was removed {} (its history remains: kron job history {name})",
            ctx.time.local(event.event.ts)
        )),
        None => CliError::failure(format!("no timer named {name:?} on {}", server.display())),
    }
}
