//! `kron doctor`: checks a data directory and explains each result in one line. Read-only.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use kron_core::admin::{ControlReply, ControlRequest};
use kron_core::event::EventKind;
use kron_core::run::RunPhase;
use kron_core::timer::Lifecycle;
use kron_store::{EventFilter, Reader, StoreError, DB_FILE, DEFAULT_HISTORY_LIMIT, SCHEMA_VERSION};
use serde::Serialize;

use super::Ctx;
use crate::data;
use crate::error::{one_line, CliError, CliResult};
use crate::live::{self, IntoCli, DEFAULT_WAIT};
use crate::output::timefmt::{bytes, count, rough};

/// A WAL larger than this while a runtime runs means checkpoints are falling behind.
const WAL_WARN_BYTES: u64 = 64 * 1024 * 1024;
/// A timer whose next run is further in the past than this, while a runtime runs, is stuck.
const STUCK_MS: i64 = 5 * 60 * 1000;
/// An attempt running longer than this is worth a look.
const LONG_RUN_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Serialize)]
struct Check {
    check: &'static str,
    status: Level,
    message: String,
}

#[derive(Serialize)]
struct DoctorJson {
    ok: bool,
    data_dir: String,
    checks: Vec<Check>,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: &'static str, status: Level, message: impl Into<String>) {
        self.0.push(Check {
            check,
            status,
            message: message.into(),
        });
    }
}

