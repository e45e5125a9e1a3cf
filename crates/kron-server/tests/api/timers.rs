//! Timer routes: create/update, status, list, history, commands, and bad input.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::{every, server, server_with, Payload, ADMIN};

#[tokio::test]
async fn create_every_and_cron_then_read_them() {
    let s = server();
    let status = s.timer(every("digest", "send_digest", "30m")).await;
    assert_eq!(status["id"], "digest");
    assert_eq!(status["task"], "send_digest");
    assert_eq!(status["payload"], json!({"n": 1}));
    assert_eq!(status["state"], "scheduled");
    assert_eq!(status["schedule"], "every 30m");
    assert_eq!(status["next_run_at"], "2026-11-18T11:36:40.000Z");
    assert_eq!(status["created_at"], "2026-11-18T11:06:40.000Z");
    assert_eq!(status["max_attempts"], 3);
    assert_eq!(status["overlap"], "delay");
    assert_eq!(status["catchup"], "once");
    assert_eq!(status["last_run_at"], Value::Null);
    let cron = s
        .timer(
            json!({"name": "nightly", "task": "report", "cron": "0 3 * * *",
                      "timezone": "Europe/Berlin", "max_attempts": 5, "overlap": "skip",
                      "catchup": "skip", "jitter": "10s"}),
        )
        .await;
    // 03:00 in Berlin, plus up to 10 s of jitter.
    assert!(
        cron["next_run_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-19T02:00:"),
        "{cron}"
    );
    assert_eq!(
        (cron["max_attempts"].as_u64(), cron["jitter_ms"].as_u64()),
        (Some(5), Some(10_000))
    );
    assert_eq!(cron["payload"], Value::Null);
    let at = s
        .timer(json!({"name": "once", "task": "t", "at": "2026-12-01T08:00:00", "timezone": "America/New_York"}))
        .await;
    assert_eq!(at["next_run_at"], "2026-12-01T13:00:00.000Z");

    let (code, list) = s.get("/v1/timers", "reader-t").await;
    assert_eq!(code, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["digest", "nightly", "once"]);
    let (code, one) = s.get("/v1/timers/digest", "reader-t").await;
    assert_eq!((code, &one), (StatusCode::OK, &status));

    // Updating changes the definition; the answer is the new status.
    let updated = s.timer(every("digest", "send_digest", "1h")).await;
    assert_eq!(updated["schedule"], "every 1h");
    let (_, history) = s.get("/v1/timers/digest/history", "reader-t").await;
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["TIMER_CREATED", "TIMER_UPDATED"]);
    assert_eq!(history[0]["ts"], "2026-11-18T11:06:40.000Z");
    let (_, limited) = s.get("/v1/timers/digest/history?limit=1", "reader-t").await;
    assert_eq!(limited.as_array().unwrap().len(), 1);
    assert_eq!(limited[0]["kind"], "TIMER_UPDATED");
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let s = server();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "t", "task": "x", "every": "1m", "cron": "* * * * *"}),
            "exactly one of cron, every, after, at is required (given: cron, every)",
        ),
        (
            json!({"name": "t", "task": "x"}),
            "exactly one of cron, every, after, at is required (given: none)",
        ),
        (
            json!({"name": "t", "task": "x", "cron": "61 * * * *"}),
            "invalid cron \"61 * * * *\"",
        ),
        (
            json!({"name": "t", "task": "x", "every": "1m", "timezone": "Mars/Olympus"}),
            "invalid timezone \"Mars/Olympus\"",
        ),
        (
            json!({"name": "t", "task": "x", "cron": "0 8 * * *", "timezone": "Mars/Olympus"}),
            "invalid timezone \"Mars/Olympus\"",
        ),
        (
            json!({"name": "t", "task": "x", "every": "soon"}),
            "invalid every \"soon\"",
        ),
        (
            json!({"name": "t", "task": "x", "every": 0}),
            "invalid every 0",
        ),
        (
            json!({"name": "t", "task": "x", "at": "tomorrow"}),
            "invalid at \"tomorrow\"",
        ),
        (
            json!({"name": "t", "task": "x", "every": "1m", "max_attempts": 0}),
            "invalid max_attempts 0: must be between 1 and 1000000",
        ),
        (
            json!({"name": "t", "task": "x", "every": "1m", "overlap": "never"}),
            "invalid overlap \"never\"",
        ),
        (
            json!({"name": "t", "task": "x", "every": "1m", "catchup": 1}),
            "catchup must be a string, got number 1",
        ),
        (
            json!({"name": "t", "task": "x", "every": "1m", "jitter": "2m"}),
            "invalid jitter \"2m\"",
        ),
        (
            json!({"name": "bad name", "task": "x", "every": "1m"}),
            "invalid name \"bad name\"",
        ),
        (
            json!({"name": "t", "task": "", "every": "1m"}),
            "invalid task \"\"",
        ),
        (json!({"task": "x", "every": "1m"}), "name is required"),
        (json!({"name": "t", "every": "1m"}), "task is required"),
        (
            json!({"name": "t", "task": "x", "every": "1m", "cronn": "x"}),
            "unknown field \"cronn\"",
        ),
        (json!(["t"]), "body must be a JSON object"),
        (
            json!({"name": "t", "task": "x", "every": "1m", "payload": "x".repeat(70_000)}),
            "invalid payload",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = s.post("/v1/timers", "operator-t", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(message), "{body}: {error}");
    }
    for raw in [&b"{\"name\": "[..], b"nonsense", b"{\"name\": \"t\",}"] {
        let (status, answer) = s
            .send(
                "POST",
                "/v1/timers",
                Some(ADMIN),
                Payload::Raw(raw.to_vec()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed JSON: "),
            "{answer}"
        );
    }
    let (_, list) = s.get("/v1/timers", ADMIN).await;
    assert_eq!(list, json!([]));
    let (_, history) = s.get("/v1/timers/t/history", ADMIN).await;
    assert_eq!(history, json!([]));
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let s = server_with(|mut config| {
        config.body_limit = 4096;
        config
    });
    let body = json!({"name": "t", "task": "x", "every": "1m", "payload": "x".repeat(5000)});
    let (status, answer) = s.post("/v1/timers", ADMIN, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer["error"],
        "request body too large: at most 4096 bytes are accepted"
    );
    assert_eq!(s.get("/v1/timers", ADMIN).await.1, json!([]));
    assert_eq!(s.audit().pop().unwrap()["status"], 413);
}

