//! The worker protocol: register, poll (single, batch, long-poll), heartbeat, succeed, fail,
//! fencing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{every, server, ADMIN};

#[tokio::test]
async fn a_run_is_polled_and_succeeds_once() {
    let s = server();
    s.timer(every("digest", "send_digest", "1m")).await;
    let (status, worker) = s
        .post(
            "/v1/workers/register",
            "worker-t",
            json!({"worker_id": "w1", "tasks": ["send_digest"], "lease_seconds": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{worker}");
    assert_eq!(worker["lease_seconds"], 10);
    // Nothing due yet.
    let (status, none) = s
        .post("/v1/workers/poll", "worker-t", json!({"worker_id": "w1"}))
        .await;
    assert_eq!((status, none), (StatusCode::OK, Value::Null));
    s.advance(60_000).await;
    let (_, run) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w1", "tasks": ["send_digest"]}),
        )
        .await;
    assert_eq!(run["timer_id"], "digest");
    assert_eq!(run["task"], "send_digest");
    assert_eq!(run["payload"], json!({"n": 1}));
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["scheduled_at"], "2026-11-18T11:07:40.000Z");
    assert_eq!(run["lease_expires_at"], "2026-11-18T11:07:50.000Z");
    let token = run["fencing_token"].as_u64().unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let (_, status_dict) = s.get("/v1/timers/digest", "reader-t").await;
    assert_eq!(status_dict["state"], "running");

    let path = format!("/v1/runs/{run_id}/succeed");
    let (status, wrong) = s
        .post(
            &path,
            "worker-t",
            json!({"worker_id": "w1", "fencing_token": token + 7}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        wrong["error"]
            .as_str()
            .unwrap()
            .contains("stale fencing token"),
        "{wrong}"
    );
    let (status, other) = s
        .post(
            &path,
            "worker-t",
            json!({"worker_id": "w2", "fencing_token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        other["error"].as_str().unwrap().contains("run not active"),
        "{other}"
    );
    let (status, ok) = s
        .post(
            &path,
            "worker-t",
            json!({"worker_id": "w1", "fencing_token": token, "duration_ms": 12}),
        )
        .await;
    assert_eq!(
        (status, ok),
        (StatusCode::OK, json!({"run_id": run_id, "ok": true}))
    );
    let (status, again) = s
        .post(
            &path,
            "worker-t",
            json!({"worker_id": "w1", "fencing_token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        again["error"].as_str().unwrap().contains("run not active"),
        "{again}"
    );

    let (_, status_dict) = s.get("/v1/timers/digest", "reader-t").await;
    assert_eq!(status_dict["last_status"], "OK");
    assert_eq!(status_dict["last_duration_ms"], 12);
    let (_, history) = s.get("/v1/timers/digest/history", "reader-t").await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "TIMER_CREATED",
            "RUN_DUE",
            "RUN_STARTED",
            "RUN_CLAIMED",
            "RUN_SUCCEEDED"
        ]
    );
    assert_eq!(history[3]["worker_id"], "w1");
    assert_eq!(history[3]["fencing_token"], token);
    assert_eq!(history[2]["worker_id"], Value::Null);
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_an_expired_lease_fences_the_late_worker() {
    let s = server();
    s.timer(json!({"name": "t", "task": "job", "after": "1s", "max_attempts": 3}))
        .await;
    s.post(
        "/v1/workers/register",
        "worker-t",
        json!({"worker_id": "w1", "tasks": ["job"], "lease_seconds": 5}),
    )
    .await;
    s.advance(1_000).await;
    let (_, first) = s
        .post("/v1/workers/poll", "worker-t", json!({"worker_id": "w1"}))
        .await;
    let run_id = first["run_id"].as_str().unwrap().to_string();
    let (status, _) = s
        .post(&format!("/v1/runs/{run_id}/fail"), "worker-t",
              json!({"worker_id": "w1", "fencing_token": first["fencing_token"], "error": "ValueError: boom"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Retried after its backoff; this time the worker dies and its lease expires.
    s.advance(5_000).await;
    let (_, second) = s
        .post("/v1/workers/poll", "worker-t", json!({"worker_id": "w1"}))
        .await;
    assert_eq!(
        (second["run_id"].as_str(), second["attempt"].as_u64()),
        (Some(run_id.as_str()), Some(2))
    );
    s.advance(6_000).await;
    let (_, third) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w2", "tasks": ["job"]}),
        )
        .await;
    assert_eq!(
        (third["run_id"].as_str(), third["attempt"].as_u64()),
        (Some(run_id.as_str()), Some(3))
    );
    assert!(third["fencing_token"].as_u64() > second["fencing_token"].as_u64());
    let (status, late) = s
        .post(
            &format!("/v1/runs/{run_id}/succeed"),
            "worker-t",
            json!({"worker_id": "w1", "fencing_token": second["fencing_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        late["error"]
            .as_str()
            .unwrap()
            .contains("stale fencing token"),
        "{late}"
    );
    let (status, _) = s
        .post(
            &format!("/v1/runs/{run_id}/succeed"),
            "worker-t",
            json!({"worker_id": "w2", "fencing_token": third["fencing_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, history) = s.get("/v1/timers/t/history", ADMIN).await;
    let events = history.as_array().unwrap();
    let expired = events
        .iter()
        .position(|e| e["kind"] == "RUN_LEASE_EXPIRED")
        .unwrap();
    assert_eq!(events[expired]["worker_id"], "w1");
    assert_eq!(events[expired]["fencing_token"], second["fencing_token"]);
    assert_eq!(events[expired + 1]["kind"], "RUN_INTERRUPTED");
    assert!(events[expired + 1]["error"]
        .as_str()
        .unwrap()
        .contains("lease expired"));
    let claimers: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "RUN_CLAIMED")
        .map(|e| e["worker_id"].as_str().unwrap())
        .collect();
    assert_eq!(claimers, ["w1", "w1", "w2"]);
    let (_, status_dict) = s.get("/v1/timers/t", ADMIN).await;
    assert_eq!(status_dict["state"], "completed");
    assert_eq!(status_dict["failure_count"], 2);
}

#[tokio::test]
async fn heartbeats_extend_leases() {
    let s = server();
    s.timer(every("t", "job", "1m")).await;
    s.post(
        "/v1/workers/register",
        "worker-t",
        json!({"worker_id": "w1", "tasks": ["job"], "lease_seconds": 5}),
    )
    .await;
    s.advance(60_000).await;
    let (_, run) = s
        .post("/v1/workers/poll", "worker-t", json!({"worker_id": "w1"}))
        .await;
    s.advance(4_000).await;
    let (status, beat) = s
        .post(
            "/v1/workers/heartbeat",
            "worker-t",
            json!({"worker_id": "w1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(beat["leases"][0]["run_id"], run["run_id"]);
    assert_eq!(
        beat["leases"][0]["lease_expires_at"],
        "2026-11-18T11:07:49.000Z"
    );
    assert_eq!(beat["lost"], json!([]));
    s.advance(4_000).await; // past the first lease, within the extended one
    let (status, _) = s
        .post(
            &format!("/v1/runs/{}/succeed", run["run_id"].as_str().unwrap()),
            "worker-t",
            json!({"worker_id": "w1", "fencing_token": run["fencing_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, workers) = s.get("/v1/workers", "reader-t").await;
    assert_eq!(workers[0]["worker_id"], "w1");
    assert_eq!(workers[0]["runs_held"], 0);
}

#[tokio::test]
async fn batch_polls_and_batch_completions() {
    let s = server();
    for i in 0..5 {
        s.timer(every(&format!("t{i}"), "job", "1m")).await;
    }
    s.timer(every("other", "elsewhere", "1m")).await;
    s.advance(60_000).await;
    let (status, polled) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w1", "tasks": ["job"], "max_runs": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let runs = polled["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    let tokens: BTreeSet<u64> = runs
        .iter()
        .map(|r| r["fencing_token"].as_u64().unwrap())
        .collect();
    assert_eq!(tokens.len(), 1, "one claim, one token");
    let (_, rest) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w2", "tasks": ["job"], "max_runs": 10}),
        )
        .await;
    assert_eq!(rest["runs"].as_array().unwrap().len(), 2);
    let (_, empty) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w3", "tasks": ["job"], "max_runs": 10}),
        )
        .await;
    assert_eq!(empty, json!({"runs": []}));
    let mut results: Vec<Value> = runs
        .iter()
        .map(|r| json!({"run_id": r["run_id"], "fencing_token": r["fencing_token"], "status": "succeeded"}))
        .collect();
    results[1]["status"] = json!("failed");
    results[1]["error"] = json!("boom");
    results.push(json!({"run_id": "run_nope", "fencing_token": 1, "status": "succeeded"}));
    let (status, answer) = s
        .post(
            "/v1/runs/complete",
            "worker-t",
            json!({"worker_id": "w1", "results": results}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let oks: Vec<bool> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [true, true, true, false]);
    assert!(answer["results"][3]["error"]
        .as_str()
        .unwrap()
        .contains("run not active"));
    let (status, answer) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w1", "max_runs": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid max_runs 0"));
    let (status, answer) = s
        .post("/v1/workers/poll", "worker-t", json!({"tasks": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("missing field `worker_id`"),
        "{answer}"
    );
}

#[tokio::test]
async fn concurrent_polls_never_share_a_token() {
    let s = std::sync::Arc::new(server());
    for i in 0..40 {
        s.timer(every(&format!("t{i:02}"), "job", "1m")).await;
    }
    s.advance(60_000).await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let (_, answer) = s
                    .post(
                        "/v1/workers/poll",
                        "worker-t",
                        json!({"worker_id": format!("w{w}"), "max_runs": 2}),
                    )
                    .await;
                let runs = answer["runs"].as_array().unwrap().clone();
                if runs.is_empty() {
                    return got;
                }
                got.extend(runs);
            }
        }));
    }
    let mut runs = Vec::new();
    for task in tasks {
        runs.extend(task.await.unwrap());
    }
    assert_eq!(runs.len(), 40);
    let ids: BTreeSet<&str> = runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 40, "no run claimed twice");
    let claims: BTreeSet<u64> = runs
        .iter()
        .map(|r| r["fencing_token"].as_u64().unwrap())
        .collect();
    assert!(
        claims.len() >= 20,
        "every claim of 2 runs has its own token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_returns_as_soon_as_a_run_is_due() {
    let s = std::sync::Arc::new(server());
    s.timer(every("t", "job", "1m")).await;
    let poller = {
        let s = s.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = s
                .post(
                    "/v1/workers/poll",
                    "worker-t",
                    json!({"worker_id": "w1", "max_runs": 5, "wait_ms": 10_000}),
                )
                .await;
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!poller.is_finished());
    s.advance(60_000).await;
    let ((status, answer), waited) = tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["runs"].as_array().unwrap().len(), 1);
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // With nothing due, it waits for wait_ms and answers no runs.
    let started = Instant::now();
    let (_, answer) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w1", "max_runs": 5, "wait_ms": 200}),
        )
        .await;
    assert_eq!(answer, json!({"runs": []}));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(190) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}
