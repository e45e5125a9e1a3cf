//! `kron job pause|resume|trigger|remove NAME`: through the live runtime when one owns the
//! directory, otherwise applied to storage directly (taking the writer lock for the moment).

use kron_core::engine::{Engine, EngineConfig};
use kron_core::input::{Input, Output, Rejected};
use kron_core::CommandError;
use kron_store::{Durability, Store, StoreError};
use serde::Serialize;
use serde_json::Value;

use std::time::Duration;

use super::Ctx;
use crate::cli::AdminArgs;
use crate::control::{self, Request};
use crate::data;
use crate::error::{CliError, CliResult};
use crate::parse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Pause,
    Resume,
    Trigger,
    Remove,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Trigger => "trigger",
            Op::Remove => "remove",
        }
    }
}

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

pub fn run(ctx: &mut Ctx, op: Op, args: &AdminArgs) -> CliResult {
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
        live(ctx, op, name, wait, args.json.json)
    } else {
        offline(ctx, op, name, args.json.json)
    }
}

fn live(ctx: &mut Ctx, op: Op, name: &str, wait: Duration, json: bool) -> CliResult {
    let request = Request {
        wait,
        ..Request::timer(op.as_str(), name)
    };
    let reply =
        control::send(&ctx.dir.path, &request).map_err(|e| e.into_cli(&ctx.dir, Some(name)))?;
    let run_id = reply
        .get("run_id")
        .and_then(Value::as_str)
        .map(str::to_string);
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
        Op::Pause => format!("Paused {name} through {by}: it starts no runs until resumed."),
        Op::Resume => format!("Resumed {name} through {by}."),
        Op::Trigger => format!(
            "Triggered {name} through {by}: run {} starts now.",
            run_id.as_deref().unwrap_or("?")
        ),
        Op::Remove => format!("Removed {name} through {by}; its history remains."),
    };
    ctx.out.line(text)
}

fn offline(ctx: &mut Ctx, op: Op, name: &str, json: bool) -> CliResult {
    // Read first: a missing directory is reported, never created, and an unknown name is
    // reported before anything takes the lock.
    {
        let reader = ctx.dir.reader()?;
        if reader.timer(name)?.is_none() {
            return Err(data::unknown_timer(&reader, &ctx.dir, name, &ctx.time));
        }
    }
    let now = ctx.time.now;
    let mut store = Store::open(&ctx.dir.path, Durability::Normal).map_err(|e| match e {
        StoreError::Locked { pid, .. } => CliError::failure(format!(
            "a runtime{} started on {} just now; run the command again to reach it",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            ctx.dir.display()
        )),
        other => other.into(),
    })?;
    let snapshot = store.load()?;
    let seed = (now as u64) ^ (u64::from(std::process::id()) << 32);
    let mut engine = Engine::restored(
        EngineConfig::default(),
        seed,
        snapshot.timers,
        snapshot.runs,
    )
    .map_err(|e| CliError::failure(format!("a stored timer cannot be read: {e}")))?;
    let before = engine.view(name).map(|v| v.state.as_str());
    let (at, timer) = (now, name.to_string());
    let input = match op {
        Op::Pause => Input::Pause { at, timer },
        Op::Resume => Input::Resume { at, timer },
        Op::Trigger => Input::Trigger { at, timer },
        Op::Remove => Input::Remove { at, timer },
    };
    let run_id = match engine.apply(input) {
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
    let changes = engine.take_changes();
    let changed = !changes.is_empty();
    store.commit(&changes)?;
    let after = engine.view(name);
    store.close()?;

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
        Op::Pause if changed => format!(
            "Paused {name}. {stopped}; the application will find it paused when it starts."
        ),
        Op::Pause => format!("{name} is {state}: nothing to pause."),
        Op::Resume if changed => {
            let next = after
                .and_then(|v| v.next_run_at)
                .map(|at| format!(" Next run {}.", ctx.time.when(at)))
                .unwrap_or_default();
            format!("Resumed {name}.{next} {stopped}.")
        }
        Op::Resume => format!("{name} is {state}, not paused: nothing to resume."),
        Op::Trigger => format!(
            "Recorded a manual run of {name} ({}). {stopped}: the run starts when the application next starts.",
            run_id.as_ref().map_or("?", |r| r.as_str())
        ),
        Op::Remove => format!("Removed {name}; its history remains. {stopped}."),
    };
    ctx.out.line(text)
}
