//! Cluster, runtime, metrics, the API's description, unknown routes and not_leader.

use std::future::Future;
use std::sync::Arc;

use axum::http::StatusCode;
use kron_core::engine::Engine;
use kron_core::event::StoredEvent;
use kron_core::input::{Input, Output, Rejected};
use kron_core::time::EpochMs;
use kron_server::backend::testing::LocalBackend;
use kron_server::backend::{Backend, ClusterStatus, LeaderInfo, Member, WriteError};
use kron_server::http::Api;
use kron_server::setup::ServeConfig;
use serde_json::json;
use tower::ServiceExt;

use crate::harness::{every, server, Payload, ADMIN, T0};

#[tokio::test]
async fn cluster_status_and_membership() {
    let s = server();
    let (status, cluster) = s.get("/v1/cluster/status", "reader-t").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cluster["raft"], "openraft");
    assert_eq!(cluster["role"], "leader");
    for key in [
        "node_id",
        "leader_id",
        "leader_http",
        "term",
        "members",
        "commit_index",
        "applied_index",
    ] {
        assert!(cluster.get(key).is_some(), "{key}");
    }
    let (status, answer) = s
        .post(
            "/v1/cluster/join",
            ADMIN,
            json!({"node_id": "n2", "http_addr": "127.0.0.1:1", "raft_addr": "127.0.0.1:2"}),
        )
        .await;
    // The local backend has no cluster to join.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let (status, answer) = s
        .post("/v1/cluster/join", ADMIN, json!({"node_id": "n2"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"]
        .as_str()
        .unwrap()
        .contains("missing field `http_addr`"));
}

#[tokio::test]
async fn shutdown_is_signalled() {
    let s = server();
    let shutdown = s.api.shutdown();
    assert!(!shutdown.is_triggered());
    let (status, answer) = s.post("/v1/runtime/shutdown", ADMIN, json!({})).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"shutting_down": true}))
    );
    tokio::time::timeout(std::time::Duration::from_secs(1), shutdown.wait())
        .await
        .unwrap();
}

