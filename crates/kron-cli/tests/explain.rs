//! `kron job explain`: histories made by the engine on a fake clock, explained in words.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kron_core::time::format_utc;
use kron_core::timer::{Catchup, Overlap};

fn explain(dir: &std::path::Path, name: &str, at: Option<i64>) -> serde_json::Value {
    let at_text = at.map(format_utc);
    let mut args = vec!["job", "explain", name, "--json"];
    if let Some(at) = &at_text {
        args.extend(["--at", at]);
    }
    let out = kron(dir, &args);
    assert_eq!(out.code, 0, "{out:?}");
    out.json()
}

fn summary(json: &serde_json::Value) -> String {
    json["summary"].as_str().unwrap().to_string()
}

#[test]
fn a_run_that_failed_then_succeeded() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("report", 10 * MINUTE as u64));
    f.run_until(t0 + 15 * MINUTE, 100, &|d| {
        if d.attempt == 1 {
            Act::Fail(
                40,
                "ConnectionError: upstream not ready\nTraceback ...".to_string(),
            )
        } else {
            Act::Ok(1_200)
        }
    });
    let dir = f.stop();
    // Default: the last due occurrence, t0 + 10m.
    let json = explain(&dir, "report", None);
    assert_eq!(json["outcome"], "succeeded", "{json}");
    assert_eq!(json["occurrence"], format_utc(t0 + 10 * MINUTE));
    assert_eq!(json["manual"], false);
    let text = summary(&json);
    assert!(
        text.contains("Attempt 1 failed after 40ms: ConnectionError: upstream not ready."),
        "{text}"
    );
    assert!(text.contains("succeeded on attempt 2 in 1.2s"), "{text}");
    let kinds: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "RUN_DUE",
            "RUN_STARTED",
            "RUN_FAILED",
            "RUN_RETRYING",
            "RUN_STARTED",
            "RUN_SUCCEEDED"
        ]
    );
    let run_id = json["run_id"].as_str().unwrap();
    assert!(json["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["run_id"] == run_id));

    // Any time in the following interval explains the same occurrence.
    let later = explain(&dir, "report", Some(t0 + 14 * MINUTE));
    assert_eq!(later["run_id"], run_id);

    // The text form says the same in words, with the events.
    let out = kron(&dir, &["job", "explain", "report"]);
    let text = out.ok();
    assert!(text.starts_with("report around "), "{text}");
    assert!(text.contains("outcome     succeeded"), "{text}");
    assert!(text.contains("RUN_RETRYING"), "{text}");
}

#[test]
fn skipped_for_overlap() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    let mut def = every("sync", MINUTE as u64);
    def.overlap = Overlap::Skip;
    f.register(def);
    // The first run takes 90 s: the occurrence at t0 + 2m finds it still running.
    f.run_until(t0 + 4 * MINUTE, 100, &|d| {
        if d.scheduled_at == t0 + MINUTE {
            Act::Ok(90_000)
        } else {
            Act::Ok(5)
        }
    });
    let dir = f.stop();
    let json = explain(&dir, "sync", Some(t0 + 2 * MINUTE + 10_000));
    assert_eq!(json["outcome"], "skipped_overlap", "{json}");
    assert_eq!(json["occurrence"], format_utc(t0 + 2 * MINUTE));
    assert!(summary(&json).contains("overlap=skip"), "{json}");
    assert_eq!(
        explain(&dir, "sync", Some(t0 + MINUTE))["outcome"],
        "succeeded"
    );
}

#[test]
fn paused_then_resumed() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("cleanup", MINUTE as u64));
    f.run_until(t0 + 90_000, 100, &|_| Act::Ok(2));
    f.pause("cleanup");
    f.run_until(t0 + 5 * MINUTE, 100, &|_| Act::Ok(2));
    f.resume("cleanup");
    f.run_until(t0 + 8 * MINUTE, 100, &|_| Act::Ok(2));
    let dir = f.stop();
    let json = explain(&dir, "cleanup", Some(t0 + 3 * MINUTE));
    assert_eq!(json["outcome"], "paused", "{json}");
    let text = summary(&json);
    assert!(text.contains("was paused"), "{text}");
    assert!(text.contains("and resumed"), "{text}");
    let kinds: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["TIMER_PAUSED", "TIMER_RESUMED"]);
    // After the resume it runs again.
    assert_eq!(
        explain(&dir, "cleanup", Some(t0 + 7 * MINUTE))["outcome"],
        "succeeded"
    );
}

#[test]
fn missed_while_down_with_catchup_skip_and_once() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    let mut skip = every("skipper", MINUTE as u64);
    skip.catchup = Catchup::Skip;
    f.register(skip);
    f.register(every("coalescer", MINUTE as u64));
    f.run_until(t0 + 2 * MINUTE + 500, 100, &|_| Act::Ok(1));
    // Down from about t0 + 2m until t0 + 10m.
    f.restart(t0 + 10 * MINUTE + 30_000, &["skipper", "coalescer"]);
    f.run_until(t0 + 12 * MINUTE, 100, &|_| Act::Ok(1));
    let dir = f.stop();

    let json = explain(&dir, "skipper", Some(t0 + 5 * MINUTE));
    assert_eq!(json["outcome"], "missed", "{json}");
    let text = summary(&json);
    assert!(text.contains("fell due while no runtime was up"), "{text}");
    assert!(text.contains("catchup=skip"), "{text}");

    let json = explain(&dir, "coalescer", Some(t0 + 5 * MINUTE));
    assert_eq!(json["outcome"], "succeeded", "{json}");
    let text = summary(&json);
    assert!(
        text.contains("No runtime was up when it fell due"),
        "{text}"
    );
    assert!(text.contains("catchup=once"), "{text}");
}

