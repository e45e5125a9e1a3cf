//! A server over `LocalBackend` in a temporary data directory, with a token of every kind.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use kron_core::input::{Input, Output};
use kron_server::backend::testing::LocalBackend;
use kron_server::backend::Backend;
use kron_server::http::Api;
use kron_server::setup::ServeConfig;
use serde_json::{json, Value};
use tower::ServiceExt;

/// 2026-11-18T11:06:40.000Z
pub const T0: i64 = 1_795_000_000_000;
pub const ADMIN: &str = "admin-secret";

pub const TOKENS: &str = r#"{"tokens": [
  {"name": "reader", "token": "reader-t", "role": "reader"},
  {"name": "worker", "token": "worker-t", "role": "worker"},
  {"name": "operator", "token": "operator-t", "role": "operator"},
  {"name": "raft", "token": "raft-t", "role": "raft"},
  {"name": "op-a", "token": "op-a-t", "role": "operator", "tenant_id": "acme"},
  {"name": "op-b", "token": "op-b-t", "role": "operator", "tenant_id": "bolt"},
  {"name": "worker-a", "token": "worker-a-t", "role": "worker", "tenant_id": "acme"},
  {"name": "worker-b", "token": "worker-b-t", "role": "worker", "tenant_id": "bolt"},
  {"name": "hashed", "token_sha256": "HASH", "role": "reader"},
  {"name": "old", "token": "old-t", "role": "admin", "expires_at": "2026-01-01T00:00:00Z"},
  {"name": "future", "token": "future-t", "role": "admin", "not_before": "2027-01-01T00:00:00Z"}
]}"#;

pub struct Server {
    pub dir: tempfile::TempDir,
    pub backend: Arc<LocalBackend>,
    pub api: Arc<Api<LocalBackend>>,
    router: Router,
}

pub fn server() -> Server {
    server_with(|config| config)
}

pub fn server_with(tune: impl FnOnce(ServeConfig) -> ServeConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let hashed = kron_server::auth::hex(&kron_server::auth::sha256(b"hashed-t"));
    std::fs::write(
        dir.path().join("kron.tokens.json"),
        TOKENS.replace("HASH", &hashed),
    )
    .unwrap();
    let config = tune(ServeConfig::new(dir.path(), Some(ADMIN.to_string())).unwrap());
    let backend = Arc::new(LocalBackend::new(T0));
    let api = Api::open(backend.clone(), config).unwrap();
    let router = api.router();
    Server {
        dir,
        backend,
        api,
        router,
    }
}

/// A request body: JSON, or raw bytes.
pub enum Payload {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

impl Server {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Payload,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Payload::None => Body::empty(),
            Payload::Json(value) => Body::from(value.to_string()),
            Payload::Raw(bytes) => Body::from(bytes),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send("GET", path, Some(token), Payload::None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send("POST", path, Some(token), Payload::Json(body))
            .await
    }

    /// Creates a task timer as admin; panics unless it is accepted.
    pub async fn timer(&self, body: Value) -> Value {
        let (status, answer) = self.post("/v1/timers", ADMIN, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// What the leader's clock loop does: due runs are parked for workers, expired leases end.
    pub async fn tick(&self) {
        let at = self.backend.now();
        self.backend
            .propose(Input::ExpireLeases { at })
            .await
            .unwrap();
        let output = self
            .backend
            .propose(Input::Tick {
                at,
                capacity: 0,
                batch: 10_000,
            })
            .await
            .unwrap();
        assert!(matches!(output, Output::Dispatched { .. }));
    }

    /// Moves the clock and ticks.
    pub async fn advance(&self, ms: i64) {
        self.backend.advance(ms);
        self.tick().await;
    }

    pub fn audit(&self) -> Vec<Value> {
        kron_server::audit::read_records(&self.dir.path().join("kron.audit.jsonl")).unwrap()
    }
}

pub fn every(name: &str, task: &str, every: &str) -> Value {
    json!({ "name": name, "task": task, "every": every, "payload": {"n": 1} })
}
