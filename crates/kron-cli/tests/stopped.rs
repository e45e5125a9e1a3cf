//! The CLI against stopped data directories made with kron-store (no runtime running), and
//! against one whose lock another process holds without a control socket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::*;
use kron_core::changes::Changes;
use kron_core::event::{Event, EventDetail, EventKind};
use kron_core::run::RunId;
use kron_core::timer::Lifecycle;
use kron_store::{Durability, Reader, Store};

/// A stopped directory: a healthy timer, a flaky one (fails, then succeeds on retry), a dead
/// one, and a nightly cron timer.
fn sample() -> Fixture {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("heartbeat", MINUTE as u64));
    f.register(every("flaky", 10 * MINUTE as u64));
    f.register(TimerDefExt::attempts(
        every("doomed", 10 * MINUTE as u64),
        2,
    ));
    f.register(cron("nightly", "0 3 * * *", "Europe/Berlin"));
    f.run_until(t0 + 25 * MINUTE, 100, &|d| match d.timer_id.as_str() {
        "flaky" if d.attempt == 1 => Act::Fail(5, "ConnectionError: upstream not ready\nTraceback (most recent call last):\n  File \"app.py\", line 3".to_string()),
        "doomed" => Act::Fail(7, "ValueError: bad input".to_string()),
        _ => Act::Ok(3),
    });
    f
}

trait TimerDefExt {
    fn attempts(self, n: u32) -> Self;
}

impl TimerDefExt for kron_core::timer::TimerDef {
    fn attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }
}

