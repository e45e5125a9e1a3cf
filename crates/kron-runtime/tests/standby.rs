//! Standby runtimes in one process: two schedulers on one directory, the second waits and takes
//! over when the first releases it. (Take-over after a process dies is proven by the Python
//! tests, which kill real processes.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kron_core::engine::{Dispatch, Outcome};
use kron_core::event::EventKind;
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{TimerDef, TimerState};
use kron_runtime::{Admin, Claims, Host, Job, Kron, LogLevel, ManualClock, Role, RuntimeError};

mod common;
use common::{config, def, wait_until, START};

/// Records what ran; every callback succeeds.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Dispatch>>,
    logs: Mutex<Vec<String>>,
}

impl Recorder {
    fn calls(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or_default()
    }
}

impl Host<()> for Recorder {
    fn invoke(&self, jobs: &[Job<()>], claims: &Arc<Claims>) -> Vec<Outcome> {
        jobs.iter()
            .take_while(|_| claims.begin())
            .map(|job| {
                if let Ok(mut calls) = self.calls.lock() {
                    calls.push(job.dispatch.clone());
                }
                Outcome::Succeeded { duration_ms: 0 }
            })
            .collect()
    }
    fn log(&self, _level: LogLevel, message: &str) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(message.to_string());
        }
    }
}

/// A process-wide scheduler (a standby's waiting thread outlives the call that started it).
fn leaked(clock: &Arc<ManualClock>) -> &'static Kron<()> {
    Box::leak(Box::new(Kron::with_clock(clock.clone())))
}

fn every(id: &str, ms: u64) -> TimerDef {
    def(id, ScheduleSpec::Every { ms }, 3)
}

#[test]
fn a_standby_waits_reads_the_store_forwards_commands_and_takes_over() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let clock = Arc::new(ManualClock::new(START));
    let (owner, standby) = (leaked(&clock), leaked(&clock));
    let (owner_host, standby_host) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));

    owner.register(every("tick", 60_000), ())?;
    let admin: Arc<dyn Admin> = Arc::new(owner);
    assert_eq!(
        owner.start_or_standby(config(dir.path()), owner_host.clone(), Some(admin))?,
        Role::Active
    );
    standby.register(every("tick", 30_000), ())?;
    standby.register(every("only-in-standby", 60_000), ())?;
    let role = standby.start_or_standby(config(dir.path()), standby_host.clone(), None)?;
    assert_eq!(role, Role::Standby);

    let info = standby.runtime_info();
    assert_eq!(info.role, Role::Standby);
    assert_eq!(info.since, Some(START));
    assert_eq!(info.active_pid, Some(std::process::id()));
    assert_eq!(info.standbys.len(), 1);
    assert!(standby.is_running());
    assert!(matches!(
        standby.start_or_standby(config(dir.path()), standby_host.clone(), None),
        Err(RuntimeError::AlreadyStarted(_))
    ));

    // Reads come from the store: the owner's definition, not the standby's own.
    assert!(wait_until(Duration::from_secs(10), || {
        standby
            .status("tick")
            .ok()
            .flatten()
            .is_some_and(|v| v.schedule.contains("1m"))
    }));
    assert!(standby.status("only-in-standby")?.is_none());
    assert_eq!(standby.list()?.len(), 1);

    // Commands reach the owner through its control socket.
    standby.pause("tick")?;
    assert_eq!(
        owner.status("tick")?.map(|v| v.state),
        Some(TimerState::Paused)
    );
    standby.resume("tick")?;
    let run = standby.trigger("tick")?;
    assert!(wait_until(Duration::from_secs(10), || owner_host.calls() == 1));
    assert!(matches!(
        standby.pause("nope"),
        Err(RuntimeError::Command(
            kron_core::CommandError::UnknownTimer(_)
        ))
    ));
    assert_eq!(standby_host.calls(), 0);

    // The owner goes; the standby takes over with its own definitions and functions.
    owner.shutdown(Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(10), || {
        standby.runtime_info().role == Role::Active
    }));
    let info = standby.runtime_info();
    assert_eq!(info.active_pid, Some(std::process::id()));
    assert!(info.standbys.is_empty());
    assert!(info.error.is_none());
    let tick = standby.status("tick")?.expect("tick after take-over");
    assert!(tick.schedule.contains("30s"), "{}", tick.schedule);
    assert!(standby.status("only-in-standby")?.is_some());
    let history = standby.history("tick", 100)?;
    assert!(history
        .iter()
        .any(|e| e.event.kind == EventKind::TimerUpdated));
    assert!(history
        .iter()
        .any(|e| e.event.kind == EventKind::RunSucceeded && e.event.run_id.as_ref() == Some(&run)));
    // Logged right after the role changes, from the thread that took over.
    assert!(wait_until(Duration::from_secs(10), || {
        standby_host
            .logs
            .lock()
            .map(|logs| logs.iter().any(|l| l.contains("took over")))
            .unwrap_or(false)
    }));

    // Due runs are now the new owner's.
    clock.advance(30_000);
    standby.poke();
    assert!(wait_until(Duration::from_secs(10), || standby_host.calls() >= 1));
    standby.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn a_standby_shut_down_never_takes_over() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let clock = Arc::new(ManualClock::new(START));
    let (owner, standby, third) = (leaked(&clock), leaked(&clock), leaked(&clock));
    let host = Arc::new(Recorder::default());
    owner.start(config(dir.path()), host.clone(), None)?;
    assert_eq!(
        standby.start_or_standby(config(dir.path()), host.clone(), None)?,
        Role::Standby
    );
    let report = standby.shutdown(Duration::from_secs(1));
    assert!(report.was_running);
    assert_eq!(standby.runtime_info().role, Role::Stopped);
    assert!(!standby.is_running());
    assert!(standby.runtime_info().standbys.is_empty());
    // Its waiting thread is still blocked on the lock; when the owner goes it must let the lock
    // go to a live standby.
    assert_eq!(
        third.start_or_standby(config(dir.path()), host.clone(), None)?,
        Role::Standby
    );
    owner.shutdown(Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(10), || {
        third.runtime_info().role == Role::Active
    }));
    assert_eq!(standby.runtime_info().role, Role::Stopped);
    third.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn without_a_reachable_owner_a_standby_command_fails_clearly() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let clock = Arc::new(ManualClock::new(START));
    let (owner, standby) = (leaked(&clock), leaked(&clock));
    let host = Arc::new(Recorder::default());
    owner.register(every("tick", 60_000), ())?;
    // No control socket: the owner cannot be reached.
    owner.start(config(dir.path()), host.clone(), None)?;
    standby.start_or_standby(config(dir.path()), host.clone(), None)?;
    match standby.pause("tick") {
        Err(RuntimeError::Unreachable(why)) => {
            assert!(why.contains("standby"), "{why}");
            assert!(why.contains("nothing was changed"), "{why}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(
        owner.status("tick")?.map(|v| v.state),
        Some(TimerState::Scheduled)
    );
    standby.shutdown(Duration::from_secs(1));
    owner.shutdown(Duration::from_secs(5));
    Ok(())
}
