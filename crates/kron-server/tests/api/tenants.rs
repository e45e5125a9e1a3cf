//! Tenants: a tenant's token sees, writes and claims only its tenant's timers.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{every, server, Payload, ADMIN};

#[tokio::test]
async fn tenants_see_write_and_claim_only_their_own() {
    let s = server();
    let (status, mine) = s
        .post("/v1/timers", "op-a-t", every("a-job", "job", "1m"))
        .await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["tenant_id"], "acme");
    let (status, _) = s
        .post("/v1/timers", "op-b-t", every("b-job", "job", "1m"))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.timer(every("shared", "job", "1m")).await;

    let ids = |list: Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(s.get("/v1/timers", "op-a-t").await.1), ["a-job"]);
    assert_eq!(ids(s.get("/v1/timers", "op-b-t").await.1), ["b-job"]);
    assert_eq!(
        ids(s.get("/v1/timers", ADMIN).await.1),
        ["a-job", "b-job", "shared"]
    );

    for (method, path) in [
        ("GET", "/v1/timers/b-job"),
        ("GET", "/v1/timers/b-job/history"),
        ("GET", "/v1/timers/shared"),
        ("POST", "/v1/timers/b-job/pause"),
        ("POST", "/v1/timers/b-job/trigger"),
        ("DELETE", "/v1/timers/b-job"),
    ] {
        let (status, answer) = s.send(method, path, Some("op-a-t"), Payload::None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .starts_with("no timer named"));
    }
    // Another tenant's name cannot be taken over, nor a timer written for another tenant.
    let (status, _) = s
        .post("/v1/timers", "op-a-t", every("b-job", "job", "5m"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut foreign = every("x", "job", "1m");
    foreign["tenant_id"] = json!("bolt");
    let (status, _) = s.post("/v1/timers", "op-a-t", foreign).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.get("/v1/timers/b-job", ADMIN).await.1["schedule"],
        "every 1m"
    );
    // An admin's update keeps the timer's tenant.
    let kept = s.timer(every("a-job", "job", "1m")).await;
    assert_eq!(kept["tenant_id"], "acme");

    s.advance(60_000).await;
    let poll = json!({"worker_id": "wa", "tasks": ["job"], "max_runs": 10});
    let (_, a_runs) = s.post("/v1/workers/poll", "worker-a-t", poll).await;
    let timers: Vec<&str> = a_runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timer_id"].as_str().unwrap())
        .collect();
    assert_eq!(timers, ["a-job"]);
    let run = a_runs["runs"][0].clone();
    // A worker of another tenant cannot report it, even with its token.
    let (status, _) = s
        .post(
            &format!("/v1/runs/{}/succeed", run["run_id"].as_str().unwrap()),
            "worker-b-t",
            json!({"worker_id": "wa", "fencing_token": run["fencing_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor keep its lease alive.
    let (_, beat) = s
        .post(
            "/v1/workers/heartbeat",
            "worker-b-t",
            json!({"worker_id": "wa"}),
        )
        .await;
    assert_eq!(beat["leases"], json!([]));
    let (_, beat) = s
        .post(
            "/v1/workers/heartbeat",
            "worker-a-t",
            json!({"worker_id": "wa"}),
        )
        .await;
    assert_eq!(beat["leases"][0]["run_id"], run["run_id"]);
    let (_, plain) = s
        .post(
            "/v1/workers/poll",
            "worker-t",
            json!({"worker_id": "w", "max_runs": 10}),
        )
        .await;
    let timers: Vec<&str> = plain["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timer_id"].as_str().unwrap())
        .collect();
    assert_eq!(timers, ["shared"]);
    let (_, b_runs) = s
        .post(
            "/v1/workers/poll",
            "worker-b-t",
            json!({"worker_id": "wb", "max_runs": 10}),
        )
        .await;
    let timers: Vec<&str> = b_runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timer_id"].as_str().unwrap())
        .collect();
    assert_eq!(timers, ["b-job"]);
    let refusal = s
        .audit()
        .into_iter()
        .rev()
        .find(|r| r["status"] == 404)
        .unwrap();
    assert_eq!(refusal["tenant"], "bolt");
}

#[tokio::test]
async fn a_batch_writes_only_the_tokens_tenant() {
    let s = server();
    let (status, _) = s
        .post("/v1/timers", "op-b-t", every("b-job", "job", "1m"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = s
        .post(
            "/v1/timers:batch",
            "op-a-t",
            json!({"timers": [every("a1", "job", "1m"), every("a2", "job", "1m")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for item in answer["timers"].as_array().unwrap() {
        assert_eq!(item["tenant_id"], "acme");
    }
    // Another tenant's name in a batch refuses the batch: nothing of it is written.
    let (status, answer) = s
        .post(
            "/v1/timers:batch",
            "op-a-t",
            json!({"timers": [every("a3", "job", "1m"), every("b-job", "job", "5m")]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("timers[1] (name \"b-job\")"));
    assert_eq!(s.get("/v1/timers/a3", ADMIN).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/v1/timers/b-job", ADMIN).await.1["schedule"],
        "every 1m"
    );
}
