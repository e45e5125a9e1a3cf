//! The login session: the token lives in an HttpOnly, SameSite=Strict cookie (never in a URL
//! and never readable by the page's script); writes also need a CSRF token derived from it and
//! a same-origin `Origin` header.

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "kron_ui_session";
/// The header a write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-kron-csrf";

/// The per-process secret CSRF tokens are derived from.
#[derive(Clone)]
pub struct Sessions {
    secret: [u8; 32],
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

impl Sessions {
    /// A new secret from the system's random source.
    pub fn new() -> Result<Sessions, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no random source: {e}"))?;
        Ok(Sessions { secret })
    }

    /// The CSRF token of the session holding `token`: a digest only this process can make, so
    /// another site cannot forge it even though the browser sends it the cookie.
    pub fn csrf(&self, token: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"kron-ui-csrf\0");
        hasher.update(self.secret);
        hasher.update(token.as_bytes());
        hex(&hasher.finalize())
    }

    /// Whether `headers` carry the CSRF token of the session holding `token`.
    pub fn csrf_ok(&self, headers: &HeaderMap, token: &str) -> bool {
        let expected = self.csrf(token);
        headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session's token from the request's cookies.
pub fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| decode(value))
        .filter(|t| !t.is_empty())
}

/// `Set-Cookie` for a session holding `token`.
pub fn set_cookie(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict",
        encode(token)
    ))
    .ok()
}

/// `Set-Cookie` that ends the session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("kron_ui_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether the request comes from a page of this origin: its `Origin` names the host it was
/// sent to. Browsers send `Origin` with every POST; a request without one is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host)
        }
        _ => false,
    }
}

/// Cookie values may not hold every byte a token may: percent-encode all but the unreserved.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hexed = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hexed, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_round_trips_any_token() {
        let secret = "a b;c=d%é";
        let cookie = set_cookie(secret).unwrap();
        let value = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {value}")).unwrap(),
        );
        assert_eq!(token(&headers).as_deref(), Some(secret));
    }

    #[test]
    fn origin_must_match_host() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7378"));
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7378"),
        );
        assert!(same_origin(&headers));
    }

    #[test]
    fn csrf_depends_on_the_session() {
        let sessions = Sessions::new().unwrap();
        assert_ne!(sessions.csrf("a"), sessions.csrf("b"));
        let mut headers = HeaderMap::new();
        headers.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&sessions.csrf("a")).unwrap(),
        );
        assert!(sessions.csrf_ok(&headers, "a"));
        assert!(!sessions.csrf_ok(&headers, "b"));
    }
}
