//! The server dashboard's reads through its router, over the HTTP layer's in-memory backend:
//! dead runs of the last day by one query over every timer's history (not a sample of timers),
//! scoped by the token's tenant, and the cluster members with role, term and lag.

use std::sync::Arc;

use super::server::ServerDashboard;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use kron_core::engine::{ClaimRequest, Outcome};
use kron_core::input::{Input, Output};
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, Overlap, TaskTarget, TimerDef};
use kron_server::backend::testing::LocalBackend;
use kron_server::backend::Backend;
use kron_server::http::Api;
use kron_server::setup::ServeConfig;
use serde_json::Value;
use tower::ServiceExt;

/// 2026-11-18T11:06:40.000Z
const T0: i64 = 1_795_000_000_000;
const HOUR: i64 = 3_600_000;

const TOKENS: &str = r#"{"tokens": [
  {"name": "reader", "token": "reader-t", "role": "reader"},
  {"name": "reader-a", "token": "reader-a-t", "role": "reader", "tenant_id": "acme"}
]}"#;

fn timer(id: &str, tenant: Option<&str>) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule: ScheduleSpec::After { ms: 1 },
        timezone: "UTC".into(),
        max_attempts: 1,
        overlap: Overlap::Delay,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: "email".into(),
        task: Some(Arc::new(TaskTarget {
            task: "email".into(),
            payload: "{}".into(),
            tenant: tenant.map(Arc::from),
        })),
    }
}

/// Registers `ids` (one attempt each), fires them, and fails every run: each dies.
async fn die(backend: &LocalBackend, ids: &[(String, Option<&str>)]) {
    let now = backend.now();
    let register = ids
        .iter()
        .map(|(id, tenant)| Input::Register {
            at: now,
            def: timer(id, *tenant),
        })
        .collect();
    let answers = backend.propose_many(register).await.unwrap();
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    backend
        .propose(Input::Tick {
            at: now + 10,
            capacity: 0,
            batch: 10_000,
        })
        .await
        .unwrap();
    let mut failed = 0;
    for tenant in [None, Some("acme")] {
        let token = backend.read(|e| e.last_token()).await + 1;
        let claimed = backend
            .propose(Input::Claim {
                at: now + 20,
                request: ClaimRequest {
                    worker: "w1".to_string(),
                    tasks: vec!["email".to_string()],
                    tenant: tenant.map(str::to_string),
                    limit: 10_000,
                    lease_until: now + HOUR,
                    token,
                },
            })
            .await
            .unwrap();
        let Output::Claimed { runs } = claimed else {
            panic!("not a claim: {claimed:?}");
        };
        for run in runs {
            backend
                .propose(Input::Complete {
                    at: now + 30 + failed as i64,
                    run: run.run_id,
                    token,
                    outcome: Outcome::Failed {
                        error: format!("ValueError: {}", run.timer_id),
                        duration_ms: 5,
                    },
                })
                .await
                .unwrap();
            failed += 1;
        }
    }
    assert_eq!(failed, ids.len());
}

struct Fixture {
    _dir: tempfile::TempDir,
    backend: Arc<LocalBackend>,
    router: axum::Router,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kron.tokens.json"), TOKENS).unwrap();
    let config = ServeConfig::new(dir.path(), Some("admin-secret".to_string())).unwrap();
    let backend = Arc::new(LocalBackend::new(T0));
    let api = Api::open(backend.clone(), config).unwrap();
    let router = kron_ui::router(Arc::new(ServerDashboard::new(api))).unwrap();
    Fixture {
        _dir: dir,
        backend,
        router,
    }
}

async fn get(router: &axum::Router, path: &str, token: &str) -> Value {
    let request = Request::get(path)
        .header(header::COOKIE, format!("kron_ui_session={token}"))
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn timers(dead: &Value) -> Vec<&str> {
    dead.as_array()
        .unwrap()
        .iter()
        .map(|d| d["timer"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn dead_runs_of_the_last_day_are_all_counted_newest_first_and_scoped_by_tenant() {
    let f = fixture();
    // Five runs died more than a day ago: not listed, not counted.
    let old: Vec<(String, Option<&str>)> = (0..5).map(|i| (format!("old-{i}"), None)).collect();
    die(&f.backend, &old).await;
    f.backend.advance(25 * HOUR);
    // 300 timers died within the day (more than any sample of timers would read): 260 of no
    // tenant, 40 of tenant acme.
    let mut recent: Vec<(String, Option<&str>)> =
        (0..260).map(|i| (format!("job-{i:03}"), None)).collect();
    recent.extend((0..40).map(|i| (format!("acme-{i:02}"), Some("acme"))));
    die(&f.backend, &recent).await;

    let all = get(&f.router, "/ui/api/activity", "reader-t").await;
    assert_eq!(all["dead_total"], 300);
    let shown = timers(&all["dead"]);
    assert_eq!(shown.len(), kron_ui::model::DEAD_SHOWN);
    assert!(!shown.iter().any(|t| t.starts_with("old-")), "{shown:?}");
    // Newest first: the acme runs failed last, the last one first.
    assert_eq!(shown[0], "acme-39");
    assert_eq!(shown[39], "acme-00");
    assert_eq!(shown[40], "job-259");
    let ats: Vec<i64> = all["dead"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["at"].as_i64().unwrap())
        .collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");
    assert_eq!(all["dead"][0]["error"], "ValueError: acme-39");
    assert_eq!(all["dead"][0]["attempt"], 1);

    let mine = get(&f.router, "/ui/api/activity", "reader-a-t").await;
    assert_eq!(mine["dead_total"], 40);
    let shown = timers(&mine["dead"]);
    assert_eq!(shown.len(), 40);
    assert!(shown.iter().all(|t| t.starts_with("acme-")), "{shown:?}");
}

#[tokio::test]
async fn cluster_members_show_role_term_and_lag() {
    let f = fixture();
    die(&f.backend, &[("one".to_string(), None)]).await;
    let status = f.backend.cluster_status();
    let cluster = get(&f.router, "/ui/api/cluster", "reader-t").await;
    let member = &cluster["members"][0];
    assert_eq!(member["node_id"], "local");
    assert_eq!(member["role"], "leader");
    assert_eq!(member["term"], status.term);
    assert_eq!(member["matched_index"], status.last_log_index);
    assert_eq!(member["lag"], 0);
    assert_eq!(cluster["term"], status.term);
}
