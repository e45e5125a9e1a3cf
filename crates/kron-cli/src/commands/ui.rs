//! `kron ui [--listen 127.0.0.1:7378]`: the web dashboard of the data directory, read live or
//! stopped; actions go to the live runtime and need its control token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::Redirect;
use axum::routing::get;

use super::Ctx;
use crate::cli::UiArgs;
use crate::error::{CliError, CliResult};
use crate::ui::embedded::Embedded;

pub fn run(ctx: &mut Ctx, args: &UiArgs) -> CliResult {
    // Reported now rather than on the first page: a directory that is not Kron's.
    ctx.dir.reader()?;
    let ui = kron_ui::router(Arc::new(Embedded::new(ctx.dir.clone())))
        .map_err(|e| CliError::failure(format!("cannot start the dashboard: {e}")))?
        .route("/", get(|| async { Redirect::to("/ui/timers") }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("kron-ui")
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the dashboard's runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                CliError::failure(format!("cannot listen on --listen {}: {e}", args.listen))
            })?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|e| CliError::failure(format!("--listen {}: {e}", args.listen)))?;
        ctx.out.line(format!(
            "kron ui serving http://{addr}/ui for {}",
            ctx.dir.display()
        ))?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: {addr} is reachable from other machines and reading needs no login; \
                 put it behind a reverse proxy with authentication"
            );
        }
        ctx.out.line(format!(
            "hint: actions need the control token in {}",
            ctx.dir.path.join(kron_core::admin::TOKEN_FILE).display()
        ))?;
        ctx.out.flush()?;
        axum::serve(listener, ui)
            .with_graceful_shutdown(super::server::wait_for_signal())
            .await
            .map_err(|e| CliError::failure(format!("the dashboard failed: {e}")))
    })
}