#[test]
fn orphaned_at_start() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("legacy", MINUTE as u64));
    f.register(every("alive", MINUTE as u64));
    f.run_until(t0 + 2 * MINUTE + 500, 100, &|_| Act::Ok(1));
    f.restart(t0 + 3 * MINUTE, &["alive"]);
    f.run_until(t0 + 8 * MINUTE, 100, &|_| Act::Ok(1));
    let dir = f.stop();
    let json = explain(&dir, "legacy", Some(t0 + 6 * MINUTE));
    assert_eq!(json["outcome"], "orphaned", "{json}");
    assert!(summary(&json).contains("registered no function"), "{json}");
    let doctor = kron(&dir, &["doctor"]);
    assert!(doctor.stdout.contains("WARN  orphaned"), "{doctor:?}");
    assert!(doctor.stdout.contains("legacy"), "{doctor:?}");
}

#[test]
fn before_creation_in_the_future_and_never_due() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("hourly", 3_600_000));
    f.register(cron("yearly", "0 0 1 1 *", "UTC"));
    f.run_until(t0 + 2 * 3_600_000, 1_000, &|_| Act::Ok(1));
    let dir = f.stop();
    assert_eq!(
        explain(&dir, "hourly", Some(t0 - 3_600_000))["outcome"],
        "not_created"
    );
    let future = kron(
        &dir,
        &[
            "job",
            "explain",
            "hourly",
            "--at",
            "2999-01-01T00:00:00Z",
            "--json",
        ],
    )
    .json();
    assert_eq!(future["outcome"], "future");
    let never = explain(&dir, "yearly", None);
    assert_eq!(never["outcome"], "never_due", "{never}");
    assert!(summary(&never).contains("has never been due"), "{never}");
}

#[test]
fn pending_while_no_runtime_runs() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(every("tick", MINUTE as u64));
    f.run_until(t0 + 3 * MINUTE, 100, &|_| Act::Ok(1));
    let dir = f.stop();
    // A day after the directory was last used: nothing ran, nothing explains it but downtime.
    let json = explain(&dir, "tick", Some(t0 + 86_400_000));
    assert_eq!(json["outcome"], "pending", "{json}");
    assert!(
        summary(&json).contains("no runtime has run since"),
        "{json}"
    );
}

#[test]
fn manual_trigger_and_dead_run() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    let mut def = every("fragile", 30 * MINUTE as u64);
    def.max_attempts = 2;
    f.register(def);
    f.run_until(t0 + 5 * MINUTE, 100, &|_| Act::Ok(1));
    let run = f.trigger("fragile");
    f.run_until(t0 + 45 * MINUTE, 100, &|_| {
        Act::Fail(3, "KeyError: 'id'".to_string())
    });
    let dir = f.stop();

    let manual = explain(&dir, "fragile", Some(t0 + 5 * MINUTE));
    assert_eq!(manual["run_id"], run, "{manual}");
    assert_eq!(manual["manual"], true);
    assert_eq!(manual["outcome"], "dead");
    assert!(summary(&manual).contains("triggered by hand"), "{manual}");

    let scheduled = explain(&dir, "fragile", None);
    assert_eq!(
        scheduled["occurrence"],
        format_utc(t0 + 30 * MINUTE),
        "{scheduled}"
    );
    assert_eq!(scheduled["outcome"], "dead");
    let text = summary(&scheduled);
    assert!(
        text.contains("Attempt 1 failed after 3ms: KeyError: 'id'."),
        "{text}"
    );
    assert!(text.contains("gave up after 2 attempts"), "{text}");
}

#[test]
fn cron_timer_occurrence_is_found_from_the_schedule() {
    let t0 = base_time();
    let mut f = Fixture::new(t0);
    f.register(cron("quarter", "*/15 * * * *", "UTC"));
    f.run_until(t0 + 40 * MINUTE, 1_000, &|_| Act::Ok(1));
    f.pause("quarter");
    f.run_until(t0 + 70 * MINUTE, 1_000, &|_| Act::Ok(1));
    let dir = f.stop();
    let first = (t0 / (15 * MINUTE) + 1) * 15 * MINUTE;
    let ran = explain(&dir, "quarter", Some(first + 5 * MINUTE));
    assert_eq!(ran["outcome"], "succeeded", "{ran}");
    assert_eq!(ran["occurrence"], format_utc(first));
    let paused = explain(&dir, "quarter", Some(t0 + 65 * MINUTE));
    assert_eq!(paused["outcome"], "paused", "{paused}");
    assert!(summary(&paused).contains("still paused"), "{paused}");
}
