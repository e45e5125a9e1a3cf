//! `kron runtime status` and `kron runtime shutdown`.

use std::time::{Duration, Instant};

use kron_core::admin::{ControlReply, ControlRequest};
use kron_core::time::format_utc;
use serde::Serialize;

use super::Ctx;
use crate::cli::ShutdownArgs;
use crate::data;
use crate::error::{CliError, CliResult};
use crate::live::{self, IntoCli, DEFAULT_WAIT};
use crate::output::timefmt::duration;
use crate::parse;

/// Beyond `--timeout`, how long to wait for the runtime to commit and release the directory.
const RELEASE_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

#[derive(Serialize, Default)]
struct StatusJson {
    running: bool,
    data_dir: String,
    pid: Option<u64>,
    started_at: Option<String>,
    version: Option<String>,
    active_runs: Option<u64>,
    timers: Option<u64>,
    /// "ok" when the control socket answered, "unreachable" when it did not (the other fields
    /// then come from `kron.lock` and storage), `null` when no runtime runs.
    control: Option<&'static str>,
    error: Option<String>,
    /// The processes waiting to take over (`kron.start(standby=True)`), oldest first.
    standbys: Vec<StandbyJson>,
}

#[derive(Serialize)]
struct StandbyJson {
    pid: u32,
    /// When it began waiting.
    since: Option<String>,
    version: Option<String>,
}

pub fn status(ctx: &mut Ctx, json: bool) -> CliResult {
    let mut report = StatusJson {
        data_dir: data::absolute(&ctx.dir.path),
        ..Default::default()
    };
    if !ctx.dir.path.is_dir() {
        return Err(CliError::failure(format!(
            "no Kron data directory at {} (give --data-dir DIR or set KRON_HOME)",
            ctx.dir.display()
        )));
    }
    if ctx.dir.is_live() {
        report.running = true;
        match live::send(&ctx.dir.path, &ControlRequest::Status, DEFAULT_WAIT) {
            Ok(reply) => {
                report.control = Some("ok");
                if let ControlReply::Status(status) = reply {
                    report.pid = Some(u64::from(status.pid));
                    report.started_at = Some(format_utc(status.started_at));
                    report.version = Some(status.version);
                    report.active_runs = Some(status.active_runs as u64);
                    report.timers = Some(status.timers as u64);
                }
            }
            Err(e) => {
                report.control = Some("unreachable");
                report.error = Some(e.into_cli(&ctx.dir, None).to_string());
                if let Some(owner) = kron_store::read_owner(&ctx.dir.path) {
                    report.pid = Some(u64::from(owner.pid));
                    report.started_at = owner.started_at.map(format_utc);
                    report.version = owner.version;
                }
                if let Ok(reader) = ctx.dir.reader() {
                    if let Ok(directory) = data::directory_view(&reader) {
                        report.timers = Some(directory.views.len() as u64);
                        report.active_runs = Some(
                            directory
                                .runs
                                .iter()
                                .filter(|r| r.phase == kron_core::run::RunPhase::Running)
                                .count() as u64,
                        );
                    }
                }
            }
        }
    }
    let standbys = kron_store::list_standbys(&ctx.dir.path);
    report.standbys = standbys
        .iter()
        .map(|owner| StandbyJson {
            pid: owner.pid,
            since: owner.started_at.map(format_utc),
            version: owner.version.clone(),
        })
        .collect();
    if json {
        let value = data::to_value(&report)?;
        return ctx.out.json(&value);
    }
    if !report.running {
        ctx.out
            .line(format!("No runtime is running for {}.", ctx.dir.display()))?;
        // A standby is about to take over (or failed to): say so rather than nothing.
        for standby in &standbys {
            ctx.out.line(format!(
                "  standby      pid {} (waiting to take over)",
                standby.pid
            ))?;
        }
        if let Some(owner) = kron_store::read_owner(&ctx.dir.path) {
            ctx.out.line(format!(
                "(kron.lock still names pid {}, which no longer holds it: that runtime did not shut down cleanly)",
                owner.pid
            ))?;
        }
        return Ok(());
    }
    ctx.out
        .line(format!("Runtime for {}: running", ctx.dir.display()))?;
    let unknown = || "?".to_string();
    let started = report
        .started_at
        .as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map_or_else(unknown, |ts| ctx.time.when(ts.as_millisecond()));
    let fields = [
        ("pid", report.pid.map_or_else(unknown, |p| p.to_string())),
        ("started at", started),
        ("version", report.version.clone().unwrap_or_else(unknown)),
        (
            "active runs",
            report.active_runs.map_or_else(unknown, |n| n.to_string()),
        ),
        (
            "timers",
            report.timers.map_or_else(unknown, |n| n.to_string()),
        ),
    ];
    for (key, value) in fields {
        ctx.out.line(format!("  {key:<12} {value}"))?;
    }
    if standbys.is_empty() {
        ctx.out.line("  standbys     none")?;
    }
    for standby in &standbys {
        let since = standby
            .started_at
            .map_or_else(unknown, |ms| ctx.time.when(ms));
        ctx.out.line(format!(
            "  standby      pid {}, waiting since {since}",
            standby.pid
        ))?;
    }
    if let Some(error) = &report.error {
        ctx.out.line(format!("  warning: {error}"))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct ShutdownJson {
    ok: bool,
    was_running: bool,
    pid: Option<u32>,
    /// How long the runtime took to release the directory, in milliseconds.
    waited_ms: Option<u64>,
}

pub fn shutdown(ctx: &mut Ctx, args: &ShutdownArgs) -> CliResult {
    let timeout_ms = parse::seconds_or_duration("timeout", &args.timeout)?;
    if !ctx.dir.path.is_dir() {
        return Err(CliError::failure(format!(
            "no Kron data directory at {} (give --data-dir DIR or set KRON_HOME)",
            ctx.dir.display()
        )));
    }
    if !ctx.dir.is_live() {
        if args.json.json {
            let value = data::to_value(&ShutdownJson {
                ok: true,
                was_running: false,
                pid: None,
                waited_ms: None,
            })?;
            return ctx.out.json(&value);
        }
        return ctx.out.line(format!(
            "No runtime is running for {}: nothing to shut down.",
            ctx.dir.display()
        ));
    }
    let pid = kron_store::read_owner(&ctx.dir.path).map(|o| o.pid);
    let request = ControlRequest::Shutdown {
        timeout_s: Some(timeout_ms as f64 / 1_000.0),
    };
    let started = Instant::now();
    live::send(&ctx.dir.path, &request, DEFAULT_WAIT).map_err(|e| e.into_cli(&ctx.dir, None))?;
    let deadline = started + Duration::from_millis(timeout_ms) + RELEASE_GRACE;
    while ctx.dir.is_live() {
        if Instant::now() >= deadline {
            return Err(CliError::failure(format!(
                "the runtime{} accepted the shutdown but still holds {} after {}",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                ctx.dir.display(),
                duration(started.elapsed().as_millis() as u64)
            )));
        }
        std::thread::sleep(POLL);
    }
    let waited = started.elapsed().as_millis() as u64;
    if args.json.json {
        let value = data::to_value(&ShutdownJson {
            ok: true,
            was_running: true,
            pid,
            waited_ms: Some(waited),
        })?;
        return ctx.out.json(&value);
    }
    ctx.out.line(format!(
        "Runtime{} shut down gracefully in {}; {} is free.",
        pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
        duration(waited),
        ctx.dir.display()
    ))
}
