//! `GET /metrics`: Prometheus text format.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::Api;
use crate::backend::Backend;
use crate::metrics::EngineGauges;

pub fn router<B: Backend>() -> Router<Arc<Api<B>>> {
    Router::new().route("/metrics", get(metrics::<B>))
}

async fn metrics<B: Backend>(State(api): State<Arc<Api<B>>>) -> impl IntoResponse {
    let gauges = api
        .backend
        .read(|e| {
            let mut timers = BTreeMap::new();
            for view in e.views() {
                *timers.entry(view.state.as_str()).or_insert(0) += 1;
            }
            EngineGauges {
                timers,
                claimable: e.claimable_count() as u64,
                leased: e.lease_count() as u64,
                last_token: e.last_token(),
            }
        })
        .await;
    let cluster = api.backend.cluster_status();
    let workers = api.workers.list().len() as u64;
    api.metrics
        .observe_lease_expiries(api.backend.lease_expiries());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.metrics.render(&gauges, &cluster, workers),
    )
}