#[test]
fn list_status_and_history_of_a_stopped_directory() {
    let mut f = sample();
    let dir = f.stop();

    let out = kron(&dir, &["job", "list"]);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID"), "{text}");
    for header in [
        "STATE",
        "SCHEDULE",
        "NEXT RUN",
        "LAST RUN",
        "LAST STATUS",
        "RUNS",
        "FAILS",
    ] {
        assert!(lines[0].contains(header), "{text}");
    }
    let row = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row {id}:\n{text}"))
            .to_string()
    };
    assert!(row("heartbeat").contains("every 1m"), "{text}");
    assert!(
        row("heartbeat").contains("+00:00"),
        "local time with offset: {text}"
    );
    assert!(row("heartbeat").contains(" ago)"), "{text}");
    assert!(
        row("doomed").contains("DEAD: ValueError: bad input"),
        "{text}"
    );
    assert!(
        row("nightly").contains("cron 0 3 * * * (Europe/Berlin)"),
        "{text}"
    );

    let list = kron(&dir, &["job", "list", "--json"]).json();
    assert_eq!(list["live"], false);
    let timers = list["timers"].as_array().unwrap();
    let ids: Vec<&str> = timers.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["doomed", "flaky", "heartbeat", "nightly"]);
    let heartbeat = &timers[2];
    for key in [
        "id",
        "state",
        "schedule",
        "timezone",
        "fn_name",
        "next_run_at",
        "last_run_at",
        "last_status",
        "last_error",
        "last_duration_ms",
        "run_count",
        "failure_count",
        "max_attempts",
        "overlap",
        "catchup",
        "jitter_ms",
        "active_runs",
        "created_at",
        "updated_at",
    ] {
        assert!(heartbeat.get(key).is_some(), "missing {key}: {heartbeat}");
    }
    // Every minute from t0 + 1m, each next one a minute after the previous finished (delay).
    assert_eq!(heartbeat["run_count"], 24);
    assert_eq!(heartbeat["last_status"], "OK");
    let next = heartbeat["next_run_at"].as_str().unwrap();
    assert!(
        next.ends_with('Z') && next.len() == 24,
        "ISO 8601 UTC: {next}"
    );

    let status = kron(&dir, &["job", "status", "flaky", "--json"]).json();
    assert_eq!(status["id"], "flaky");
    assert_eq!(status["failure_count"], 2);
    assert_eq!(status["last_status"], "OK");
    let fire = status["next_fire_times"].as_array().unwrap();
    assert_eq!(fire.len(), 5);
    assert_eq!(
        epoch_ms(&fire[1]) - epoch_ms(&fire[0]),
        10 * MINUTE,
        "{status}"
    );
    let text = kron(&dir, &["job", "status", "flaky"]).ok().to_string();
    assert!(text.starts_with("flaky  scheduled"), "{text}");
    assert!(text.contains("Next 5 fire times:"), "{text}");
    assert!(text.contains("2 failed"), "{text}");

    let history = kron(
        &dir,
        &["job", "history", "flaky", "--limit", "100", "--json"],
    )
    .json();
    let events = history["events"].as_array().unwrap();
    assert_eq!(events[0]["kind"], "TIMER_CREATED");
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "RUN_FAILED")
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed[0]["error"].as_str().unwrap().contains("Traceback"));
    for key in [
        "seq",
        "ts",
        "timer_id",
        "kind",
        "run_id",
        "attempt",
        "scheduled_at",
        "error",
        "duration_ms",
        "next_attempt_at",
        "count",
        "until",
        "manual",
        "schedule",
        "next_run_at",
    ] {
        assert!(events[0].get(key).is_some(), "missing {key}");
    }

    // Text: first line of the error only, unless --verbose.
    let text = kron(&dir, &["job", "history", "flaky", "--kind", "failed"])
        .ok()
        .to_string();
    assert!(
        text.contains("ConnectionError: upstream not ready"),
        "{text}"
    );
    assert!(!text.contains("Traceback"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let verbose = kron(
        &dir,
        &["job", "history", "flaky", "--kind", "RUN_FAILED", "-v"],
    )
    .ok()
    .to_string();
    assert!(
        verbose.contains("Traceback (most recent call last):"),
        "{verbose}"
    );

    // --limit keeps the newest; --since filters by time; kinds combine.
    let last3 = kron(&dir, &["job", "history", "heartbeat", "-n", "3", "--json"]).json();
    assert_eq!(last3["events"].as_array().unwrap().len(), 3);
    assert_eq!(last3["events"][2]["kind"], "RUN_SUCCEEDED");
    let none = kron(
        &dir,
        &["job", "history", "heartbeat", "--since", "1h", "--json"],
    )
    .json();
    assert!(
        none["events"].as_array().unwrap().is_empty(),
        "fixture events are 2 days old"
    );
    let some = kron(
        &dir,
        &[
            "job",
            "history",
            "heartbeat",
            "--since",
            "3d",
            "--kind",
            "started,succeeded",
            "-n",
            "1000",
            "--json",
        ],
    )
    .json();
    assert_eq!(some["events"].as_array().unwrap().len(), 48);
}

/// While a `delay` timer's run is in progress its next occurrence is not scheduled yet (it is
/// computed when the run is over); status still lists five fire times, assuming the run ends now.
#[test]
fn status_of_a_delay_timer_mid_run_lists_fire_times_from_now() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("slow", 10 * MINUTE as u64));
    f.register(cron("nightly", "0 3 * * *", "Europe/Berlin"));
    // The first run starts at t0 + 10m and would take 30 minutes; the process ends mid-run.
    f.run_until(t0 + 15 * MINUTE, 1000, &|_| Act::Ok(30 * MINUTE));
    let dir = f.stop();

    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = wall();
    let status = kron(&dir, &["job", "status", "slow", "--json"]).json();
    let after = wall();
    assert_eq!(status["state"], "running", "{status}");
    assert!(status["next_run_at"].is_null(), "{status}");
    let fire: Vec<i64> = status["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(epoch_ms)
        .collect();
    assert_eq!(fire.len(), 5, "{status}");
    assert!(
        (before + 10 * MINUTE..=after + 10 * MINUTE).contains(&fire[0]),
        "every 10m after a run ending now: {status}"
    );
    for pair in fire.windows(2) {
        assert_eq!(pair[1] - pair[0], 10 * MINUTE, "{status}");
    }
    let text = kron(&dir, &["job", "status", "slow"]).ok().to_string();
    assert!(
        text.contains("Next 5 fire times (if the run in progress ends now):"),
        "{text}"
    );
}

