//! Standby runtimes: a process that wants a data directory another process owns waits for it.
//!
//! `Kron::start_or_standby` starts as usual when the directory is free. When another process
//! owns it, this process becomes a *standby*: it announces itself ([`StandbyMark`]) and a thread
//! waits, blocked in the kernel on the directory's writer lock ([`DirLock::wait`]), which costs
//! no CPU and wakes the moment the owner closes the directory or dies (the operating system
//! releases the lock with the process, `SIGKILL` included). The standby then starts exactly as
//! `start` would, with the timers this process registered: recovery records the runs the dead
//! owner left as interrupted and retries them, as after any crash.
//!
//! Meanwhile status, list and history read the store the owner writes, and commands are sent to
//! the owner through the control socket, as the command line sends them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kron_core::admin::{ControlReply, ControlRequest, RefusalKind, TimerOp};
use kron_core::engine::TimerView;
use kron_core::run::RunId;
use kron_core::CommandError;
use kron_store::{
    is_locked, list_standbys, read_owner, DirLock, DurableEngine, LockOwner, OpenError, Reader,
    StandbyMark, StoreError,
};

use crate::config::RuntimeConfig;
use crate::control::Admin;
use crate::control_client::{self, ControlError};
use crate::error::RuntimeError;
use crate::host::{Host, LogLevel};
use crate::kron::Kron;

/// How long a command sent to the active runtime may take to be answered.
const FORWARD_WAIT: Duration = Duration::from_secs(10);

/// What this process's runtime is for its data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It owns the directory and runs the timers.
    Active,
    /// Another process owns the directory; this one takes over when it goes.
    Standby,
    /// Not started, or shut down.
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Stopped => "stopped",
        }
    }
}

/// What `Kron::runtime_info` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub role: Role,
    /// When this process became active or standby (ms since the epoch).
    pub since: Option<i64>,
    pub data_dir: Option<PathBuf>,
    /// The process that owns the directory now, as `kron.lock` names it.
    pub active_pid: Option<u32>,
    /// The live standbys of the directory (this process included when it is one).
    pub standbys: Vec<LockOwner>,
    /// Why the last take-over failed (the standby then stopped).
    pub error: Option<String>,
}

/// A standby in wait.
pub(crate) struct Standby {
    pub(crate) since: i64,
    pub(crate) data_dir: PathBuf,
    /// Set when the standby is shut down: a lock granted afterwards is released unused.
    cancelled: Arc<AtomicBool>,
    _mark: StandbyMark,
}

