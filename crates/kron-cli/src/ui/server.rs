//! The dashboard of a server node (`kron server start` mounts it at `/ui`): the same tokens,
//! roles and tenants as the HTTP API, reads from this node's applied engine and history, writes
//! proposed through Raft like the API's, every action and refusal in the same audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use kron_core::engine::TimerView;
use kron_core::event::EventKind;
use kron_core::input::{Input, Output, Rejected};
use kron_core::run::RunRecord;
use kron_core::timer::TimerRecord;
use kron_core::CommandError;
use kron_server::audit::AuditEntry;
use kron_server::auth::{AuthFailure, Role};
use kron_server::backend::{Backend, WriteError};
use kron_server::http::Api;
use kron_store::EventFilter;
use kron_ui::model::{
    Activity, ClusterView, DeadRun, MemberRow, RunRow, TenantRow, TimerDetail, TimerPage,
    TimerQuery, WorkerRow, DEAD_SHOWN, DEAD_WINDOW_MS,
};
use kron_ui::{Action, Dashboard, Mode, UiAudit, UiError, Viewer};

use super::embedded::HISTORY_READ;
use crate::output::timefmt::TimeFormatter;

/// A server node's API state, as the dashboard sees it.
pub struct ServerDashboard<B> {
    api: Arc<Api<B>>,
}

impl<B: Backend> ServerDashboard<B> {
    pub fn new(api: Arc<Api<B>>) -> ServerDashboard<B> {
        ServerDashboard { api }
    }
}

fn tenant_of(def: &kron_core::timer::TimerDef) -> Option<&str> {
    def.task.as_ref().and_then(|t| t.tenant.as_deref())
}

/// Whether `viewer` may see a timer of `tenant`: a tenant's token only its tenant's.
fn sees(viewer: &Viewer, tenant: Option<&str>) -> bool {
    match &viewer.tenant {
        Some(mine) => tenant == Some(mine.as_str()),
        None => true,
    }
}

fn no_timer(name: &str) -> UiError {
    UiError::NotFound(format!("no timer named {name:?}"))
}

impl<B: Backend> Dashboard for ServerDashboard<B> {
    fn mode(&self) -> Mode {
        Mode::Server
    }

    fn anonymous(&self) -> Option<Viewer> {
        None
    }

    fn sign_in(&self, token: &str) -> Result<Viewer, UiError> {
        let bearer = format!("Bearer {token}");
        let principal = self
            .api
            .auth
            .authenticate(Some(&bearer), self.api.backend.now())
            .map_err(|e: AuthFailure| UiError::Unauthorized(e.reason()))?;
        let can_write = match principal.role {
            Role::Reader => false,
            Role::Operator | Role::Admin => true,
            Role::Worker | Role::Raft => {
                return Err(UiError::Unauthorized(format!(
                    "a {} token cannot sign in to the dashboard",
                    principal.role.as_str()
                )))
            }
        };
        Ok(Viewer {
            name: principal.name,
            role: principal.role.as_str().to_string(),
            tenant: principal.tenant,
            can_write,
        })
    }

    async fn timers(&self, viewer: Viewer, query: TimerQuery) -> Result<TimerPage, UiError> {
        let now = self.api.backend.now();
        Ok(self
            .api
            .backend
            .read(move |engine| {
                let views = engine.views();
                TimerPage::build(
                    views
                        .iter()
                        .filter(|v| sees(&viewer, tenant_of(&v.record.def))),
                    &query,
                    now,
                )
            })
            .await)
    }

    async fn timer(&self, viewer: Viewer, name: String) -> Result<TimerDetail, UiError> {
        let id = name.clone();
        type Read = Option<(TimerView, Vec<RunRecord>, Vec<RunRow>)>;
        let read: Read = self
            .api
            .backend
            .read(move |engine| {
                let view = engine.view(&id)?;
                let runs: Vec<RunRecord> = engine
                    .runs()
                    .filter(|r| r.timer_id == id)
                    .cloned()
                    .collect();
                let rows = runs
                    .iter()
                    .map(|r| {
                        let mut row = RunRow::from_run(r);
                        if let Some(lease) = engine.lease(&r.run_id) {
                            row.worker = Some(lease.worker.clone());
                            row.lease_until = Some(lease.until);
                        }
                        row
                    })
                    .collect();
                Some((view, runs, rows))
            })
            .await;
        let Some((view, runs, rows)) = read else {
            return Err(no_timer(&name));
        };
        if !sees(&viewer, tenant_of(&view.record.def)) {
            return Err(no_timer(&name));
        }
        let events = self
            .api
            .backend
            .history(&name, HISTORY_READ)
            .await
            .map_err(UiError::Unavailable)?;
        let time = TimeFormatter {
            now: self.api.backend.now(),
            ..TimeFormatter::system()
        };
        let record: &TimerRecord = &view.record;
        let explanation =
            crate::commands::explain_latest_in_events(Some(record), &runs, &events, &name, &time);
        Ok(TimerDetail::build(
            &view,
            rows,
            &events,
            Some(explanation),
            time.now,
        ))
    }