#[test]
fn status_moves_a_stored_next_run_past_an_occurrence_already_due() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    let mut grid = every("grid", 10 * MINUTE as u64);
    grid.overlap = kron_core::timer::Overlap::Skip;
    f.register(grid);
    // The run of t0 + 10m takes 30 minutes; the process ends mid-run.
    f.run_until(t0 + 15 * MINUTE, 1000, &|_| Act::Ok(30 * MINUTE));
    let dir = f.stop();
    // Making the occurrence due wrote its run row, not the timer's row.
    let stored = Reader::open(&dir).unwrap().timer("grid").unwrap().unwrap();
    assert_eq!(stored.next_scheduled_at, Some(t0 + 10 * MINUTE));
    let status = kron(&dir, &["job", "status", "grid", "--json"]).json();
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(
        epoch_ms(&status["next_run_at"]),
        t0 + 20 * MINUTE,
        "{status}"
    );
    let list = kron(&dir, &["job", "list", "--json"]).json();
    assert_eq!(
        epoch_ms(&list["timers"][0]["next_run_at"]),
        t0 + 20 * MINUTE,
        "{list}"
    );
}

#[test]
fn reads_change_nothing_and_never_create() {
    let mut f = sample();
    let dir = f.stop();
    let before = fingerprint(&dir);
    for args in [
        vec!["job", "list"],
        vec!["job", "list", "--json"],
        vec!["job", "status", "flaky"],
        vec!["job", "history", "flaky", "-v"],
        vec!["job", "explain", "flaky"],
        vec!["doctor"],
        vec!["runtime", "status"],
    ] {
        kron(&dir, &args).ok();
    }
    assert_eq!(
        before,
        fingerprint(&dir),
        "a read command changed the directory"
    );

    let missing = f.dir.path().join("nope");
    for args in [
        vec!["job", "list"],
        vec!["job", "status", "x"],
        vec!["job", "history", "x"],
        vec!["job", "pause", "x"],
        vec!["log", "compact", "--keep-runs", "1"],
        vec!["runtime", "status"],
    ] {
        let out = kron(&missing, &args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert!(out.stderr.contains("no Kron data directory at"), "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    }
    let out = kron(&missing, &["doctor"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.starts_with("FAIL"), "{out:?}");
    assert!(!missing.exists(), "a command created the missing directory");
}

#[test]
fn unknown_timers_and_usage_errors() {
    let mut f = sample();
    let dir = f.stop();
    for args in [
        vec!["job", "status", "nope"],
        vec!["job", "history", "nope"],
        vec!["job", "explain", "nope"],
        vec!["job", "pause", "nope"],
        vec!["job", "trigger", "nope"],
    ] {
        let out = kron(&dir, &args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim(),
            format!("kron: no timer named \"nope\" in {}", dir.display())
        );
        assert!(out.stdout.is_empty());
    }
    for args in [
        vec!["job"],
        vec!["job", "frobnicate"],
        vec!["job", "history", "flaky", "--kind", "exploded"],
        vec!["job", "history", "flaky", "--since", "last tuesday"],
        vec!["job", "status", "bad name"],
        vec!["cron", "0 8 * *"],
        vec!["cron", "0 8 * * *", "--timezone", "Mars/Olympus"],
        vec!["log", "compact"],
        vec!["completions", "tcsh"],
    ] {
        let out = kron(&dir, &args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let help = kron(&dir, &["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Usage: kron"));
    let version = kron(&dir, &["--version"]);
    assert_eq!(
        version.stdout.trim(),
        format!("kron {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn admin_commands_apply_to_storage_when_no_runtime_runs() {
    let mut f = sample();
    let dir = f.stop();
    let state = |id: &str| {
        Reader::open(&dir)
            .unwrap()
            .timer(id)
            .unwrap()
            .map(|t| t.lifecycle)
    };

    let out = kron(&dir, &["job", "pause", "heartbeat"]);
    assert!(out.ok().contains("No runtime is running"), "{out:?}");
    assert_eq!(state("heartbeat"), Some(Lifecycle::Paused));
    let again = kron(&dir, &["job", "pause", "heartbeat", "--json"]).json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["via"], "storage");
    let listed = kron(&dir, &["job", "list", "--json"]).json();
    let hb = listed["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "heartbeat")
        .unwrap()
        .clone();
    assert_eq!(hb["state"], "paused");
    assert_eq!(hb["next_run_at"], serde_json::Value::Null);

    kron(&dir, &["job", "resume", "heartbeat"]).ok();
    assert_eq!(state("heartbeat"), Some(Lifecycle::Active));

    let trig = kron(&dir, &["job", "trigger", "flaky", "--json"]).json();
    let run_id = trig["run_id"].as_str().unwrap().to_string();
    assert!(run_id.starts_with("run_"));
    let runs = Reader::open(&dir).unwrap().runs().unwrap();
    assert!(runs.iter().any(|r| r.run_id.as_str() == run_id && r.manual));
    let text = kron(&dir, &["job", "trigger", "flaky"]).ok().to_string();
    assert!(text.contains("when the application next starts"), "{text}");

    kron(&dir, &["job", "remove", "nightly"]).ok();
    assert_eq!(state("nightly"), None);
    let gone = kron(&dir, &["job", "status", "nightly"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("was removed"), "{gone:?}");
    // Its history stays readable.
    let history = kron(&dir, &["job", "history", "nightly", "--json"]).json();
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["TIMER_CREATED", "TIMER_REMOVED"]);
    // The directory is left stopped and unlocked.
    assert!(!kron_store::is_locked(&dir));
}

#[test]
fn a_locked_directory_without_a_control_socket_is_read_but_never_written() {
    let mut f = sample();
    let dir = f.stop();
    // Another process's runtime, as far as the CLI can tell: the lock is held.
    let store = Store::open(&dir, Durability::Normal).unwrap();
    let list = kron(&dir, &["job", "list", "--json"]).json();
    assert_eq!(list["live"], true);
    assert_eq!(list["timers"].as_array().unwrap().len(), 4);
    kron(&dir, &["job", "history", "flaky"]).ok();

    let out = kron(&dir, &["job", "pause", "heartbeat"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("owns"), "{out:?}");
    assert!(out.stderr.contains("nothing was changed"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1);
    drop(store);
    let rec = Reader::open(&dir)
        .unwrap()
        .timer("heartbeat")
        .unwrap()
        .unwrap();
    assert_eq!(rec.lifecycle, Lifecycle::Active);

    let store = Store::open(&dir, Durability::Normal).unwrap();
    let compact = kron(&dir, &["log", "compact", "--keep-runs", "1"]);
    assert_eq!(compact.code, 1);
    assert!(compact.stderr.contains("needs it stopped"), "{compact:?}");
    let status = kron(&dir, &["runtime", "status", "--json"]).json();
    assert_eq!(status["running"], true);
    assert_eq!(status["control"], "unreachable");
    assert_eq!(status["pid"], u64::from(std::process::id()));
    let doctor = kron(&dir, &["doctor"]);
    assert!(doctor.stdout.contains("WARN  control socket"), "{doctor:?}");
    drop(store);
}

#[test]
fn cron_lists_fire_times_across_dst() {
    let out = kron_raw(
        &[
            "cron".into(),
            "30 2 * * *".into(),
            "--timezone".into(),
            "America/New_York".into(),
            "--from".into(),
            "2026-03-06".into(),
            "-n".into(),
            "4".into(),
            "--json".into(),
        ],
        &[("TZ", "UTC")],
    );
    let json = out.json();
    assert_eq!(json["description"], "At 02:30.");
    let local: Vec<&str> = json["fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["local"].as_str().unwrap())
        .collect();
    assert_eq!(
        local,
        [
            "2026-03-06T02:30:00-05:00",
            "2026-03-07T02:30:00-05:00",
            // 02:30 does not exist on the day clocks spring forward: the end of the gap.
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00",
        ]
    );
    assert_eq!(json["fire_times"][2]["at"], "2026-03-08T07:00:00.000Z");

    let text = kron_raw(
        &[
            "cron".into(),
            "0 8 * * *".into(),
            "-t".into(),
            "Europe/Berlin".into(),
            "--from".into(),
            "2026-10-24T00:00:00Z".into(),
            "-n".into(),
            "3".into(),
        ],
        &[("TZ", "UTC")],
    );
    let text = text.ok();
    assert!(text.contains("Sun 2026-10-25 08:00:00+01:00"), "{text}");
    assert!(text.contains("offset +02:00 -> +01:00 (DST)"), "{text}");
    assert!(text.contains("TIME IN Europe/Berlin"), "{text}");
    let seconds = kron_raw(
        &[
            "cron".into(),
            "*/15 * * * * *".into(),
            "-n".into(),
            "2".into(),
            "--json".into(),
        ],
        &[],
    );
    assert_eq!(seconds.json()["fire_times"].as_array().unwrap().len(), 2);
}

/// 100,000 events written straight through the store: 25,000 runs of four events each.
fn big_directory() -> Fixture {
    let t0 = base_time() - 30 * 86_400_000;
    let mut f = Fixture::new(t0);
    f.register(every("busy", 1_000));
    f.register(every("quiet", 3_600_000));
    f.stop();
    let mut store = Store::open(&f.path(), Durability::Normal).unwrap();
    let mut ts = t0;
    for batch in 0..10 {
        let mut changes = Changes::default();
        for i in 0..2_500 {
            let run = RunId::from(format!("run_{batch:02}{i:024}"));
            for (k, kind) in [
                EventKind::RunDue,
                EventKind::RunStarted,
                EventKind::RunFailed,
                EventKind::RunDead,
            ]
            .into_iter()
            .enumerate()
            {
                changes.events.push(Event {
                    ts: ts + k as i64,
                    timer_id: "busy".to_string(),
                    kind,
                    run_id: Some(run.clone()),
                    attempt: Some(1),
                    detail: EventDetail {
                        scheduled_at: Some(ts),
                        error: (kind == EventKind::RunFailed).then(|| format!("RuntimeError: attempt {i} failed\nTraceback (most recent call last):\n  File \"app.py\", line {i}")),
                        ..Default::default()
                    },
                });
            }
            ts += 1_000;
        }
        store.commit(&changes).unwrap();
    }
    store.close().unwrap();
    f
}

#[test]
fn log_compact_shrinks_a_directory_of_100k_events() {
    let f = big_directory();
    let dir = f.path();
    let events_before = Reader::open(&dir).unwrap().event_count().unwrap();
    assert!(events_before >= 100_000, "{events_before}");
    let size = |d: &std::path::Path| std::fs::metadata(d.join("kron.db")).unwrap().len();
    let before = size(&dir);

    let out = kron(&dir, &["log", "compact", "--keep-runs", "100", "--json"]);
    let json = out.json();
    assert_eq!(json["events_before"], events_before);
    let deleted = json["events_deleted"].as_u64().unwrap();
    assert!(deleted >= 99_000, "{json}");
    assert_eq!(
        json["events_after"].as_u64().unwrap(),
        events_before - deleted
    );
    assert_eq!(json["bytes_before"].as_u64().unwrap(), before);
    let after = size(&dir);
    assert_eq!(json["bytes_after"].as_u64().unwrap(), after);
    assert!(after * 5 < before, "kron.db {before} -> {after} bytes");
    // The newest runs of the busy timer and the quiet timer's history are kept.
    let busy = Reader::open(&dir).unwrap().history("busy", 1_000).unwrap();
    assert_eq!(busy.len(), 400);
    kron(&dir, &["job", "history", "quiet"]).ok();
    assert!(!kron_store::is_locked(&dir));

    // Text output, and --older-than.
    let text = kron(&dir, &["log", "compact", "--older-than", "1d"])
        .ok()
        .to_string();
    // Everything is older than a day (the fixture is a month old).
    assert!(
        text.starts_with("Deleted 401 of 401 events (0 kept)."),
        "{text}"
    );
    assert!(text.contains("kron.db: "), "{text}");
}

#[test]
fn doctor_passes_a_healthy_directory_and_fails_a_corrupted_one() {
    let mut f = sample();
    let dir = f.stop();
    let out = kron(&dir, &["doctor"]);
    assert_eq!(out.code, 0, "{out:?}");
    for check in [
        "data dir",
        "lock",
        "schema",
        "integrity",
        "wal",
        "orphaned",
        "dead runs",
        "stuck",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains(check) && (l.starts_with("OK ") || l.starts_with("WARN"))),
            "{check}: {}",
            out.stdout
        );
    }
    let json = kron(&dir, &["doctor", "--json"]).json();
    assert_eq!(json["ok"], true);
    let doomed = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "dead runs")
        .unwrap()
        .clone();
    // The fixture's dead runs are two days old.
    assert_eq!(doomed["status"], "ok");

    // Damage the middle of the database (the header page stays intact).
    let big = big_directory();
    let big_dir = big.path();
    let db = big_dir.join("kron.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..len / 3 + 64 * 1024] {
        *b = 0x5A;
    }
    std::fs::write(&db, &bytes).unwrap();
    let out = kron(&big_dir, &["doctor"]);
    assert_eq!(out.code, 1, "{out:?}");
    let fail = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        fail.contains("integrity") || fail.contains("database"),
        "{fail}"
    );
    assert!(
        out.stdout.trim_end().ends_with("warnings.") || out.stdout.contains("failure"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(kron(&big_dir, &["doctor", "--json"]).json()["ok"], false);

    // Not a database at all.
    std::fs::write(&db, b"this is not sqlite, just text that is long enough to have a header.............................................").unwrap();
    let out = kron(&big_dir, &["doctor"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("FAIL  database")),
        "{}",
        out.stdout
    );
    let list = kron(&big_dir, &["job", "list"]);
    assert_eq!(list.code, 1);
    assert!(
        list.stderr.contains("not a usable Kron database"),
        "{list:?}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let f = big_directory();
    let mut child = Command::new(bin())
        .args([
            "--data-dir",
            &f.path().display().to_string(),
            "job",
            "history",
            "busy",
            "-n",
            "100000",
        ])
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn completions_for_three_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let out = kron_raw(&["completions".into(), shell.into()], &[]);
        let script = out.ok();
        assert!(script.contains("kron"), "{shell}");
        assert!(script.contains("explain"), "{shell}");
    }
}

#[test]
fn colour_only_when_asked_and_never_with_no_color() {
    let mut f = sample();
    let dir = f.stop();
    let plain = kron(&dir, &["job", "list"]);
    assert!(!plain.stdout.contains('\x1b'), "not a terminal: no colour");
    let forced = kron(&dir, &["--color", "always", "job", "list"]);
    assert!(forced.stdout.contains("\x1b["), "{forced:?}");
    let never = kron_raw(
        &[
            "--data-dir".into(),
            dir.display().to_string(),
            "job".into(),
            "list".into(),
        ],
        &[("NO_COLOR", "1")],
    );
    assert!(!never.stdout.contains('\x1b'));
}

#[test]
fn tables_fit_the_width_given() {
    let mut f = sample();
    let dir = f.stop();
    let out = kron_raw(
        &[
            "--data-dir".into(),
            dir.display().to_string(),
            "job".into(),
            "list".into(),
        ],
        &[("COLUMNS", "100"), ("TZ", "UTC")],
    );
    for line in out.ok().lines() {
        assert!(line.chars().count() <= 100, "{line:?}");
    }
    assert!(out.stdout.contains('…'), "{}", out.stdout);
}

#[test]
fn data_dir_from_kron_home() {
    let mut f = sample();
    let dir = f.stop();
    let out = kron_raw(
        &["job".into(), "list".into(), "--json".into()],
        &[("KRON_HOME", dir.to_str().unwrap())],
    );
    assert_eq!(out.json()["timers"].as_array().unwrap().len(), 4);
}
