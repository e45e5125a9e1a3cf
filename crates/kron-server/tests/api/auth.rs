//! Tokens, roles, expiry, rotation and the audit records of refusals.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{every, server, Payload, ADMIN};

#[tokio::test]
async fn healthz_needs_no_token() {
    let s = server();
    let (status, body) = s.send("GET", "/healthz", None, Payload::None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn missing_unknown_expired_and_future_tokens_are_401() {
    let s = server();
    let cases = [
        (None, "no bearer token"),
        (Some("nope"), "unknown token"),
        (Some("old-t"), "token \"old\" has expired"),
        (Some("future-t"), "token \"future\" is not valid yet"),
    ];
    for (token, reason) in cases {
        let (status, body) = s.send("GET", "/v1/timers", token, Payload::None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body, json!({"error": "unauthorized"}), "{token:?}");
        let last = s.audit().pop().unwrap();
        assert_eq!(last["status"], 401);
        assert_eq!(last["decision"], "refused");
        assert_eq!(last["reason"], reason);
        assert_eq!(last["path"], "/v1/timers");
    }
    // A write without a token is refused before its body is read.
    let (status, _) = s
        .send(
            "POST",
            "/v1/timers",
            None,
            Payload::Json(every("t", "x", "1m")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s
        .send("GET", "/v1/timers", Some("Basic abc"), Payload::None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_are_403_outside_their_permissions() {
    let s = server();
    s.timer(every("t", "job", "1m")).await;
    let forbidden = [
        ("reader-t", "POST", "/v1/timers"),
        ("reader-t", "POST", "/v1/timers/t/pause"),
        ("reader-t", "DELETE", "/v1/timers/t"),
        ("reader-t", "POST", "/v1/workers/poll"),
        ("worker-t", "GET", "/v1/timers"),
        ("worker-t", "POST", "/v1/timers/t/trigger"),
        ("worker-t", "GET", "/metrics"),
        ("operator-t", "POST", "/v1/workers/poll"),
        ("operator-t", "POST", "/v1/runtime/shutdown"),
        ("operator-t", "POST", "/v1/cluster/join"),
        ("raft-t", "GET", "/v1/timers"),
        ("raft-t", "GET", "/v1/cluster/status"),
        ("raft-t", "GET", "/v1/openapi.json"),
    ];
    for (token, method, path) in forbidden {
        let body = Payload::Json(json!({"worker_id": "w", "node_id": "n"}));
        let (status, answer) = s.send(method, path, Some(token), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{token} {method} {path}: {answer}"
        );
        assert_eq!(answer, json!({"error": "forbidden"}));
        let last = s.audit().pop().unwrap();
        assert_eq!(
            (last["status"].as_u64(), last["decision"].as_str()),
            (Some(403), Some("refused"))
        );
        assert_eq!(last["role"], token.trim_end_matches("-t"));
    }
    let allowed = [
        ("reader-t", "GET", "/v1/timers"),
        ("reader-t", "GET", "/v1/timers/t/history"),
        ("reader-t", "GET", "/v1/cluster/status"),
        ("reader-t", "GET", "/metrics"),
        ("hashed-t", "GET", "/v1/timers/t"),
        ("worker-t", "POST", "/v1/workers/register"),
        ("operator-t", "POST", "/v1/timers/t/pause"),
        ("operator-t", "GET", "/v1/timers"),
        (ADMIN, "POST", "/v1/workers/poll"),
    ];
    for (token, method, path) in allowed {
        let body = Payload::Json(json!({"worker_id": "w"}));
        let (status, answer) = s.send(method, path, Some(token), body).await;
        assert_eq!(status, StatusCode::OK, "{token} {method} {path}: {answer}");
    }
}

#[tokio::test]
async fn the_token_file_is_reread_when_it_changes() {
    let s = server();
    let path = s.dir.path().join("kron.tokens.json");
    assert_eq!(s.get("/v1/timers", "reader-t").await.0, StatusCode::OK);
    std::fs::write(
        &path,
        r#"{"tokens": [{"name": "rotated", "token": "rotated-token-2", "role": "reader"}]}"#,
    )
    .unwrap();
    assert_eq!(
        s.get("/v1/timers", "reader-t").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/v1/timers", "rotated-token-2").await.0,
        StatusCode::OK
    );
    // A broken file grants nothing; the admin token still works.
    std::fs::write(&path, "{not json").unwrap();
    assert_eq!(
        s.get("/v1/timers", "rotated-token-2").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/v1/timers", ADMIN).await.0, StatusCode::OK);
}

#[tokio::test]
async fn expiry_follows_the_server_clock() {
    let s = server();
    std::fs::write(
        s.dir.path().join("kron.tokens.json"),
        r#"{"tokens": [{"name": "short", "token": "short-t", "role": "reader",
            "not_before": "2026-11-18T11:06:40Z", "expires_at": "2026-11-18T11:07:40Z"}]}"#,
    )
    .unwrap();
    assert_eq!(s.get("/v1/timers", "short-t").await.0, StatusCode::OK);
    s.backend.advance(60_000);
    assert_eq!(
        s.get("/v1/timers", "short-t").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_write_and_refusal_is_audited_and_the_chain_verifies() {
    let s = server();
    s.timer(every("t", "job", "1m")).await;
    s.post("/v1/timers/t/pause", "operator-t", json!({})).await;
    s.post(
        "/v1/timers",
        "operator-t",
        json!({"name": "bad", "task": "x", "cron": "nope"}),
    )
    .await;
    s.get("/v1/timers", "reader-t").await;
    let records = s.audit();
    let summary: Vec<(String, String, u64)> = records
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["decision"].as_str().unwrap().to_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("/v1/timers".to_string(), "allowed".to_string(), 200),
            ("/v1/timers/t/pause".to_string(), "allowed".to_string(), 200),
            ("/v1/timers".to_string(), "refused".to_string(), 400),
        ]
    );
    assert_eq!(records[0]["target"], "t");
    assert_eq!(records[1]["actor"], "operator");
    assert!(records[2]["reason"]
        .as_str()
        .unwrap()
        .contains("invalid cron"));
    let path = s.dir.path().join("kron.audit.jsonl");
    assert_eq!(kron_server::audit::verify(&path), Ok(3));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"operator\"", "\"reader\"", 1)).unwrap();
    match kron_server::audit::verify(&path) {
        Err(kron_server::audit::VerifyError::Bad(bad)) => assert_eq!(bad.line, 2),
        other => panic!("{other:?}"),
    }
}