pub fn run(ctx: &mut Ctx, json: bool) -> CliResult {
    let checks = gather(ctx);
    let failed = checks.0.iter().filter(|c| c.status == Level::Fail).count();
    let warned = checks.0.iter().filter(|c| c.status == Level::Warn).count();
    if json {
        let value = data::to_value(&DoctorJson {
            ok: failed == 0,
            data_dir: data::absolute(&ctx.dir.path),
            checks: checks.0,
        })?;
        ctx.out.json(&value)?;
    } else {
        let width = checks.0.iter().map(|c| c.check.len()).max().unwrap_or(0);
        for check in &checks.0 {
            let line = format!(
                "{}  {:<width$}  {}",
                ctx.out.style.verdict(check.status.label()),
                check.check,
                check.message
            );
            ctx.out.line(line)?;
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let summary = match (failed, warned) {
            (0, 0) => "All checks passed.".to_string(),
            (0, w) => format!("No failures, {}.", plural(w, "warning")),
            (f, w) => format!("{}, {}.", plural(f, "failure"), plural(w, "warning")),
        };
        ctx.out.line(summary)?;
    }
    if failed > 0 {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn gather(ctx: &Ctx) -> Checks {
    let mut checks = Checks::default();
    let dir = &ctx.dir.path;
    let shown = ctx.dir.display();

    // The directory itself.
    let meta = match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            checks.add(
                "data dir",
                Level::Fail,
                format!("{shown} is not a directory"),
            );
            return checks;
        }
        Err(e) => {
            checks.add(
                "data dir",
                Level::Fail,
                format!("{shown} cannot be read: {e} (give --data-dir DIR or set KRON_HOME)"),
            );
            return checks;
        }
    };
    let mode = meta.permissions().mode() & 0o7777;
    let me = rustix::process::geteuid().as_raw();
    let owner = if meta.uid() == me {
        "owned by you".to_string()
    } else {
        format!("owned by uid {} (you are uid {me})", meta.uid())
    };
    use rustix::fs::Access;
    let readable = rustix::fs::access(dir, Access::READ_OK | Access::EXEC_OK).is_ok();
    let writable = rustix::fs::access(dir, Access::WRITE_OK).is_ok();
    if !readable {
        checks.add(
            "data dir",
            Level::Fail,
            format!("{shown} (mode {mode:04o}, {owner}) cannot be read by you"),
        );
        return checks;
    } else if mode & 0o002 != 0 {
        checks.add(
            "data dir",
            Level::Warn,
            format!("{shown} is writable by everyone (mode {mode:04o}): anyone could change the schedule; chmod o-w it"),
        );
    } else if !writable {
        checks.add(
            "data dir",
            Level::Warn,
            format!("{shown} (mode {mode:04o}, {owner}) is read-only for you: reads work, but a runtime or admin command run as you cannot write"),
        );
    } else {
        checks.add(
            "data dir",
            Level::Ok,
            format!("{shown}: mode {mode:04o}, {owner}, readable and writable"),
        );
    }

    // The writer lock, and the live runtime's control socket.
    let live = ctx.dir.is_live();
    let owner = kron_store::read_owner(dir);
    match (live, &owner) {
        (true, _) => {
            let who = owner
                .as_ref()
                .map(|o| format!("pid {}", o.pid))
                .unwrap_or_else(|| "a process".to_string());
            checks.add("lock", Level::Ok, format!("held by a live runtime ({who})"));
            match live::send(dir, &ControlRequest::Status, DEFAULT_WAIT) {
                Ok(reply) => {
                    let version = match &reply {
                        ControlReply::Status(status) => status.version.as_str(),
                        _ => "?",
                    };
                    checks.add(
                        "control socket",
                        Level::Ok,
                        format!("the runtime answers (version {version})"),
                    );
                }
                Err(e) => checks.add(
                    "control socket",
                    Level::Warn,
                    format!(
                        "{} — admin commands cannot reach the runtime",
                        e.into_cli(&ctx.dir, None)
                    ),
                ),
            }
        }
        (false, Some(o)) => {
            let alive = rustix::process::Pid::from_raw(o.pid as i32)
                .map(|pid| match rustix::process::test_kill_process(pid) {
                    Ok(()) => true,
                    Err(e) => e == rustix::io::Errno::PERM,
                })
                .unwrap_or(false);
            let message = if alive {
                format!(
                    "free, but kron.lock names pid {}, which is alive and does not hold it (another program reusing the pid?); harmless",
                    o.pid
                )
            } else {
                format!(
                    "stale: kron.lock names pid {}, which is gone; that runtime did not shut down cleanly (the next start recovers)",
                    o.pid
                )
            };
            checks.add("lock", Level::Warn, message);
        }
        (false, None) => checks.add("lock", Level::Ok, "free: no runtime is running"),
    }

    // The database.
    let reader = match Reader::open(dir) {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => {
            checks.add(
                "database",
                Level::Warn,
                format!("no {DB_FILE} yet: no runtime has started in {shown}"),
            );
            return checks;
        }
        Err(e) => {
            checks.add("database", Level::Fail, one_line(&e.to_string()));
            wal_check(&mut checks, dir, live);
            return checks;
        }
    };
    match reader.schema_version() {
        Ok(v) if v == SCHEMA_VERSION => {
            checks.add("schema", Level::Ok, format!("version {v} (current)"))
        }
        Ok(v) => checks.add(
            "schema",
            Level::Warn,
            format!(
                "version {v}, older than this kron's {SCHEMA_VERSION}: the next start migrates it"
            ),
        ),
        Err(e) => checks.add("schema", Level::Fail, one_line(&e.to_string())),
    }
    match reader.integrity_check() {
        Ok(problems) if problems.len() == 1 && problems[0] == "ok" => {
            checks.add("integrity", Level::Ok, "SQLite integrity check passed")
        }
        Ok(problems) => checks.add(
            "integrity",
            Level::Fail,
            format!(
                "SQLite integrity check found {} problem{}: {} (restore kron.db from a backup)",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                one_line(problems.first().map_or("", String::as_str))
            ),
        ),
        Err(e) => checks.add("integrity", Level::Fail, one_line(&e.to_string())),
    }
    wal_check(&mut checks, dir, live);
    history_check(&mut checks, dir, &reader);
    timer_checks(&mut checks, ctx, &reader, live);
    checks
}

/// How much history there is, and what bounds it: the runtime's default limit, which this
/// command cannot see being overridden (it is an argument of the application's `start()`).
fn history_check(checks: &mut Checks, dir: &std::path::Path, reader: &Reader) {
    match reader.event_count() {
        Ok(events) => checks.add(
            "history",
            Level::Ok,
            format!(
                "{} events, {} with the log; a runtime keeps the latest {} runs of each timer unless started with another history_limit (None: everything)",
                count(events),
                bytes(super::log::db_bytes(dir)),
                count(DEFAULT_HISTORY_LIMIT as u64)
            ),
        ),
        Err(e) => checks.add("history", Level::Fail, one_line(&e.to_string())),
    }
}

fn wal_check(checks: &mut Checks, dir: &std::path::Path, live: bool) {
    let wal = std::fs::metadata(dir.join(format!("{DB_FILE}-wal"))).map_or(0, |m| m.len());
    match (live, wal) {
        (true, n) if n > WAL_WARN_BYTES => checks.add(
            "wal",
            Level::Warn,
            format!("{} write-ahead log: checkpoints are falling behind (a long-running reader?)", bytes(n)),
        ),
        (true, n) => checks.add("wal", Level::Ok, format!("{} write-ahead log", bytes(n))),
        (false, 0) => checks.add("wal", Level::Ok, "no write-ahead log (checkpointed)"),
        (false, n) if n > WAL_WARN_BYTES => checks.add(
            "wal",
            Level::Warn,
            format!("{} write-ahead log while no runtime runs (left by a crash?); readers must scan it until the next start checkpoints it", bytes(n)),
        ),
        (false, n) => checks.add(
            "wal",
            Level::Ok,
            format!("{} write-ahead log, checkpointed at the next start", bytes(n)),
        ),
    }
}

fn timer_checks(checks: &mut Checks, ctx: &Ctx, reader: &Reader, live: bool) {
    let now = ctx.time.now;
    let directory = match data::directory_view(reader) {
        Ok(s) => s,
        Err(e) => {
            checks.add("timers", Level::Fail, e.to_string());
            return;
        }
    };
    let names = |ids: &[String]| {
        let mut text = ids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if ids.len() > 5 {
            text.push_str(&format!(" and {} more", ids.len() - 5));
        }
        text
    };

    let orphaned: Vec<String> = directory
        .views
        .iter()
        .filter(|v| v.record.lifecycle == Lifecycle::Orphaned)
        .map(|v| v.record.def.id.to_string())
        .collect();
    if orphaned.is_empty() {
        checks.add("orphaned", Level::Ok, "no orphaned timers");
    } else {
        checks.add(
            "orphaned",
            Level::Warn,
            format!(
                "{} orphaned ({}): no function was registered for them at the last start; register them again, or kron job remove",
                orphaned.len(),
                names(&orphaned)
            ),
        );
    }

    match reader.events(&EventFilter {
        kinds: vec![EventKind::RunDead],
        since: Some(now - DAY_MS),
        ..Default::default()
    }) {
        Ok(dead) if dead.is_empty() => {
            checks.add("dead runs", Level::Ok, "no run gave up in the last 24 h")
        }
        Ok(dead) => {
            let mut per_timer: std::collections::BTreeMap<&str, usize> = Default::default();
            for e in &dead {
                *per_timer.entry(e.event.timer_id.as_str()).or_default() += 1;
            }
            let list: Vec<String> = per_timer
                .iter()
                .map(|(id, n)| format!("{id} ({n})"))
                .collect();
            checks.add(
                "dead runs",
                Level::Warn,
                format!(
                    "{} run{} gave up after all attempts in the last 24 h: {} (see kron job history NAME --kind dead)",
                    dead.len(),
                    if dead.len() == 1 { "" } else { "s" },
                    names(&list)
                ),
            );
        }
        Err(e) => checks.add("dead runs", Level::Fail, one_line(&e.to_string())),
    }

    let overdue: Vec<String> = directory
        .views
        .iter()
        .filter(|v| v.next_run_at.is_some_and(|at| at < now - STUCK_MS))
        .map(|v| {
            let late = v.next_run_at.map_or(0, |at| now - at);
            format!("{} ({} late)", v.record.def.id, rough(late as u64))
        })
        .collect();
    let long_runs: Vec<String> = directory
        .runs
        .iter()
        .filter(|r| r.phase == RunPhase::Running && r.fire_at < now - LONG_RUN_MS)
        .map(|r| {
            format!(
                "{} ({} running for {})",
                r.timer_id,
                r.run_id,
                rough((now - r.fire_at) as u64)
            )
        })
        .collect();
    match (overdue.is_empty(), live) {
        (true, _) => checks.add("stuck", Level::Ok, "no timer is overdue"),
        (false, true) => checks.add(
            "stuck",
            Level::Fail,
            format!(
                "{} timer{} overdue by more than 5m while the runtime runs: {} (all workers busy, or a hung callback?)",
                overdue.len(),
                if overdue.len() == 1 { " is" } else { "s are" },
                names(&overdue)
            ),
        ),
        (false, false) => checks.add(
            "stuck",
            Level::Ok,
            format!(
                "{} timer{} overdue because no runtime is running; they catch up when the application starts: {}",
                overdue.len(),
                if overdue.len() == 1 { " is" } else { "s are" },
                names(&overdue)
            ),
        ),
    }
    if live && !long_runs.is_empty() {
        checks.add(
            "long runs",
            Level::Warn,
            format!("attempts running for over an hour: {}", names(&long_runs)),
        );
    }
}