impl Standby {
    /// Stops waiting for good. Called under the runtime's state lock, which the waiting thread
    /// takes before it acts on a granted lock, so it cannot take over after this.
    pub(crate) fn cancel(self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}

impl<C: Clone + Send + Sync + 'static> Kron<C> {
    /// Starts like [`Kron::start`] when the data directory is free. When another process owns
    /// it, starts as a standby instead and returns at once: this process runs nothing until the
    /// owner releases the directory or dies, then takes over with the timers registered here.
    pub fn start_or_standby<H: Host<C>>(
        &'static self,
        config: RuntimeConfig,
        host: Arc<H>,
        admin: Option<Arc<dyn Admin>>,
    ) -> Result<Role, RuntimeError> {
        let mut state = self.state();
        Self::check_can_start(&state, &config)?;
        let now = self.now();
        // Owned already: no need to try for the ~200 ms `open` gives a lock that a reader's
        // probe may hold for an instant; if that was all, the waiting thread gets it at once.
        if !is_locked(&config.data_dir) {
            match DurableEngine::open(
                &config.data_dir,
                config.durability,
                config.engine.clone(),
                now,
            ) {
                Ok(durable) => {
                    self.run(&mut state, durable, now, config, host, admin)?;
                    return Ok(Role::Active);
                }
                // Taken meanwhile.
                Err(OpenError::Store(StoreError::Locked { .. })) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mark = StandbyMark::announce(&config.data_dir)?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let data_dir = config.data_dir.clone();
        let waiting = cancelled.clone();
        std::thread::Builder::new()
            .name("kron-standby".to_string())
            .spawn(move || self.take_over(config, host, admin, &waiting))
            .map_err(RuntimeError::Thread)?;
        state.standby = Some(Standby {
            since: now,
            data_dir: data_dir.clone(),
            cancelled,
            _mark: mark,
        });
        state.data_dir = Some(data_dir);
        state.takeover_error = None;
        Ok(Role::Standby)
    }

    /// The standby's thread: waits for the directory, then starts on it.
    fn take_over<H: Host<C>>(
        &'static self,
        config: RuntimeConfig,
        host: Arc<H>,
        admin: Option<Arc<dyn Admin>>,
        cancelled: &AtomicBool,
    ) {
        let dir = config.data_dir.clone();
        let waited = DirLock::wait(&dir);
        // Under the state lock, which shutdown takes to cancel: either this standby was
        // cancelled before, or it takes over (or fails) before shutdown can look.
        let mut state = self.state();
        if cancelled.load(Ordering::SeqCst) {
            // Shut down while waiting: a granted lock goes (dropped) to the next standby.
            return;
        }
        let started = waited.map_err(RuntimeError::from).and_then(|lock| {
            let now = self.now();
            let durable = DurableEngine::open_locked(
                &dir,
                lock,
                config.durability,
                config.engine.clone(),
                now,
            )?;
            self.run(&mut state, durable, now, config, host.clone(), admin)
        });
        // Active, or failed: either way no longer waiting (the mark goes).
        state.standby = None;
        let (level, message) = match started {
            Ok(()) => (
                LogLevel::Info,
                format!(
                    "took over {} (pid {}): the process that owned it is gone",
                    dir.display(),
                    std::process::id()
                ),
            ),
            Err(e) => {
                let message = format!(
                    "this standby (pid {}) could not take over {}: {e}; it stopped waiting",
                    std::process::id(),
                    dir.display()
                );
                state.takeover_error = Some(e.to_string());
                (LogLevel::Error, message)
            }
        };
        drop(state);
        host.log(level, &message);
    }

    /// In a standby, every timer's view as the store holds it now; `None` otherwise.
    pub(crate) fn standby_views(&self) -> Result<Option<Vec<TimerView>>, RuntimeError> {
        let dir = match &self.state().standby {
            Some(standby) => standby.data_dir.clone(),
            None => return Ok(None),
        };
        // A reader per call: one held open would keep the owner from leaving the directory as a
        // single file when it closes.
        let stored = Reader::open(&dir)?.views()?;
        Ok(Some(stored.views))
    }

    /// In a standby, sends `op` to the active runtime and answers its outcome; `None` when this
    /// process is not a standby (the caller acts itself), including when it took over meanwhile.
    pub(crate) fn forward(
        &self,
        op: TimerOp,
        id: &str,
    ) -> Option<Result<Option<RunId>, RuntimeError>> {
        let dir = self.state().standby.as_ref()?.data_dir.clone();
        let request = ControlRequest::timer(op, id);
        match control_client::send(&dir, &request, FORWARD_WAIT) {
            Ok(ControlReply::Triggered { run_id }) => Some(Ok(Some(run_id))),
            Ok(_) => Some(Ok(None)),
            Err(ControlError::Refused { kind, error }) => Some(Err(match kind {
                RefusalKind::UnknownTimer => CommandError::UnknownTimer(id.to_string()).into(),
                RefusalKind::NotRunnable => CommandError::NotRunnable {
                    id: id.to_string(),
                    reason: "the active runtime has no function for it",
                }
                .into(),
                _ => RuntimeError::Unreachable(format!(
                    "the active runtime of {} refused to {} {id:?}: {error}",
                    dir.display(),
                    op.as_str()
                )),
            })),
            // The owner went and this process took over meanwhile: act here.
            Err(ControlError::Unreachable(_)) if self.state().running.is_some() => None,
            Err(ControlError::Unreachable(why)) => Some(Err(RuntimeError::Unreachable(format!(
                "this process is a standby and the active runtime could not be reached: {why}"
            )))),
            Err(ControlError::Unknown(why)) => Some(Err(RuntimeError::Unreachable(format!(
                "this process is a standby: {why}; the active runtime may have carried it out"
            )))),
        }
    }

    /// Whether this process is active or standby, since when, and who owns the directory.
    pub fn runtime_info(&self) -> RuntimeInfo {
        let state = self.state();
        let (role, since) = match (&state.running, &state.standby) {
            (Some(running), _) => (Role::Active, Some(running.started_at)),
            (None, Some(standby)) => (Role::Standby, Some(standby.since)),
            (None, None) => (Role::Stopped, None),
        };
        let data_dir = state.data_dir.clone();
        let error = state.takeover_error.clone();
        drop(state);
        let active_pid = match role {
            Role::Active => Some(std::process::id()),
            _ => data_dir.as_deref().and_then(owner_pid),
        };
        let standbys = data_dir.as_deref().map(list_standbys).unwrap_or_default();
        RuntimeInfo {
            role,
            since,
            data_dir,
            active_pid,
            standbys,
            error,
        }
    }

    /// The pid of the process that owns this runtime's directory now: this one while active.
    pub fn active_pid(&self) -> Option<u32> {
        let state = self.state();
        if state.running.is_some() {
            return Some(std::process::id());
        }
        let dir = state.data_dir.clone()?;
        drop(state);
        owner_pid(&dir)
    }
}

/// The owner's pid when a live process holds the directory's lock.
fn owner_pid(dir: &std::path::Path) -> Option<u32> {
    if !is_locked(dir) {
        return None;
    }
    read_owner(dir).map(|owner| owner.pid)
}
