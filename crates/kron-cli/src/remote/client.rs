//! A blocking HTTP client for a Kron server (or the nodes of a cluster): bearer token, JSON
//! bodies, and a write answered `409 not_leader` followed to the leader a few hops at most.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{one_line, CliError};

/// How many `not_leader` answers one request follows before giving up.
pub const MAX_HOPS: usize = 3;

/// How long a read waits for its answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting to a node may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where requests go: the nodes the user named, in order, and the token they carry.
#[derive(Debug, Clone)]
pub struct Server {
    /// Base URLs (`http://host:port`, no trailing slash), as normalized from `--server`.
    pub nodes: Vec<String>,
    pub token: Option<String>,
}

/// Why a request got no answer it could use.
#[derive(Debug)]
pub enum RemoteError {
    /// No node answered: each node tried, with why.
    Unreachable { tried: Vec<String> },
    /// The nodes that answered are not the leader and know none (an election is under way).
    NoLeader { tried: Vec<String> },
    /// A write reached `node` but no answer came in time: it may or may not be carried out.
    TimedOut { node: String },
    /// 401: the token is missing, unknown, expired or not yet valid.
    Unauthorized { had_token: bool },
    /// 403: the token is valid but its role may not do this.
    Forbidden,
    /// 404, with the server's message.
    NotFound(String),
    /// Any other refusal: the status and the server's message.
    Refused { status: u16, message: String },
}

/// A successful answer: the decoded body and the node that gave it.
#[derive(Debug)]
pub struct Answer {
    pub body: Value,
    pub node: String,
}

impl Server {
    /// Parses `--server`: one URL or several separated by commas; `host:port` means
    /// `http://host:port`.
    pub fn parse(urls: &str, token: Option<String>) -> Result<Server, CliError> {
        let nodes = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(normalize)
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(CliError::usage(format!(
                "invalid --server {urls:?}: give the server's address, e.g. http://127.0.0.1:7379"
            )));
        }
        Ok(Server { nodes, token })
    }

    /// The server as the user named it, for messages.
    pub fn display(&self) -> String {
        self.nodes.join(",")
    }

    pub fn get(&self, path: &str) -> Result<Answer, RemoteError> {
        self.request(Method::GET, path, None, READ_TIMEOUT)
    }

    pub fn post(&self, path: &str, body: &Value, wait: Duration) -> Result<Answer, RemoteError> {
        self.request(Method::POST, path, Some(body), wait)
    }

    pub fn delete(&self, path: &str, wait: Duration) -> Result<Answer, RemoteError> {
        self.request(Method::DELETE, path, None, wait)
    }

    /// Sends one request to the first node that answers, following `not_leader` to the
    /// leader it names.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        wait: Duration,
    ) -> Result<Answer, RemoteError> {
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(wait)
            // The API never redirects; a proxy that does is not followed with the token.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteError::Unreachable {
                tried: vec![format!("the HTTP client could not start: {e}")],
            })?;
        let mut candidates: Vec<String> = self.nodes.clone();
        let mut tried = Vec::new();
        let mut hops = 0;
        let mut leaderless = false;
        while !candidates.is_empty() {
            let base = candidates.remove(0);
            let mut request = client
                .request(method.clone(), format!("{base}{path}"))
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let (status, answer) = match self.send(request) {
                Ok(answer) => answer,
                // A write that may have been delivered is not sent again elsewhere: a second
                // node could carry it out a second time (two manual runs).
                Err(Failed::Sent(_)) if method != Method::GET => {
                    return Err(RemoteError::TimedOut { node: base })
                }
                Err(Failed::Sent(why) | Failed::NotSent(why)) => {
                    tried.push(format!("{base} ({why})"));
                    continue;
                }
            };
            if status == StatusCode::CONFLICT && error_of(&answer) == Some("not_leader") {
                let leader = answer.get("leader_http").and_then(Value::as_str);
                match leader.map(normalize) {
                    Some(Ok(leader)) if hops < MAX_HOPS && leader != base => {
                        hops += 1;
                        candidates.retain(|c| *c != leader);
                        candidates.insert(0, leader);
                    }
                    _ => {
                        leaderless = true;
                        tried.push(format!("{base} (not the leader, and it knows no leader)"));
                    }
                }
                continue;
            }
            return answer_of(status, answer, base, self.token.is_some());
        }
        Err(if leaderless {
            RemoteError::NoLeader { tried }
        } else {
            RemoteError::Unreachable { tried }
        })
    }

    /// One exchange: the status and the decoded body, or why there was none.
    fn send(&self, mut request: RequestBuilder) -> Result<(StatusCode, Value), Failed> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().map_err(|e| {
            if e.is_connect() {
                Failed::NotSent(describe(&e))
            } else {
                Failed::Sent(describe(&e))
            }
        })?;
        let status = response.status();
        let text = response.text().map_err(|e| Failed::Sent(describe(&e)))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| {
                let shown: String = text.chars().take(200).collect();
                serde_json::json!({ "error": one_line(&shown) })
            })
        };
        Ok((status, body))
    }
}

