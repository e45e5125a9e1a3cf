//! Raft RPC over HTTP: the client a leader or candidate uses to reach its peers, and the router
//! of the Raft listener, which serves these three routes and nothing else.
//!
//! Every request carries `Authorization: Bearer <token>`: the listener admits the cluster
//! (admin) token and the `raft` tokens of `DIR/kron.tokens.json`, answers 401 to a missing or
//! unknown token and 403 to a token of another role. Bodies are openraft's request types as
//! JSON; the answer is the JSON of `Result<response, RaftError>`, so a refusal by the remote
//! Raft reaches the caller as such.
//!
//! Outgoing connections are made from the IP address of the node's own Raft address (when it
//! names one): with nodes on 127.0.0.1, 127.0.0.2 and 127.0.0.3, whatever sits between them (a
//! fault-injecting proxy, a firewall rule) can tell which node a connection comes from.

use std::net::IpAddr;
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
use crate::auth::{Auth, AuthFailure, RaftRefusal};

const APPEND: &str = "/raft/append";
const VOTE: &str = "/raft/vote";
const SNAPSHOT: &str = "/raft/snapshot";

/// The largest Raft request body accepted: a batch of entries or a snapshot chunk (openraft
/// sends snapshots in chunks of 3 MiB by default).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Decides whether a request may make Raft calls, from its `Authorization` header's value.
pub type Authorize = Arc<dyn Fn(Option<&str>) -> Result<(), RaftRefusal> + Send + Sync>;

/// Accepts exactly `Bearer <token>` (compared in constant time).
pub fn cluster_token(token: String) -> Authorize {
    Arc::new(move |header: Option<&str>| {
        let given = header
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(RaftRefusal::Unauthorized(AuthFailure::Missing))?;
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(RaftRefusal::Unauthorized(AuthFailure::Unknown))
        }
    })
}

/// Accepts what `auth` admits to Raft: the admin token and `raft` tokens (re-read from the
/// token file when it changes, so they rotate without a restart).
pub fn raft_tokens(auth: Arc<Auth>) -> Authorize {
    Arc::new(move |header: Option<&str>| auth.authorize_raft(header, now_ms()).map(|_| ()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- client --------------------------------------------------------------------------------

/// The address outgoing Raft connections should leave from: the IP of `raft_addr` when it
/// names one (not a host name, not `0.0.0.0` or `::`).
pub fn source_ip(raft_addr: &str) -> Option<IpAddr> {
    raft_addr
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| addr.ip())
        .filter(|ip| !ip.is_unspecified())
}

/// Makes one [`Connection`] per peer; they share one HTTP client (and its connection pool).
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
    token: Arc<str>,
}

impl Network {
    /// A network whose requests carry `token` and whose connections leave from `local_ip`
    /// (see the module documentation; `None`: whichever address the system picks).
    pub fn new(token: &str, local_ip: Option<IpAddr>) -> Network {
        // Without a proxy: Raft traffic goes straight to the peer's address.
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(local_ip)
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

/// `None` when the request may go on, else the answer refusing it.
fn refused(listener: &Listener, headers: &HeaderMap) -> Option<Response> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let (status, error) = match (listener.authorize)(header) {
        Ok(()) => return None,
        Err(RaftRefusal::Unauthorized(_)) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        Err(RaftRefusal::Forbidden(_)) => (StatusCode::FORBIDDEN, "forbidden"),
    };
    Some((status, Json(serde_json::json!({ "error": error }))).into_response())
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
    if let Some(refusal) = refused(&listener, &headers) {
        return refusal;
    }
    Json(listener.raft.append_entries(rpc).await).into_response()
}

async fn vote(
    State(listener): State<Listener>,
    headers: HeaderMap,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Response {
    if let Some(refusal) = refused(&listener, &headers) {
        return refusal;
    }
    Json(listener.raft.vote(rpc).await).into_response()
}

async fn snapshot(
    State(listener): State<Listener>,
    headers: HeaderMap,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    if let Some(refusal) = refused(&listener, &headers) {
        return refusal;
    }
    Json(listener.raft.install_snapshot(rpc).await).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_from_the_raft_address_ip() {
        assert_eq!(
            source_ip("127.0.0.2:7380"),
            Some(IpAddr::from([127, 0, 0, 2]))
        );
        assert_eq!(
            source_ip("[::1]:7380"),
            Some(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
        );
        assert_eq!(source_ip("0.0.0.0:7380"), None);
        assert_eq!(source_ip("node1.internal:7380"), None);
    }
}
