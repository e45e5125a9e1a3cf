//! Raft RPC over HTTP: the client a leader or candidate uses to reach its peers, and the router
//! of the Raft listener, which serves these three routes and nothing else.
//!
//! Every request carries `Authorization: Bearer <token>`; the listener answers 401 to anything
//! else. Bodies are openraft's request types as JSON; the answer is the JSON of
//! `Result<response, RaftError>`, so a refusal by the remote Raft reaches the caller as such.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, NetworkError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, NodeInfo, Raft, RaftError, RpcError, TypeConfig};

const APPEND: &str = "/raft/append";
const VOTE: &str = "/raft/vote";
const SNAPSHOT: &str = "/raft/snapshot";

/// The largest Raft request body accepted: a batch of entries or a snapshot chunk (openraft
/// sends snapshots in chunks of 3 MiB by default).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Decides whether a bearer token may make Raft calls.
pub type Authorize = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Accepts exactly `token` (compared in constant time).
pub fn cluster_token(token: String) -> Authorize {
    Arc::new(move |given: &str| constant_time_eq(given.as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- client --------------------------------------------------------------------------------

/// Makes one [`Connection`] per peer; they share one HTTP client (and its connection pool).
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
    token: Arc<str>,
}

impl Network {
    /// A network whose requests carry `token`.
    pub fn new(token: &str) -> Network {
        // Without a proxy: Raft traffic goes straight to the peer's address.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Network {
            http,
            token: token.into(),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Connection {
        Connection {
            network: self.clone(),
            target,
            addr: node.raft_addr.clone(),
        }
    }
}

/// The client side of one peer.
pub struct Connection {
    network: Network,
    target: NodeId,
    addr: String,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        route: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("http://{}{route}", self.addr);
        let answer = self
            .network
            .http
            .post(url)
            .bearer_auth(&*self.network.token)
            .timeout(option.hard_ttl())
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RpcError::Unreachable(Unreachable::new(&e))
                } else {
                    RpcError::Network(NetworkError::new(&e))
                }
            })?;
        let status = answer.status();
        if !status.is_success() {
            let text = answer.text().await.unwrap_or_default();
            let err = std::io::Error::other(format!("{route} answered {status}: {text}"));
            return Err(RpcError::Network(NetworkError::new(&err)));
        }
        let result: Result<Resp, RaftError<E>> = answer
            .json()
            .await
            .map_err(|e| RpcError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RpcError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        self.call(APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        self.call(SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        self.call(VOTE, &rpc, &option).await
    }
}

// ---- listener ------------------------------------------------------------------------------

#[derive(Clone)]
struct Listener {
    raft: Raft,
    authorize: Authorize,
}

/// The Raft listener's routes, for `raft`, admitting the tokens `authorize` accepts.
pub fn router(raft: Raft, authorize: Authorize) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Listener { raft, authorize })
}

fn authorized(listener: &Listener, headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| (listener.authorize)(token.trim()))
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": "unauthorized"})),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": "not found"})),
    )
        .into_response()
}

async fn append(
    State(listener): State<Listener>,
    headers: HeaderMap,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    if !authorized(&listener, &headers) {
        return unauthorized();
    }
    Json(listener.raft.append_entries(rpc).await).into_response()
}

async fn vote(
    State(listener): State<Listener>,
    headers: HeaderMap,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Response {
    if !authorized(&listener, &headers) {
        return unauthorized();
    }
    Json(listener.raft.vote(rpc).await).into_response()
}

async fn snapshot(
    State(listener): State<Listener>,
    headers: HeaderMap,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    if !authorized(&listener, &headers) {
        return unauthorized();
    }
    Json(listener.raft.install_snapshot(rpc).await).into_response()
}
