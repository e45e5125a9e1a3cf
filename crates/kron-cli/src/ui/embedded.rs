//! The dashboard of a data directory (`kron ui`): reads through [`kron_store::Reader`] (live or
//! stopped, never taking the lock), acts through the live runtime's control channel. Reading
//! needs no login (the listener is on loopback by default); acting needs the runtime's control
//! token, the same secret the `kron` command line presents.

use std::sync::Arc;

use kron_core::admin::{ControlReply, ControlRequest, RefusalKind, TimerOp, TOKEN_FILE};
use kron_core::engine::{Engine, EngineConfig};
use kron_core::event::EventKind;
use kron_store::{EventFilter, Reader};
use kron_ui::model::{
    Activity, ClusterView, DeadRun, RunRow, TimerDetail, TimerPage, TimerQuery, DEAD_SHOWN,
    DEAD_WINDOW_MS,
};
use kron_ui::{Action, Dashboard, Mode, UiAudit, UiError, Viewer};

use super::{blocking, unavailable};
use crate::data::DataDir;
use crate::live::{self, ControlError};
use crate::output::timefmt::TimeFormatter;

/// How many of a timer's latest events its page reads.
pub const HISTORY_READ: usize = 300;

/// A data directory as the dashboard sees it.
#[derive(Debug, Clone)]
pub struct Embedded {
    dir: Arc<DataDir>,
}

impl Embedded {
    pub fn new(dir: DataDir) -> Embedded {
        Embedded { dir: Arc::new(dir) }
    }

    fn reader(dir: &DataDir) -> Result<Reader, UiError> {
        dir.reader().map_err(unavailable)
    }
}