/// Why an exchange failed: before the request could reach the node, or after.
enum Failed {
    NotSent(String),
    Sent(String),
}

fn answer_of(
    status: StatusCode,
    body: Value,
    node: String,
    had_token: bool,
) -> Result<Answer, RemoteError> {
    if status.is_success() {
        return Ok(Answer { body, node });
    }
    let message = error_of(&body)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    Err(match status {
        StatusCode::UNAUTHORIZED => RemoteError::Unauthorized { had_token },
        StatusCode::FORBIDDEN => RemoteError::Forbidden,
        StatusCode::NOT_FOUND => RemoteError::NotFound(message),
        other => RemoteError::Refused {
            status: other.as_u16(),
            message,
        },
    })
}

/// The `error` field of an answer.
pub fn error_of(body: &Value) -> Option<&str> {
    body.get("error").and_then(Value::as_str)
}

/// The cause of a transport error in a few words (reqwest's own text says only "error sending
/// request"; the reason is in its sources).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection failed".to_string()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(cause) = last {
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    one_line(&text)
}

/// `host:port` or `http://host:port[/prefix]` as a base URL without a trailing slash.
fn normalize(node: &str) -> Result<String, CliError> {
    let with_scheme = if node.contains("://") {
        node.to_string()
    } else {
        format!("http://{node}")
    };
    let invalid = |why: &str| {
        CliError::usage(format!(
            "invalid server URL {node:?}: {why} (e.g. http://127.0.0.1:7379)"
        ))
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(invalid(
                "https is not supported by the command line; reach the node over plain HTTP",
            ))
        }
        other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
    }
    if url.host_str().unwrap_or_default().is_empty() {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("no query or fragment allowed"));
    }
    let mut base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        base.push_str(&format!(":{port}"));
    }
    base.push_str(url.path().trim_end_matches('/'));
    Ok(base)
}

/// `text` as one path segment: everything but unreserved characters percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_normalized() {
        let server = Server::parse("127.0.0.1:7379, http://h:1/kron/ ,", None).ok();
        assert_eq!(
            server.map(|s| s.nodes),
            Some(vec![
                "http://127.0.0.1:7379".to_string(),
                "http://h:1/kron".to_string()
            ])
        );
        for bad in [
            "",
            ",",
            "ftp://h:1",
            "http://",
            "https://h:1",
            "http://h:1/?q=1",
        ] {
            assert!(Server::parse(bad, None).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(segment("a.b-c_d~1"), "a.b-c_d~1");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn nobody_listening_is_unreachable() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment.
        let server = Server::parse("127.0.0.1:9", None);
        let Ok(server) = server else {
            panic!("parse failed");
        };
        match server.get("/v1/timers") {
            Err(RemoteError::Unreachable { tried }) => {
                assert_eq!(tried.len(), 1);
                assert!(tried[0].starts_with("http://127.0.0.1:9 ("), "{tried:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
