// Tests may unwrap: a failure here is the test failing.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn read_request(line: &str) -> Result<ControlRequest, String> {
    let envelope: ControlEnvelope = serde_json::from_str(line).map_err(|e| e.to_string())?;
    ControlRequest::try_from(envelope.request).map_err(|e| e.to_string())
}

#[test]
fn requests_travel_as_the_documented_json() {
    let pause = ControlEnvelope::new("t0k3n", ControlRequest::timer(TimerOp::Pause, "beat"));
    assert_eq!(
        serde_json::to_value(&pause).unwrap(),
        json!({"token": "t0k3n", "op": "pause", "timer": "beat"})
    );
    let status = ControlEnvelope::new("t", ControlRequest::Status);
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"token": "t", "op": "status"})
    );
    let shutdown = ControlRequest::Shutdown {
        timeout_s: Some(2.5),
    };
    assert_eq!(
        serde_json::to_value(ControlEnvelope::new("t", shutdown)).unwrap(),
        json!({"token": "t", "op": "shutdown", "timeout_s": 2.5})
    );
}

#[test]
fn every_request_reads_back_as_written() {
    let requests = TimerOp::ALL
        .into_iter()
        .map(|op| ControlRequest::timer(op, "beat"))
        .chain([
            ControlRequest::Status,
            ControlRequest::Shutdown { timeout_s: None },
            ControlRequest::Shutdown {
                timeout_s: Some(0.0),
            },
        ]);
    for request in requests {
        let line = serde_json::to_string(&ControlEnvelope::new("t", request.clone())).unwrap();
        assert_eq!(read_request(&line), Ok(request.clone()), "{line}");
        let alone = serde_json::to_string(&request).unwrap();
        assert_eq!(
            serde_json::from_str::<ControlRequest>(&alone).unwrap(),
            request
        );
    }
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let cases = [
        (r#"{"token":"t","op":"pause"}"#, "pause needs a timer"),
        (r#"{"token":"t","op":"explode"}"#, r#"unknown op "explode""#),
        (
            r#"{"token":"t","op":"shutdown","timeout_s":-1}"#,
            "invalid timeout_s -1: must be between 0 and 86400 seconds",
        ),
        (
            r#"{"token":"t","op":"shutdown","timeout_s":86401}"#,
            "invalid timeout_s 86401: must be between 0 and 86400 seconds",
        ),
    ];
    for (line, error) in cases {
        assert_eq!(read_request(line), Err(error.to_string()), "{line}");
    }
    assert!(read_request(r#"{"op":"status"}"#).is_err(), "no token");
    // Fields this release does not know are ignored.
    assert_eq!(
        read_request(r#"{"token":"t","op":"status","trace":true}"#),
        Ok(ControlRequest::Status)
    );
}

#[test]
fn replies_travel_as_the_documented_json() {
    let status = RuntimeStatus {
        pid: 42,
        started_at: 1_700_000_000_000,
        version: "0.2.0".to_string(),
        active_runs: 1,
        timers: 3,
        data_dir: "/d".to_string(),
    };
    let cases = [
        (ControlReply::Done, json!({"ok": true})),
        (
            ControlReply::Triggered {
                run_id: RunId::from("run_1".to_string()),
            },
            json!({"ok": true, "run_id": "run_1"}),
        ),
        (
            ControlReply::Status(status),
            json!({"ok": true, "pid": 42, "started_at": 1_700_000_000_000_i64, "version": "0.2.0",
                   "active_runs": 1, "timers": 3, "data_dir": "/d"}),
        ),
        (
            ControlReply::refused(RefusalKind::UnknownTimer, "no timer named \"x\""),
            json!({"ok": false, "kind": "unknown_timer", "error": "no timer named \"x\""}),
        ),
    ];
    for (reply, wire) in cases {
        assert_eq!(serde_json::to_value(&reply).unwrap(), wire);
        assert_eq!(serde_json::from_value::<ControlReply>(wire).unwrap(), reply);
    }
    assert_eq!(
        serde_json::to_string(&ControlReply::Done).unwrap(),
        r#"{"ok":true}"#
    );
    let newer = json!({"ok": false, "kind": "overheated", "error": "too hot"});
    assert_eq!(
        serde_json::from_value::<ControlReply>(newer).unwrap(),
        ControlReply::refused(RefusalKind::Other, "too hot")
    );
}

#[test]
fn an_op_becomes_the_input_of_the_same_name() {
    for op in TimerOp::ALL {
        let input = op.input("beat", 7);
        assert_eq!(input.at(), 7);
        let encoded = serde_json::to_value(&input).unwrap();
        assert_eq!(encoded["type"], op.as_str());
        assert_eq!(encoded["timer"], "beat");
        assert_eq!(TimerOp::parse(op.as_str()), Some(op));
    }
}

#[test]
fn a_shutdown_timeout_is_the_one_asked_for_or_the_default() {
    assert_eq!(
        ControlRequest::shutdown_timeout(Some(1.5)),
        Duration::from_millis(1_500)
    );
    assert_eq!(
        ControlRequest::shutdown_timeout(None),
        Duration::from_secs(30)
    );
}