#[tokio::test]
async fn pause_resume_trigger_remove() {
    let s = server();
    s.timer(every("t", "job", "1h")).await;
    let (status, paused) = s.post("/v1/timers/t/pause", "operator-t", json!({})).await;
    assert_eq!(
        (status, paused["state"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    let (_, resumed) = s.post("/v1/timers/t/resume", "operator-t", json!({})).await;
    assert_eq!(resumed["state"], "scheduled");
    let (status, triggered) = s
        .post("/v1/timers/t/trigger", "operator-t", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(triggered["run_id"].as_str().unwrap().starts_with("run_"));
    let (status, removed) = s
        .send("DELETE", "/v1/timers/t", Some("operator-t"), Payload::None)
        .await;
    assert_eq!(
        (status, removed),
        (StatusCode::OK, json!({"removed": true}))
    );
    for (method, path) in [
        ("GET", "/v1/timers/t"),
        ("DELETE", "/v1/timers/t"),
        ("POST", "/v1/timers/t/pause"),
        ("POST", "/v1/timers/t/resume"),
        ("POST", "/v1/timers/t/trigger"),
    ] {
        let (status, answer) = s.send(method, path, Some(ADMIN), Payload::None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(answer, json!({"error": "no timer named \"t\""}));
    }
    let (_, history) = s.get("/v1/timers/t/history", ADMIN).await;
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
            "TIMER_PAUSED",
            "TIMER_RESUMED",
            "RUN_DUE",
            "TIMER_REMOVED"
        ]
    );
    let (status, answer) = s.get("/v1/timers/t/history?limit=-1", ADMIN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .starts_with("invalid limit \"-1\""));
}

#[tokio::test]
async fn a_batch_creates_every_timer_in_one_request_in_order() {
    let s = server();
    s.timer(every("kept", "t", "1h")).await;
    let (code, answer) = s
        .post(
            "/v1/timers:batch",
            ADMIN,
            json!({"timers": [
                every("b1", "send", "30m"),
                {"name": "b2", "task": "report", "cron": "0 3 * * *"},
                {"name": "kept", "task": "t", "every": "2h"},
            ]}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let items = answer["timers"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["b1", "b2", "kept"]);
    assert_eq!(items[0]["schedule"], "every 30m");
    assert_eq!(items[0]["payload"], json!({"n": 1}));
    assert_eq!(items[1]["task"], "report");
    // An existing timer is updated, as POST /v1/timers does.
    assert_eq!(items[2]["schedule"], "every 2h");
    let (code, one) = s.get("/v1/timers/b2", "reader-t").await;
    assert_eq!((code, &one), (StatusCode::OK, &items[1]));
    // One audit record for the batch, naming its timers.
    let last = s.audit().pop().unwrap();
    assert_eq!(last["path"], "/v1/timers:batch");
    assert_eq!(last["target"], "3 timers: b1,b2,kept");
}

#[tokio::test]
async fn a_bad_item_refuses_the_whole_batch_naming_its_index_and_field() {
    let s = server();
    let cases = [
        (
            json!({"timers": [every("ok1", "t", "1m"), {"name": "bad", "task": "t", "every": "1m", "max_attempts": 0}]}),
            "timers[1] (name \"bad\")",
            "max_attempts",
        ),
        (
            json!({"timers": [{"task": "t", "every": "1m"}]}),
            "timers[0]",
            "name is required",
        ),
        (
            json!({"timers": [every("ok1", "t", "1m"), {"name": "x", "task": "t", "cron": "nope"}]}),
            "timers[1] (name \"x\")",
            "cron",
        ),
        (
            json!({"timers": [every("dup", "t", "1m"), every("dup", "t", "2m")]}),
            "timers[1] (name \"dup\")",
            "twice",
        ),
        (
            json!({"timers": []}),
            "invalid timers: 0 given",
            "1 to 1000",
        ),
        (
            json!({"timers": {"name": "x"}}),
            "timers must be an array",
            "",
        ),
        (json!({"timer": []}), "unknown field \"timer\"", ""),
    ];
    for (body, at, field) in cases {
        let (code, answer) = s.post("/v1/timers:batch", ADMIN, body.clone()).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains(at), "{message}");
        assert!(message.contains(field), "{message}");
    }
    // Nothing was written, not even the good items before the bad one.
    let (_, list) = s.get("/v1/timers", "reader-t").await;
    assert_eq!(list, json!([]));
    let (code, _) = s
        .post(
            "/v1/timers:batch",
            ADMIN,
            json!({"timers": (0..1001).map(|i| every(&format!("n{i}"), "t", "1m")).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_batch_needs_the_right_to_write_timers_and_keeps_to_the_tokens_tenant() {
    let s = server();
    let body = json!({"timers": [every("r1", "t", "1m")]});
    let (code, _) = s.post("/v1/timers:batch", "reader-t", body.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = s.post("/v1/timers:batch", "worker-t", body).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // A timer named like the route's verb is still an ordinary timer.
    s.timer(every("batch", "t", "1m")).await;
    let (code, one) = s.get("/v1/timers/batch", "reader-t").await;
    assert_eq!((code, one["id"].as_str()), (StatusCode::OK, Some("batch")));
}