#[tokio::test]
async fn serve_answers_on_a_socket_and_stops_on_shutdown() {
    let s = server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = tokio::spawn(kron_server::http::serve(s.api.clone(), listener));
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    s.api.shutdown().trigger();
    tokio::time::timeout(std::time::Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = server();
    s.timer(every("t", "job", "1m")).await;
    s.advance(60_000).await;
    s.post("/v1/workers/poll", "worker-t", json!({"worker_id": "w"}))
        .await;
    let (status, text) = s.get("/metrics", "reader-t").await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    for line in [
        "kron_timers{state=\"running\"} 1",
        "kron_timers{state=\"paused\"} 0",
        "kron_runs_total{outcome=\"succeeded\"} 0",
        "kron_lease_expiries_total 0",
        "kron_runs_claimed_total 1",
        "kron_due_to_claim_seconds_count 1",
        "kron_http_requests_total{method=\"POST\",route=\"/v1/timers\",status=\"200\"} 1",
        "kron_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/workers/poll\",status=\"200\"} 1",
        "kron_raft_term 1",
        "kron_raft_leader{node_id=\"local\",leader_id=\"local\"} 1",
        "kron_raft_commit_index",
        "kron_raft_applied_index",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[tokio::test]
async fn the_description_covers_every_route() {
    let s = server();
    let (status, doc) = s.get("/v1/openapi.json", "reader-t").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut described = 0;
    for route in kron_server::openapi::ROUTES {
        assert!(
            paths[route.path].get(route.method).is_some(),
            "{} {}",
            route.method,
            route.path
        );
        let path = route
            .path
            .replace("{name}", "t")
            .replace("{run_id}", "run_x");
        let (status, answer) = s
            .send(
                &route.method.to_uppercase(),
                &path,
                Some(ADMIN),
                Payload::Raw(b"{".to_vec()),
            )
            .await;
        let fallback = answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("no route"));
        assert!(
            !fallback,
            "{} {} is described but not routed ({status})",
            route.method, route.path
        );
        described += 1;
    }
    assert_eq!(described, 23);
    let (status, answer) = s.get("/v1/nothing", ADMIN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer, json!({"error": "no route GET /v1/nothing"}));
    let (status, _) = s.send("GET", "/v1/nothing", None, Payload::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn not_leader() -> WriteError {
    WriteError::NotLeader {
        leader: Some(LeaderInfo {
            id: "n1".to_string(),
            http: Some("127.0.0.1:7379".to_string()),
        }),
    }
}

/// A node that is not the leader: reads answer, writes are refused.
struct Follower(LocalBackend);

/// A leader whose membership changes succeed.
struct Leader(LocalBackend);

impl Backend for Leader {
    fn now(&self) -> EpochMs {
        self.0.now()
    }
    fn propose(&self, input: Input) -> impl Future<Output = Result<Output, WriteError>> + Send {
        self.0.propose(input)
    }
    fn propose_many(
        &self,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<Result<Output, Rejected>>, WriteError>> + Send {
        self.0.propose_many(inputs)
    }
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send {
        self.0.read(f)
    }
    fn history(
        &self,
        timer: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, String>> + Send {
        self.0.history(timer, limit)
    }
    fn events(
        &self,
        filter: kron_store::EventFilter,
    ) -> impl Future<Output = Result<kron_server::backend::EventPage, String>> + Send {
        self.0.events(filter)
    }
    fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.applied()
    }
    fn lease_expiries(&self) -> u64 {
        0
    }

    fn cluster_status(&self) -> ClusterStatus {
        self.0.cluster_status()
    }
    fn join(&self, _member: Member) -> impl Future<Output = Result<(), WriteError>> + Send {
        std::future::ready(Ok(()))
    }
    fn leave(&self, _node_id: &str) -> impl Future<Output = Result<(), WriteError>> + Send {
        std::future::ready(Ok(()))
    }
}

async fn call<B: Backend>(
    api: &Arc<Api<B>>,
    path: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = api.router().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn join_and_leave_on_a_leader() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::new(dir.path(), Some(ADMIN.to_string())).unwrap();
    let api = Api::open(Arc::new(Leader(LocalBackend::new(T0))), config).unwrap();
    let join =
        json!({"node_id": "n2", "http_addr": "127.0.0.1:7381", "raft_addr": "127.0.0.1:7382"});
    assert_eq!(
        call(&api, "/v1/cluster/join", join).await,
        (StatusCode::OK, json!({"joined": true}))
    );
    assert_eq!(
        call(&api, "/v1/cluster/leave", json!({"node_id": "n2"})).await,
        (StatusCode::OK, json!({"left": true}))
    );
    let records = kron_server::audit::read_records(&dir.path().join("kron.audit.jsonl")).unwrap();
    let targets: Vec<&str> = records
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["n2", "n2"]);
}

impl Backend for Follower {
    fn now(&self) -> EpochMs {
        self.0.now()
    }
    fn propose(&self, _input: Input) -> impl Future<Output = Result<Output, WriteError>> + Send {
        std::future::ready(Err(not_leader()))
    }
    fn propose_many(
        &self,
        _inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<Result<Output, Rejected>>, WriteError>> + Send {
        std::future::ready(Err(not_leader()))
    }
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send {
        self.0.read(f)
    }
    fn history(
        &self,
        timer: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, String>> + Send {
        self.0.history(timer, limit)
    }
    fn events(
        &self,
        filter: kron_store::EventFilter,
    ) -> impl Future<Output = Result<kron_server::backend::EventPage, String>> + Send {
        self.0.events(filter)
    }
    fn applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.applied()
    }
    fn lease_expiries(&self) -> u64 {
        0
    }

    fn cluster_status(&self) -> ClusterStatus {
        ClusterStatus {
            role: "follower",
            ..self.0.cluster_status()
        }
    }
    fn join(&self, member: Member) -> impl Future<Output = Result<(), WriteError>> + Send {
        self.0.join(member)
    }
    fn leave(&self, node_id: &str) -> impl Future<Output = Result<(), WriteError>> + Send {
        self.0.leave(node_id)
    }
}

#[tokio::test]
async fn writes_to_a_follower_are_409_not_leader() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::new(dir.path(), Some(ADMIN.to_string())).unwrap();
    let api = Api::open(Arc::new(Follower(LocalBackend::new(T0))), config).unwrap();
    let (status, body) = call(&api, "/v1/timers", every("t", "job", "1m")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Reads answer on a follower: the timer is unknown here.
    let (status, other) = call(&api, "/v1/timers/t/pause", json!({})).await;
    assert_eq!(
        (status, other["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no timer named \"t\""))
    );
    assert_eq!(
        body,
        json!({"error": "not_leader", "leader_id": "n1", "leader_http": "127.0.0.1:7379"})
    );
}
