//! `kron job pause|resume|trigger|remove NAME`: through the live runtime when one owns the
//! directory, otherwise applied to storage directly (taking the writer lock for the moment).

use kron_core::admin::{ControlReply, ControlRequest, TimerOp};
use kron_core::engine::EngineConfig;
use kron_core::input::{Output, Rejected};
use kron_core::CommandError;
use kron_store::{Durability, DurableEngine, OpenError, StoreError};
use serde::Serialize;

use std::time::Duration;

use super::Ctx;
use crate::cli::AdminArgs;
use crate::data;
use crate::error::{CliError, CliResult};
use crate::live::{self, IntoCli};
use crate::parse;

#[derive(Serialize)]
struct AdminJson {
    ok: bool,
    op: &'static str,
    timer: String,
    /// "runtime": the live runtime applied it; "storage": no runtime was running.
    via: &'static str,
    /// Whether anything changed (known when applied to storage; `null` through the runtime).
    changed: Option<bool>,
    run_id: Option<String>,
    /// The live runtime's pid.
    pid: Option<u32>,
}

pub fn run(ctx: &mut Ctx, op: TimerOp, args: &AdminArgs) -> CliResult {
    let name = parse::timer_name(&args.name)?;
    let wait_ms = parse::seconds_or_duration("timeout", &args.timeout)?;
    if wait_ms == 0 {
        return Err(CliError::usage(format!(
            "--timeout must be more than 0, got {:?}",
            args.timeout
        )));
    }
    if ctx.dir.is_live() {
        let wait = Duration::from_millis(wait_ms);
        through_runtime(ctx, op, name, wait, args.json.json)
    } else {
        offline(ctx, op, name, args.json.json)
    }
}

fn through_runtime(
    ctx: &mut Ctx,
    op: TimerOp,
    name: &str,
    wait: Duration,
    json: bool,
) -> CliResult {
    let request = ControlRequest::timer(op, name);
    let reply =
        live::send(&ctx.dir.path, &request, wait).map_err(|e| e.into_cli(&ctx.dir, Some(name)))?;
    let run_id = match reply {
        ControlReply::Triggered { run_id } => Some(run_id.to_string()),
        _ => None,
    };
    let pid = kron_store::read_owner(&ctx.dir.path).map(|o| o.pid);
    if json {
        let value = data::to_value(&AdminJson {
            ok: true,
            op: op.as_str(),
            timer: name.to_string(),
            via: "runtime",
            changed: None,
            run_id,
            pid,
        })?;
        return ctx.out.json(&value);
    }
    let by = match pid {
        Some(pid) => format!("the live runtime (pid {pid})"),
        None => "the live runtime".to_string(),
    };
    let text = match op {
        TimerOp::Pause => format!("Paused {name} through {by}: it starts no runs until resumed."),
        TimerOp::Resume => format!("Resumed {name} through {by}."),
        TimerOp::Trigger => format!(
            "Triggered {name} through {by}: run {} starts now.",
            run_id.as_deref().unwrap_or("?")
        ),
        TimerOp::Remove => format!("Removed {name} through {by}; its history remains."),
    };
    ctx.out.line(text)
}

fn offline(ctx: &mut Ctx, op: TimerOp, name: &str, json: bool) -> CliResult {
    // Read first: a missing directory is reported, never created, and an unknown name is
    // reported before anything takes the lock.
    {
        let reader = ctx.dir.reader()?;
        if reader.timer(name)?.is_none() {
            return Err(data::unknown_timer(&reader, &ctx.dir, name, &ctx.time));
        }
    }
    let now = ctx.time.now;
    let config = EngineConfig::default();
    let mut durable = DurableEngine::open(&ctx.dir.path, Durability::Normal, config, now).map_err(
        |e| match e {
            OpenError::Store(StoreError::Locked { pid, .. }) => CliError::failure(format!(
                "a runtime{} started on {} just now; run the command again to reach it",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                ctx.dir.display()
            )),
            OpenError::Store(other) => other.into(),
            restore @ OpenError::Restore(_) => CliError::failure(restore.to_string()),
        },
    )?;
    let before = durable.engine().view(name).map(|v| v.state.as_str());
    let run_id = match durable.apply(op.input(name, now)) {
        Ok(Output::Triggered { run }) => Some(run),
        Ok(_) => None,
        Err(Rejected::Command(CommandError::UnknownTimer(_))) => {
            return Err(CliError::failure(format!(
                "no timer named {name:?} in {}",
                ctx.dir.display()
            )))
        }
        Err(other) => return Err(CliError::failure(other.to_string())),
    };
    let changed = durable.commit()?;
    let after = durable.engine().view(name);
    durable.close()?;

    if json {
        let value = data::to_value(&AdminJson {
            ok: true,
            op: op.as_str(),
            timer: name.to_string(),
            via: "storage",
            changed: Some(changed),
            run_id: run_id.map(|r| r.to_string()),
            pid: None,
        })?;
        return ctx.out.json(&value);
    }
    let stopped = format!("No runtime is running: written to {}", ctx.dir.display());
    let state = before.unwrap_or("unknown");
    let text = match op {
        TimerOp::Pause if changed => format!(
            "Paused {name}. {stopped}; the application will find it paused when it starts."
        ),
        TimerOp::Pause => format!("{name} is {state}: nothing to pause."),
        TimerOp::Resume if changed => {
            let next = after
                .and_then(|v| v.next_run_at)
                .map(|at| format!(" Next run {}.", ctx.time.when(at)))
                .unwrap_or_default();
            format!("Resumed {name}.{next} {stopped}.")
        }
        TimerOp::Resume => format!("{name} is {state}, not paused: nothing to resume."),
        TimerOp::Trigger => format!(
            "Recorded a manual run of {name} ({}). {stopped}: the run starts when the application next starts.",
            run_id.as_ref().map_or("?", |r| r.as_str())
        ),
        TimerOp::Remove => format!("Removed {name}; its history remains. {stopped}."),
    };
    ctx.out.line(text)
}