    async fn activity(&self, viewer: Viewer) -> Result<Activity, UiError> {
        let now = self.api.backend.now();
        let scope = viewer.clone();
        let (mut running, visible) = self
            .api
            .backend
            .read(move |engine| {
                let visible = |timer: &str| {
                    engine
                        .definition(timer)
                        .is_some_and(|d| sees(&scope, tenant_of(&d)))
                };
                let running: Vec<RunRow> = engine
                    .runs()
                    .filter(|r| visible(&r.timer_id))
                    .map(|r| {
                        let mut row = RunRow::from_run(r);
                        if let Some(lease) = engine.lease(&r.run_id) {
                            row.worker = Some(lease.worker.clone());
                            row.lease_until = Some(lease.until);
                        }
                        row
                    })
                    .collect();
                // A tenant's token: the dead runs of its tenant's timers (those defined now).
                let timers: Option<Vec<String>> = scope.tenant.is_some().then(|| {
                    engine
                        .views()
                        .into_iter()
                        .filter(|v| sees(&scope, tenant_of(&v.record.def)))
                        .map(|v| v.record.def.id.to_string())
                        .collect()
                });
                (running, timers)
            })
            .await;
        running.sort_by_key(|r| (r.phase != "running", r.fire_at));
        let page = self
            .api
            .backend
            .events(EventFilter {
                kinds: vec![EventKind::RunDead],
                since: Some(now - DEAD_WINDOW_MS),
                timer_ids: visible,
                limit: Some(DEAD_SHOWN),
                ..EventFilter::default()
            })
            .await
            .map_err(UiError::Unavailable)?;
        Ok(Activity {
            now,
            running,
            dead: page.events.iter().rev().map(DeadRun::from_event).collect(),
            dead_total: page.total,
        })
    }

    async fn cluster(&self, viewer: Viewer) -> Result<ClusterView, UiError> {
        let now = self.api.backend.now();
        let status = self.api.backend.cluster_status();
        let scope = viewer.clone();
        let (held, tenants) = self
            .api
            .backend
            .read(move |engine| {
                let mut held: BTreeMap<String, usize> = BTreeMap::new();
                for (_, lease) in engine.leases() {
                    *held.entry(lease.worker.clone()).or_insert(0) += 1;
                }
                let mut tenants: BTreeMap<Option<String>, usize> = BTreeMap::new();
                for view in engine.views() {
                    let tenant = tenant_of(&view.record.def);
                    if sees(&scope, tenant) {
                        *tenants.entry(tenant.map(str::to_string)).or_insert(0) += 1;
                    }
                }
                (held, tenants)
            })
            .await;
        let workers = self
            .api
            .workers
            .list()
            .into_iter()
            .filter(|w| sees(&viewer, w.tenant.as_deref()))
            .map(|w| WorkerRow {
                runs_held: held.get(&w.worker_id).copied().unwrap_or(0),
                worker_id: w.worker_id,
                tasks: w.tasks,
                last_heartbeat: w.last_seen,
            })
            .collect();
        let leader = status.leader_id.clone();
        Ok(ClusterView {
            now,
            node_id: status.node_id,
            role: status.role,
            term: status.term,
            leader_id: status.leader_id,
            commit_index: status.commit_index,
            applied_index: status.applied_index,
            lag: status.commit_index.saturating_sub(status.applied_index),
            members: status
                .members
                .into_iter()
                .map(|m| MemberRow {
                    role: if Some(&m.member.node_id) == leader.as_ref() {
                        "leader"
                    } else {
                        m.role
                    },
                    node_id: m.member.node_id,
                    http_addr: m.member.http_addr,
                    matched_index: m.matched_index,
                    term: m.matched_term,
                    lag: m.lag,
                })
                .collect(),
            workers,
            tenants: tenants
                .into_iter()
                .map(|(tenant, timers)| TenantRow { tenant, timers })
                .collect(),
        })
    }

    async fn act(&self, viewer: Viewer, action: Action, name: String) -> Result<String, UiError> {
        let id = name.clone();
        let def = self
            .api
            .backend
            .read(move |engine| engine.definition(&id))
            .await;
        match def {
            Some(def) if sees(&viewer, tenant_of(&def)) => {}
            _ => return Err(no_timer(&name)),
        }
        let at = self.api.backend.now();
        let timer = name.clone();
        let input = match action {
            Action::Pause => Input::Pause { at, timer },
            Action::Resume => Input::Resume { at, timer },
            Action::Trigger => Input::Trigger { at, timer },
            Action::Remove => Input::Remove { at, timer },
        };
        match self.api.backend.propose(input).await {
            Ok(Output::Triggered { run }) => Ok(format!("Triggered {name}: run {run} starts now.")),
            Ok(_) => Ok(match action {
                Action::Pause => format!("Paused {name}."),
                Action::Resume => format!("Resumed {name}."),
                Action::Trigger => format!("Triggered {name}."),
                Action::Remove => format!("Removed {name}; its history remains."),
            }),
            Err(WriteError::NotLeader { leader }) => Err(UiError::Unavailable(format!(
                "this node is not the leader{}: act from the leader's dashboard",
                leader
                    .and_then(|l| l.http)
                    .map(|http| format!(" (http://{http}/ui)"))
                    .unwrap_or_default()
            ))),
            Err(WriteError::Rejected(Rejected::Command(CommandError::UnknownTimer(_)))) => {
                Err(no_timer(&name))
            }
            Err(WriteError::Rejected(r)) => Err(UiError::BadRequest(r.to_string())),
            Err(WriteError::Unavailable(why)) => Err(UiError::Unavailable(why)),
        }
    }

    fn audit(&self, record: UiAudit) {
        let entry = AuditEntry {
            actor: record.viewer.as_ref().map(|v| v.name.clone()),
            role: record.viewer.as_ref().map(|v| v.role.clone()),
            tenant: record.viewer.as_ref().and_then(|v| v.tenant.clone()),
            method: record.method,
            path: record.path,
            target: record.target,
            status: record.status,
            decision: if record.status < 400 {
                "allowed"
            } else {
                "refused"
            },
            reason: record.reason,
            ..AuditEntry::at(self.api.backend.now())
        };
        if let Err(e) = self.api.audit.append(&entry) {
            // The answer stands; the operator must see this.
            eprintln!("kron: audit log: {e}");
        }
    }
}
