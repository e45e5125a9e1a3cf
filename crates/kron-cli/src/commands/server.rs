//! `kron server start`: a server node (Raft, the replicated engine) and its HTTP API.

use std::sync::Arc;

use kron_server::http::{serve_with, Api};
use kron_server::node::{Node, NodeConfig};
use kron_server::setup::ServeConfig;

use super::Ctx;
use crate::cli::ServerStartArgs;
use crate::error::{CliError, CliResult};

pub fn start(ctx: &mut Ctx, args: &ServerStartArgs) -> CliResult {
    let dir = ctx.dir.path.clone();
    std::fs::create_dir_all(&dir).map_err(|e| {
        CliError::failure(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })?;
    let (token, generated) = kron_server::auth::admin_token(&dir, args.cluster_token.as_deref())
        .map_err(|e| CliError::failure(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kron-server")
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the server's runtime: {e}")))?;
    runtime.block_on(async {
        // Bound first, so that a port 0 is known before the node advertises its address.
        let listener = tokio::net::TcpListener::bind(&args.http)
            .await
            .map_err(|e| {
                CliError::failure(format!("cannot listen on --http {}: {e}", args.http))
            })?;
        let http_addr = listener
            .local_addr()
            .map_err(|e| CliError::failure(format!("--http {}: {e}", args.http)))?
            .to_string();
        let node = Node::start(NodeConfig {
            data_dir: dir.clone(),
            node_name: args.node_id.clone(),
            http_addr: http_addr.clone(),
            raft_addr: args.raft.clone(),
            cluster_token: token.clone(),
            leader_id: args.leader_id.clone(),
        })
        .await
        .map_err(|e| CliError::failure(format!("the server node did not start: {e}")))?;
        let node = Arc::new(node);
        let config =
            ServeConfig::new(&dir, Some(token)).map_err(|e| CliError::failure(e.to_string()))?;
        let api = Api::open(node.clone(), config).map_err(|e| CliError::failure(e.to_string()))?;
        let shutdown = api.shutdown();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            on_signal.trigger();
        });
        ctx.out.line(format!(
            "kron server {} serving http://{http_addr} (Raft {}), data in {}",
            node.name(),
            node.raft_addr(),
            dir.display()
        ))?;
        match generated {
            Some(path) => ctx.out.line(format!(
                "admin token generated in {} (readable only by its owner)",
                path.display()
            ))?,
            None if args.cluster_token.is_none() => ctx.out.line(format!(
                "admin token in {}",
                dir.join(kron_server::auth::ADMIN_TOKEN_FILE).display()
            ))?,
            None => {}
        }
        // Seen at once by whoever waits for the server to be up (the output may be a pipe).
        ctx.out.flush()?;
        // The dashboard at /ui, beside the API: its own login and CSRF checks, the same tokens,
        // roles, tenants and audit log.
        let ui = kron_ui::router(Arc::new(crate::ui::server::ServerDashboard::new(
            api.clone(),
        )))
        .map_err(|e| CliError::failure(format!("cannot start the dashboard: {e}")))?;
        let served = serve_with(api, listener, ui).await;
        let stopped = node.shutdown().await;
        served.map_err(|e| CliError::failure(format!("the HTTP API failed: {e}")))?;
        stopped.map_err(|e| CliError::failure(format!("the node did not stop cleanly: {e}")))?;
        ctx.out
            .line(format!("kron server {} stopped", node.name()))?;
        Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
pub(super) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    match terminate {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt => {}
            }
        }
        Err(_) => {
            let _ = interrupt.await;
        }
    }
}
