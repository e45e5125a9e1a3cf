//! The router against a fake source: sessions, CSRF, Origin and roles, without a socket.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use crate::model::{Activity, ClusterView, TimerDetail, TimerPage, TimerQuery};
use crate::source::{Action, Dashboard, Mode, UiAudit, UiError, Viewer};

#[derive(Default)]
struct Fake {
    audits: Mutex<Vec<UiAudit>>,
    acted: Mutex<Vec<(Action, String)>>,
}

fn viewer(role: &str, can_write: bool) -> Viewer {
    Viewer {
        name: role.to_string(),
        role: role.to_string(),
        tenant: None,
        can_write,
    }
}

impl Dashboard for Fake {
    fn mode(&self) -> Mode {
        Mode::Server
    }
    fn anonymous(&self) -> Option<Viewer> {
        None
    }
    fn sign_in(&self, token: &str) -> Result<Viewer, UiError> {
        match token {
            "op" => Ok(viewer("operator", true)),
            "rd" => Ok(viewer("reader", false)),
            _ => Err(UiError::Unauthorized("unknown token".to_string())),
        }
    }
    async fn timers(&self, _: Viewer, query: TimerQuery) -> Result<TimerPage, UiError> {
        Ok(TimerPage::build([], &query, 0))
    }
    async fn timer(&self, _: Viewer, name: String) -> Result<TimerDetail, UiError> {
        Err(UiError::NotFound(format!("no timer named {name:?}")))
    }
    async fn activity(&self, _: Viewer) -> Result<Activity, UiError> {
        Ok(Activity {
            now: 0,
            running: Vec::new(),
            dead: Vec::new(),
            dead_total: 0,
        })
    }
    async fn cluster(&self, _: Viewer) -> Result<ClusterView, UiError> {
        Err(UiError::NotFound("no cluster".to_string()))
    }
    async fn act(&self, _: Viewer, action: Action, name: String) -> Result<String, UiError> {
        self.acted.lock().unwrap().push((action, name));
        Ok("done".to_string())
    }
    fn audit(&self, record: UiAudit) {
        self.audits.lock().unwrap().push(record);
    }
}

const HOST: &str = "127.0.0.1:7379";

async fn send(fake: &Arc<Fake>, request: Request<Body>) -> (StatusCode, String) {
    let app = crate::router(fake.clone()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).to_string())
}

fn action(token: Option<&str>, csrf: Option<String>, origin: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/ui/api/timers/nightly/pause").header(header::HOST, HOST);
    if let Some(token) = token {
        request = request.header(header::COOKIE, format!("kron_ui_session={token}"));
    }
    if let Some(csrf) = csrf {
        request = request.header("x-kron-csrf", csrf);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    request.body(Body::empty()).unwrap()
}

/// The session's CSRF token, as the page reads it.
async fn csrf(fake: &Arc<Fake>, app: &axum::Router, token: &str) -> String {
    let _ = fake;
    let request = Request::get("/ui/api/session")
        .header(header::COOKIE, format!("kron_ui_session={token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    value["csrf"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn reads_need_a_session_in_server_mode() {
    let fake = Arc::new(Fake::default());
    let get = |cookie: Option<&str>| {
        let mut r = Request::get("/ui/api/timers");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, format!("kron_ui_session={c}"));
        }
        r.body(Body::empty()).unwrap()
    };
    assert_eq!(send(&fake, get(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&fake, get(Some("nope"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(&fake, get(Some("rd"))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_write_needs_origin_csrf_and_a_role_that_writes() {
    let fake = Arc::new(Fake::default());
    let app = crate::router(fake.clone()).unwrap();
    let origin = Some("http://127.0.0.1:7379");
    let op_csrf = csrf(&fake, &app, "op").await;
    let rd_csrf = csrf(&fake, &app, "rd").await;
    let cases = [
        (action(Some("op"), Some(op_csrf.clone()), None), 403),
        (
            action(
                Some("op"),
                Some(op_csrf.clone()),
                Some("http://evil.example"),
            ),
            403,
        ),
        (action(Some("op"), None, origin), 403),
        (action(Some("op"), Some(rd_csrf.clone()), origin), 403),
        (action(None, None, origin), 401),
        (action(Some("rd"), Some(rd_csrf), origin), 403),
        (action(Some("op"), Some(op_csrf), origin), 200),
    ];
    let n = cases.len();
    for (request, expected) in cases {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    assert_eq!(
        fake.acted.lock().unwrap().as_slice(),
        &[(Action::Pause, "nightly".to_string())]
    );
    let audits = fake.audits.lock().unwrap();
    assert_eq!(audits.len(), n, "every decision is audited");
    let reader = &audits[5];
    assert_eq!(reader.status, 403);
    assert_eq!(
        reader.viewer.as_ref().map(|v| v.role.as_str()),
        Some("reader")
    );
    assert_eq!(reader.target.as_deref(), Some("nightly"));
}

#[tokio::test]
async fn login_sets_an_http_only_strict_cookie_and_refusals_are_audited() {
    let fake = Arc::new(Fake::default());
    let login = |token: &str| {
        Request::post("/ui/login")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, "http://127.0.0.1:7379")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={token}")))
            .unwrap()
    };
    let app = crate::router(fake.clone()).unwrap();
    let ok = app.clone().oneshot(login("op")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let cookie = ok.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!ok.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .contains("op"));
    let bad = app.oneshot(login("wrong")).await.unwrap();
    assert_eq!(bad.status(), StatusCode::SEE_OTHER);
    assert!(bad.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(fake.audits.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn pages_and_assets_are_served_with_a_strict_policy() {
    let fake = Arc::new(Fake::default());
    for path in [
        "/ui/timers",
        "/ui/timers/x",
        "/ui/assets/app.js",
        "/ui/assets/style.css",
    ] {
        let app = crate::router(fake.clone()).unwrap();
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
    }
}
