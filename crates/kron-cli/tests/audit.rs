//! `kron audit verify | tail | query` on a log written by the server's audit module.

#![allow(clippy::unwrap_used)]

mod common;

use common::kron;
use kron_server::audit::{AuditEntry, AuditLog};

fn entry(i: i64, actor: &str, status: u16) -> AuditEntry {
    AuditEntry {
        actor: Some(actor.to_string()),
        role: Some("operator".to_string()),
        method: "POST".to_string(),
        path: format!("/v1/timers/t{i}/pause"),
        status,
        decision: if status < 400 { "allowed" } else { "refused" },
        reason: (status >= 400).then(|| "forbidden".to_string()),
        ..AuditEntry::at(1_795_000_000_000 + i * 60_000)
    }
}

#[test]
fn verify_tail_and_query() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    for i in 0..6 {
        let (actor, status) = if i % 2 == 0 {
            ("ops", 200)
        } else {
            ("intruder", 403)
        };
        log.append(&entry(i, actor, status)).unwrap();
    }
    let out = kron(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("OK: 6 records"), "{}", out.stdout);

    let tail = kron(dir.path(), &["audit", "tail", "-n", "2", "--json"]);
    let records: serde_json::Value = serde_json::from_str(&tail.stdout).unwrap();
    let seqs: Vec<u64> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6]);
    let text = kron(dir.path(), &["audit", "tail"]).stdout;
    assert_eq!(text.lines().count(), 6);
    assert!(
        text.contains("refused 403  intruder(operator)   POST /v1/timers/t1/pause  forbidden"),
        "{text}"
    );

    let query = kron(
        dir.path(),
        &[
            "audit",
            "query",
            "--decision",
            "refused",
            "--since",
            "2026-11-18T11:07:00Z",
            "--json",
        ],
    );
    let records: serde_json::Value = serde_json::from_str(&query.stdout).unwrap();
    let paths: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/timers/t1/pause",
            "/v1/timers/t3/pause",
            "/v1/timers/t5/pause"
        ]
    );
    let query = kron(
        dir.path(),
        &[
            "audit", "query", "--actor", "ops", "--status", "200", "-n", "1", "--json",
        ],
    );
    let records: serde_json::Value = serde_json::from_str(&query.stdout).unwrap();
    assert_eq!(records[0]["path"], "/v1/timers/t4/pause");

    // An edited record is named.
    let path = dir.path().join("kron.audit.jsonl");
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("intruder", "ops", 1);
    std::fs::write(&path, edited).unwrap();
    let out = kron(dir.path(), &["audit", "verify"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("audit record 2 is bad"),
        "{}",
        out.stderr
    );
    let out = kron(dir.path(), &["audit", "verify", "--json"]);
    assert_eq!(out.code, 1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (report["ok"].as_bool(), report["bad_record"].as_u64()),
        (Some(false), Some(2))
    );

    let missing = tempfile::tempdir().unwrap();
    let out = kron(missing.path(), &["audit", "tail"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no audit log at"), "{}", out.stderr);
}
