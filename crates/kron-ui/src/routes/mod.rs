//! The dashboard's router: the pages (one HTML shell, routed by the script), the assets, the
//! JSON the pages read, the login, and the actions. Paths are absolute (`/ui/...`) so that the
//! server can merge the router beside its API and `kron ui` can serve it alone.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::model::TimerQuery;
use crate::session::{self, Sessions};
use crate::source::{Action, Dashboard, UiAudit, UiError, Viewer};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// Pages and scripts come from this origin only: no inline script, no framing.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The router's state: the dashboard's source and the sessions' secret.
struct Ui<D> {
    dash: Arc<D>,
    sessions: Sessions,
}

/// The whole dashboard over `dash`, at `/ui`.
pub fn router<D: Dashboard>(dash: Arc<D>) -> Result<Router, String> {
    let state = Arc::new(Ui {
        dash,
        sessions: Sessions::new()?,
    });
    Ok(Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/timers") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/timers") }))
        .route("/ui/timers", get(page))
        .route("/ui/timers/{name}", get(page))
        .route("/ui/runs", get(page))
        .route("/ui/cluster", get(page))
        .route("/ui/login", get(page).post(login::<D>))
        .route("/ui/logout", post(logout::<D>))
        .route("/ui/assets/app.js", get(script))
        .route("/ui/assets/style.css", get(style))
        .route("/ui/api/session", get(session_info::<D>))
        .route("/ui/api/timers", get(timers::<D>))
        .route("/ui/api/timers/{name}", get(timer::<D>))
        .route("/ui/api/timers/{name}/{action}", post(act::<D>))
        .route("/ui/api/activity", get(activity::<D>))
        .route("/ui/api/cluster", get(cluster::<D>))
        .with_state(state))
}

fn with_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn page() -> Response {
    with_headers(INDEX.into_response(), "text/html; charset=utf-8")
}

async fn script() -> Response {
    with_headers(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    with_headers(STYLE.into_response(), "text/css; charset=utf-8")
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({ "error": self.message() }))).into_response()
    }
}

/// The viewer of a request: its session's, else the anonymous one (embedded mode), else 401.
/// A session whose token no longer signs in falls back to anonymous reading where there is one.
fn viewer<D: Dashboard>(ui: &Ui<D>, headers: &HeaderMap) -> Result<Viewer, UiError> {
    let signed = session::token(headers).map(|t| ui.dash.sign_in(&t));
    match (signed, ui.dash.anonymous()) {
        (Some(Ok(viewer)), _) => Ok(viewer),
        (_, Some(anonymous)) => Ok(anonymous),
        (Some(Err(e)), None) => Err(e),
        (None, None) => Err(UiError::Unauthorized(
            "sign in to see this page".to_string(),
        )),
    }
}

async fn session_info<D: Dashboard>(State(ui): State<Arc<Ui<D>>>, headers: HeaderMap) -> Response {
    let token = session::token(&headers);
    let signed = token
        .as_deref()
        .and_then(|t| ui.dash.sign_in(t).ok().map(|v| (v, ui.sessions.csrf(t))));
    let (viewer, csrf) = match signed {
        Some((viewer, csrf)) => (Some(viewer), Some(csrf)),
        None => (ui.dash.anonymous(), None),
    };
    Json(json!({
        "mode": ui.dash.mode(),
        "signed_in": csrf.is_some(),
        "viewer": viewer,
        "csrf": csrf,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let refuse = |status: u16, reason: String| {
        ui.dash.audit(UiAudit {
            viewer: None,
            method: "POST".to_string(),
            path: "/ui/login".to_string(),
            target: None,
            status,
            reason: Some(reason),
        });
    };
    if !session::same_origin(&headers) {
        refuse(403, "cross-site login refused".to_string());
        return UiError::Forbidden("cross-site request refused".to_string()).into_response();
    }
    match ui.dash.sign_in(form.token.trim()) {
        Ok(_) => match session::set_cookie(form.token.trim()) {
            Some(cookie) => {
                let mut response = Redirect::to("/ui/timers").into_response();
                response.headers_mut().insert(header::SET_COOKIE, cookie);
                response
            }
            None => Redirect::to("/ui/login?failed=1").into_response(),
        },
        Err(e) => {
            refuse(401, format!("login refused: {}", e.message()));
            Redirect::to("/ui/login?failed=1").into_response()
        }
    }
}

async fn logout<D: Dashboard>(State(_ui): State<Arc<Ui<D>>>, headers: HeaderMap) -> Response {
    if !session::same_origin(&headers) {
        return UiError::Forbidden("cross-site request refused".to_string()).into_response();
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
}

async fn timers<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
    Query(query): Query<TimerQuery>,
) -> Result<Response, UiError> {
    let viewer = viewer(&ui, &headers)?;
    Ok(Json(ui.dash.timers(viewer, query).await?).into_response())
}

async fn timer<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, UiError> {
    let viewer = viewer(&ui, &headers)?;
    Ok(Json(ui.dash.timer(viewer, name).await?).into_response())
}

async fn activity<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let viewer = viewer(&ui, &headers)?;
    Ok(Json(ui.dash.activity(viewer).await?).into_response())
}

async fn cluster<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let viewer = viewer(&ui, &headers)?;
    Ok(Json(ui.dash.cluster(viewer).await?).into_response())
}

/// `POST /ui/api/timers/{name}/{action}`: same origin, a session, its CSRF token and a role
/// that writes, in that order; every outcome is audited.
async fn act<D: Dashboard>(
    State(ui): State<Arc<Ui<D>>>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let path = format!("/ui/api/timers/{name}/{action}");
    let token = session::token(&headers);
    let signed = token.as_deref().map(|t| ui.dash.sign_in(t));
    let who = signed.as_ref().and_then(|s| s.as_ref().ok()).cloned();
    let checked: Result<(Viewer, Action), UiError> = (|| {
        if !session::same_origin(&headers) {
            return Err(UiError::Forbidden(
                "cross-site request refused (Origin does not match)".to_string(),
            ));
        }
        let viewer = match (signed, token.as_deref()) {
            (Some(Ok(viewer)), Some(token)) => {
                if !ui.sessions.csrf_ok(&headers, token) {
                    return Err(UiError::Forbidden(
                        "missing or wrong CSRF token".to_string(),
                    ));
                }
                viewer
            }
            (Some(Err(e)), _) => return Err(e),
            _ => {
                return Err(UiError::Unauthorized(
                    "sign in with a token that may act".to_string(),
                ))
            }
        };
        if !viewer.can_write {
            return Err(UiError::Forbidden(format!(
                "the {} role may not {action} timers",
                viewer.role
            )));
        }
        let action = Action::parse(&action)
            .ok_or_else(|| UiError::NotFound(format!("no action {action:?}")))?;
        Ok((viewer, action))
    })();
    let outcome = match checked {
        Ok((viewer, action)) => ui.dash.act(viewer, action, name.clone()).await,
        Err(e) => Err(e),
    };
    let (status, reason) = match &outcome {
        Ok(_) => (200, None),
        Err(e) => (e.status(), Some(e.message().to_string())),
    };
    ui.dash.audit(UiAudit {
        viewer: who,
        method: Method::POST.to_string(),
        path,
        target: Some(name),
        status,
        reason,
    });
    match outcome {
        Ok(message) => Json(json!({ "ok": true, "message": message })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests;