/// Constant-time comparison: the control token is a secret.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Dashboard for Embedded {
    fn mode(&self) -> Mode {
        Mode::Embedded
    }

    fn anonymous(&self) -> Option<Viewer> {
        Some(Viewer {
            name: "local".to_string(),
            role: "viewer".to_string(),
            tenant: None,
            can_write: false,
        })
    }

    fn sign_in(&self, token: &str) -> Result<Viewer, UiError> {
        let path = self.dir.path.join(TOKEN_FILE);
        let expected = std::fs::read_to_string(&path).map_err(|_| {
            UiError::Unauthorized(format!(
                "no runtime is running on {} (no control token to sign in with)",
                self.dir.display()
            ))
        })?;
        if token.is_empty() || !same_secret(token.trim(), expected.trim()) {
            return Err(UiError::Unauthorized(format!(
                "not the control token of the runtime on {}",
                self.dir.display()
            )));
        }
        Ok(Viewer {
            name: "control token".to_string(),
            role: "operator".to_string(),
            tenant: None,
            can_write: true,
        })
    }

    async fn timers(&self, _viewer: Viewer, query: TimerQuery) -> Result<TimerPage, UiError> {
        let dir = self.dir.clone();
        blocking(move || {
            let reader = Self::reader(&dir)?;
            let now = TimeFormatter::system().now;
            let stored = crate::data::directory_view(&reader).map_err(unavailable)?;
            Ok(TimerPage::build(&stored.views, &query, now))
        })
        .await
    }

    async fn timer(&self, _viewer: Viewer, name: String) -> Result<TimerDetail, UiError> {
        let dir = self.dir.clone();
        blocking(move || {
            let reader = Self::reader(&dir)?;
            let time = TimeFormatter::system();
            let (record, runs, events) = {
                let _pinned = reader.pin().map_err(|e| unavailable(e.into()))?;
                let record = reader.timer(&name).map_err(|e| unavailable(e.into()))?;
                let runs: Vec<_> = reader
                    .runs()
                    .map_err(|e| unavailable(e.into()))?
                    .into_iter()
                    .filter(|r| r.timer_id == name)
                    .collect();
                let events = reader
                    .history(&name, HISTORY_READ)
                    .map_err(|e| unavailable(e.into()))?;
                (record, runs, events)
            };
            let Some(record) = record else {
                return Err(UiError::NotFound(format!(
                    "no timer named {name:?} in {}",
                    dir.display()
                )));
            };
            // The engine derives the view (state, next run) from the record and its runs, as
            // the runtime does.
            let engine = Engine::restored(EngineConfig::default(), 0, vec![record], runs.clone())
                .map_err(|e| {
                UiError::Unavailable(format!("a stored timer cannot be read: {e}"))
            })?;
            let view = engine
                .view(&name)
                .ok_or_else(|| UiError::NotFound(format!("no timer named {name:?}")))?;
            let explanation =
                crate::commands::explain_latest_in_store(&reader, &name, dir.is_live(), &time).ok();
            let in_flight = runs.iter().map(RunRow::from_run).collect();
            Ok(TimerDetail::build(
                &view,
                in_flight,
                &events,
                explanation,
                time.now,
            ))
        })
        .await
    }

    async fn activity(&self, _viewer: Viewer) -> Result<Activity, UiError> {
        let dir = self.dir.clone();
        blocking(move || {
            let reader = Self::reader(&dir)?;
            let now = TimeFormatter::system().now;
            let mut running: Vec<RunRow> = reader
                .runs()
                .map_err(|e| unavailable(e.into()))?
                .iter()
                .map(RunRow::from_run)
                .collect();
            running.sort_by_key(|r| (r.phase != "running", r.fire_at));
            let filter = EventFilter {
                kinds: vec![EventKind::RunDead],
                since: Some(now - DEAD_WINDOW_MS),
                limit: Some(DEAD_SHOWN),
                ..Default::default()
            };
            let (dead, dead_total) = {
                let _pinned = reader.pin().map_err(|e| unavailable(e.into()))?;
                let dead = reader.events(&filter).map_err(|e| unavailable(e.into()))?;
                let total = reader
                    .count_events(&filter)
                    .map_err(|e| unavailable(e.into()))?;
                (dead, total)
            };
            Ok(Activity {
                now,
                running,
                dead: dead.iter().rev().map(DeadRun::from_event).collect(),
                dead_total,
            })
        })
        .await
    }

    async fn cluster(&self, _viewer: Viewer) -> Result<ClusterView, UiError> {
        Err(UiError::NotFound(
            "an embedded data directory has no cluster (that is server mode)".to_string(),
        ))
    }

    async fn act(&self, _viewer: Viewer, action: Action, name: String) -> Result<String, UiError> {
        let dir = self.dir.clone();
        blocking(move || {
            if !dir.is_live() {
                return Err(UiError::Unavailable(format!(
                    "no runtime is running on {}: actions go to the live runtime",
                    dir.display()
                )));
            }
            let op = match action {
                Action::Pause => TimerOp::Pause,
                Action::Resume => TimerOp::Resume,
                Action::Trigger => TimerOp::Trigger,
                Action::Remove => TimerOp::Remove,
            };
            let request = ControlRequest::timer(op, name.as_str());
            match live::send(&dir.path, &request, live::DEFAULT_WAIT) {
                Ok(ControlReply::Triggered { run_id }) => {
                    Ok(format!("Triggered {name}: run {run_id} starts now."))
                }
                Ok(_) => Ok(match action {
                    Action::Pause => format!("Paused {name}."),
                    Action::Resume => format!("Resumed {name}."),
                    Action::Trigger => format!("Triggered {name}."),
                    Action::Remove => format!("Removed {name}; its history remains."),
                }),
                Err(ControlError::Refused {
                    kind: RefusalKind::UnknownTimer,
                    ..
                }) => Err(UiError::NotFound(format!("no timer named {name:?}"))),
                Err(ControlError::Refused { error, .. }) => Err(UiError::BadRequest(format!(
                    "the runtime refused: {}",
                    crate::error::one_line(&error)
                ))),
                Err(ControlError::Unreachable(why)) => Err(UiError::Unavailable(why)),
                Err(ControlError::Unknown(why)) => Err(UiError::Unavailable(format!(
                    "{why}; the outcome is unknown: check the timer before trying again"
                ))),
            }
        })
        .await
    }

    fn audit(&self, record: UiAudit) {
        // No audit log exists in embedded mode: the `kron ui` process reports every decision
        // on standard error; what an action changed is in the timer's history too.
        let line = serde_json::json!({
            "ui": "audit",
            "actor": record.viewer.as_ref().map(|v| v.name.clone()),
            "method": record.method,
            "path": record.path,
            "target": record.target,
            "status": record.status,
            "decision": if record.status < 400 { "allowed" } else { "refused" },
            "reason": record.reason,
        });
        eprintln!("{line}");
    }
}
