//! The HTTP API: one router per resource, each generic over the [`Backend`], behind one edge
//! (see [`edge`]) that authenticates, authorizes, audits and measures every request.
//!
//! Wire conventions: JSON bodies; instants are ISO 8601 UTC strings with milliseconds
//! (`"2026-11-18T11:06:40.123Z"`); durations in requests are strings such as `"30m"` or whole
//! milliseconds; errors are `{"error": ...}` with the status of [`ApiError`].
//!
//! Serving, from `kron server start`:
//! ```no_run
//! # async fn f(backend: std::sync::Arc<kron_server::backend::testing::LocalBackend>) -> Result<(), Box<dyn std::error::Error>> {
//! use kron_server::http::{serve, Api};
//! use kron_server::setup::ServeConfig;
//! let config = ServeConfig::new(std::path::Path::new("data"), None)?;
//! let api = Api::open(backend, config)?;
//! if let Some(path) = api.generated_token() { eprintln!("admin token written to {}", path.display()); }
//! let shutdown = api.shutdown(); // trigger() it on SIGINT/SIGTERM; POST /v1/runtime/shutdown does too
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7379").await?;
//! serve(api, listener).await?; // returns once shut down and in-flight requests are answered
//! # Ok(()) }
//! ```

mod body;
mod cluster;
pub mod edge;
mod error;
mod health;
mod metrics;
mod openapi;
mod runs;
mod runtime;
mod timers;
pub mod wire;
mod workers;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::auth::Auth;
use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::setup::{ServeConfig, SetupError};
use crate::workers::Workers;

pub use body::{BodyLimit, JsonBody};
pub use error::{lease_message, ApiError, RefusalReason};

/// A shutdown signal: triggered by `POST /v1/runtime/shutdown` or by the embedding server (on
/// SIGINT/SIGTERM), awaited by [`serve`] and by whoever else must stop.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            sender: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.sender.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] was called (at once if it already was).
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

/// Everything the handlers share: the backend, tokens, audit log, worker registry, metrics.
pub struct Api<B> {
    pub backend: Arc<B>,
    pub auth: Auth,
    pub audit: AuditLog,
    pub workers: Workers,
    pub metrics: Metrics,
    pub config: ServeConfig,
    shutdown: Shutdown,
    generated_token: Option<PathBuf>,
}

impl<B: Backend> Api<B> {
    /// Opens the tokens and the audit log of `config.data_dir` (generating `kron.token` when
    /// there is no `cluster_token` and no token file yet).
    pub fn open(backend: Arc<B>, config: ServeConfig) -> Result<Arc<Api<B>>, SetupError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| SetupError::io(&config.data_dir, e))?;
        let (auth, generated_token) =
            Auth::open(&config.data_dir, config.cluster_token.as_deref())?;
        let audit = AuditLog::open(&config.data_dir)?;
        Ok(Arc::new(Api {
            backend,
            auth,
            audit,
            workers: Workers::default(),
            metrics: Metrics::default(),
            config,
            shutdown: Shutdown::default(),
            generated_token,
        }))
    }

    /// The admin token's file, when [`Api::open`] generated it (for the server to print where).
    pub fn generated_token(&self) -> Option<&std::path::Path> {
        self.generated_token.as_deref()
    }

    /// The shutdown signal `POST /v1/runtime/shutdown` triggers.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The whole API: every resource's router behind the edge.
    pub fn router(self: &Arc<Self>) -> Router {
        let routes = Router::new()
            .merge(health::router())
            .merge(metrics::router())
            .merge(openapi::router())
            .merge(timers::router())
            .merge(workers::router())
            .merge(runs::router())
            .merge(cluster::router())
            .merge(runtime::router())
            .fallback(edge::not_found);
        routes
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                edge::edge::<B>,
            ))
            .layer(DefaultBodyLimit::max(self.config.body_limit))
            .with_state(self.clone())
    }
}

/// Serves `api` on `listener` until its [`Shutdown`] is triggered, then lets requests in
/// flight finish.
pub async fn serve<B: Backend>(
    api: Arc<Api<B>>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    serve_with(api, listener, Router::new()).await
}

/// [`serve`] with `extra` routes beside the API's (the dashboard at `/ui`). They are outside
/// the API's edge: they authenticate, authorize and audit on their own.
pub async fn serve_with<B: Backend>(
    api: Arc<Api<B>>,
    listener: tokio::net::TcpListener,
    extra: Router,
) -> std::io::Result<()> {
    let shutdown = api.shutdown();
    let app = extra.merge(api.router());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
