//! The runtime end to end with a Rust host: durable dispatch, outcomes, restart, the lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kron_core::engine::{Dispatch, Outcome};
use kron_core::event::EventKind;
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::TimerState;
use kron_runtime::{Claims, Host, Job, Kron, LogLevel, ManualClock, RuntimeError};

mod common;
use common::{config, def, wait_until, START};

/// What a callback does.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Succeed,
    Fail,
    /// Succeeds after sleeping this many milliseconds.
    Sleep(u64),
}

struct TestHost {
    calls: Mutex<Vec<Dispatch>>,
    /// When each call began, in call order.
    began: Mutex<Vec<Instant>>,
    logs: Mutex<Vec<String>>,
}

impl TestHost {
    fn new() -> Arc<TestHost> {
        Arc::new(TestHost {
            calls: Mutex::new(Vec::new()),
            began: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
        })
    }
    fn calls(&self) -> Vec<Dispatch> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
    fn call_count(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or_default()
    }
}

impl Host<Behaviour> for TestHost {
    fn invoke(&self, jobs: &[Job<Behaviour>], claims: &Arc<Claims>) -> Vec<Outcome> {
        jobs.iter()
            .take_while(|_| claims.begin())
            .map(|job| {
                if let (Ok(mut calls), Ok(mut began)) = (self.calls.lock(), self.began.lock()) {
                    calls.push(job.dispatch.clone());
                    began.push(Instant::now());
                }
                match job.callback {
                    Behaviour::Succeed => Outcome::Succeeded { duration_ms: 0 },
                    Behaviour::Sleep(ms) => {
                        std::thread::sleep(Duration::from_millis(ms));
                        Outcome::Succeeded { duration_ms: ms }
                    }
                    Behaviour::Fail => Outcome::Failed {
                        error: "Boom: failed".into(),
                        duration_ms: 0,
                    },
                }
            })
            .collect()
    }
    fn log(&self, _level: LogLevel, message: &str) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(message.to_string());
        }
    }
}

/// A scheduler timed by a manual clock at [`START`], and the clock. Time passes only when a test
/// moves it; the threads still need real time to act, hence the polling deadlines below.
fn manual() -> (Kron<Behaviour>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START));
    (Kron::with_clock(clock.clone()), clock)
}

/// Moves the clock `ms` and wakes the scheduler.
fn advance(kron: &Kron<Behaviour>, clock: &ManualClock, ms: i64) {
    clock.advance(ms);
    kron.poke();
}

/// Moves the clock `step_ms` at a time until `done`, for at most `timeout` of real time.
fn advance_until(
    kron: &Kron<Behaviour>,
    clock: &ManualClock,
    step_ms: i64,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    wait_until(timeout, || {
        if done() {
            return true;
        }
        advance(kron, clock, step_ms);
        false
    })
}

#[test]
fn one_shot_runs_once_and_history_is_durable() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, clock) = manual();
    let host = TestHost::new();
    kron.register(
        def("once", ScheduleSpec::After { ms: 100 }, 3),
        Behaviour::Succeed,
    )?;
    kron.start(config(dir.path()), host.clone(), None)?;
    advance(&kron, &clock, 100);
    assert!(wait_until(Duration::from_secs(10), || kron
        .status("once")
        .ok()
        .flatten()
        .is_some_and(|v| v.state == TimerState::Completed)));
    let kinds: Vec<_> = kron
        .history("once", 100)?
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::TimerCreated,
            EventKind::RunDue,
            EventKind::RunStarted,
            EventKind::RunSucceeded
        ]
    );
    kron.shutdown(Duration::from_secs(5));
    // A new runtime on the same directory finds it completed and does not run it again.
    let kron2: Kron<Behaviour> = Kron::with_clock(clock.clone());
    kron2.register(
        def("once", ScheduleSpec::After { ms: 100 }, 3),
        Behaviour::Succeed,
    )?;
    kron2.start(config(dir.path()), host.clone(), None)?;
    advance(&kron2, &clock, 400);
    // Nothing is to happen: give the threads the time a wrong run would take to show.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        kron2.status("once").ok().flatten().map(|v| v.state),
        Some(TimerState::Completed)
    );
    kron2.shutdown(Duration::from_secs(5));
    assert_eq!(host.calls().len(), 1);
    Ok(())
}

#[test]
fn failures_retry_then_dead() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, clock) = manual();
    let host = TestHost::new();
    kron.register(
        def("flaky", ScheduleSpec::After { ms: 10 }, 2),
        Behaviour::Fail,
    )?;
    kron.start(config(dir.path()), host.clone(), None)?;
    // The retry waits a backoff of about a second.
    assert!(advance_until(
        &kron,
        &clock,
        250,
        Duration::from_secs(15),
        || kron
            .status("flaky")
            .ok()
            .flatten()
            .is_some_and(|v| v.state == TimerState::Dead)
    ));
    let attempts: Vec<_> = host.calls().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, vec![1, 2]);
    let history = kron.history("flaky", 100)?;
    assert_eq!(
        history.last().map(|e| e.event.kind),
        Some(EventKind::RunDead)
    );
    kron.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn a_second_runtime_on_the_directory_is_refused() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let a: Kron<Behaviour> = Kron::new();
    let b: Kron<Behaviour> = Kron::new();
    a.start(config(dir.path()), TestHost::new(), None)?;
    match b.start(config(dir.path()), TestHost::new(), None) {
        Err(RuntimeError::Store(kron_store::StoreError::Locked { pid, .. })) => {
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        a.start(config(dir.path()), TestHost::new(), None),
        Err(RuntimeError::AlreadyStarted(_))
    ));
    a.shutdown(Duration::from_secs(5));
    // Released: now b can start.
    b.start(config(dir.path()), TestHost::new(), None)?;
    b.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn registrations_while_running_are_scheduled_and_persisted() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, clock) = manual();
    let host = TestHost::new();
    kron.start(config(dir.path()), host.clone(), None)?;
    for i in 0..200 {
        kron.register(
            def(&format!("t{i:03}"), ScheduleSpec::After { ms: 50 }, 1),
            Behaviour::Succeed,
        )?;
    }
    advance(&kron, &clock, 50);
    assert!(wait_until(Duration::from_secs(10), || host.calls().len() == 200));
    kron.shutdown(Duration::from_secs(5));
    let reader = kron_store::Reader::open(dir.path())?;
    let timers = reader.timers()?;
    assert_eq!(timers.len(), 200);
    assert!(timers.iter().all(|t| t.run_count == 1));
    Ok(())
}

/// With a history limit, retention runs while timers fire, a slice of timers at a time between
/// commits, and covers every timer (more than one slice's worth here).
#[test]
fn history_limit_is_applied_while_running() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, clock) = manual();
    let host = TestHost::new();
    let timers = 300;
    for i in 0..timers {
        kron.register(
            def(&format!("t{i:03}"), ScheduleSpec::Every { ms: 200 }, 1),
            Behaviour::Succeed,
        )?;
    }
    let mut cfg = config(dir.path());
    cfg.history_limit = Some(2);
    cfg.retention_every_events = 3_000;
    kron.start(cfg, host.clone(), None)?;
    let passes = || {
        host.logs
            .lock()
            .map(|logs| {
                logs.iter()
                    .filter(|l| l.starts_with("history limit 2: removed"))
                    .count()
            })
            .unwrap_or(0)
    };
    // Each step of the clock makes every timer due once more. Retention rests, polls and yields
    // to commits in real time, so the load it must keep up with is paced in real time too: the
    // next step comes once every timer ran at the last one and 200 ms after it, the load of 300
    // timers firing every 200 ms (driven faster, history grows faster than it can be trimmed).
    let mut steps = 0;
    let mut last_step = Instant::now();
    assert!(
        wait_until(Duration::from_secs(120), || {
            if passes() >= 3 {
                return true;
            }
            if host.call_count() >= timers * steps
                && last_step.elapsed() >= Duration::from_millis(200)
            {
                advance(&kron, &clock, 200);
                last_step = Instant::now();
                steps += 1;
            }
            false
        }),
        "retention passes: {}",
        passes()
    );
    kron.shutdown(Duration::from_secs(5));
    let reader = kron_store::Reader::open(dir.path())?;
    let mut runs = 0;
    let mut kept = 0;
    for timer in reader.timers()? {
        let history = reader.history(&timer.def.id, 100_000)?;
        runs += timer.run_count;
        kept += history
            .iter()
            .filter(|e| e.event.kind == EventKind::RunDue)
            .count() as u64;
        // Every timer was reached: its first runs are gone.
        assert!(
            history[0].event.kind != EventKind::TimerCreated,
            "{} kept everything",
            timer.def.id
        );
    }
    assert!(kept * 2 < runs, "kept {kept} of {runs} runs");
    Ok(())
}

#[test]
fn shutdown_is_quick_when_idle_and_safe_twice() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, _clock) = manual();
    kron.register(
        def("far", ScheduleSpec::Every { ms: 3_600_000 }, 1),
        Behaviour::Succeed,
    )?;
    kron.start(config(dir.path()), TestHost::new(), None)?;
    let started = Instant::now();
    let report = kron.shutdown(Duration::from_secs(5));
    assert!(report.was_running);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!kron.shutdown(Duration::from_secs(5)).was_running);
    // Status still answers from the last runtime.
    assert_eq!(
        kron.status("far").ok().flatten().map(|v| v.state),
        Some(TimerState::Scheduled)
    );
    Ok(())
}

#[test]
fn commands_reach_the_engine() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, _clock) = manual();
    let host = TestHost::new();
    kron.register(
        def("cmd", ScheduleSpec::Every { ms: 3_600_000 }, 1),
        Behaviour::Succeed,
    )?;
    assert!(matches!(
        kron.pause("cmd"),
        Err(RuntimeError::NotStarted(_))
    ));
    kron.start(config(dir.path()), host.clone(), None)?;
    kron.trigger("cmd")?;
    assert!(wait_until(Duration::from_secs(10), || host.calls().len() == 1));
    kron.pause("cmd")?;
    assert_eq!(
        kron.status("cmd").ok().flatten().map(|v| v.state),
        Some(TimerState::Paused)
    );
    kron.resume("cmd")?;
    kron.remove("cmd")?;
    assert!(kron.status("cmd").ok().flatten().is_none());
    assert!(matches!(kron.pause("cmd"), Err(RuntimeError::Command(_))));
    let count = AtomicUsize::new(0);
    for e in kron.history("cmd", 100)? {
        if e.event.kind == EventKind::TimerRemoved {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 1);
    kron.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn a_timer_registered_after_a_removal_runs_its_own_callback() -> Result<(), RuntimeError> {
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, _clock) = manual();
    let host = TestHost::new();
    kron.start(config(dir.path()), host.clone(), None)?;
    let hour = ScheduleSpec::Every { ms: 3_600_000 };
    kron.register(def("old", hour.clone(), 1), Behaviour::Fail)?;
    kron.remove("old")?;
    // The new timer takes the removed one's slot; its callback, not the old one's (nor none),
    // runs.
    kron.register(def("new", hour, 1), Behaviour::Succeed)?;
    kron.trigger("new")?;
    // Until the attempt's outcome is recorded (status counts a running attempt as a run too).
    assert!(wait_until(Duration::from_secs(10), || {
        kron.status("new")
            .ok()
            .flatten()
            .is_some_and(|v| v.record.last_status.is_some())
    }));
    let view = kron.status("new").ok().flatten().expect("status of new");
    assert_eq!(view.record.run_count, 1);
    assert_eq!(
        view.record.failure_count, 0,
        "{:?}",
        view.record.last_status
    );
    assert_eq!(host.calls().len(), 1);
    kron.shutdown(Duration::from_secs(5));
    Ok(())
}

#[test]
fn no_callback_begins_after_shutdown_and_the_ones_not_begun_run_at_the_next_start(
) -> Result<(), RuntimeError> {
    const TIMERS: usize = 600;
    let dir = tempfile::tempdir().map_err(RuntimeError::Thread)?;
    let (kron, clock) = manual();
    let host = TestHost::new();
    let at = START + 300;
    let ids: Vec<String> = (0..TIMERS).map(|i| format!("burst-{i:03}")).collect();
    for id in &ids {
        let schedule = ScheduleSpec::at_ms(at);
        kron.register(def(id, schedule, 3), Behaviour::Sleep(5))?;
    }
    kron.start(config(dir.path()), host.clone(), None)?;
    advance(&kron, &clock, 300);
    // 600 callbacks of 5 ms on 2 workers take 1.5 s: shutdown comes in the middle.
    assert!(wait_until(Duration::from_secs(20), || host.calls().len() >= 20));
    let report = kron.shutdown(Duration::from_millis(500));
    let returned = Instant::now();
    assert_eq!(
        report.abandoned, 0,
        "5 ms callbacks finish within the timeout"
    );
    let began_before = host.began.lock().map(|b| b.clone()).unwrap_or_default();
    assert!(began_before.iter().all(|t| *t <= returned));
    std::thread::sleep(Duration::from_millis(300));
    let first_calls = host.calls();
    assert_eq!(
        first_calls.len(),
        began_before.len(),
        "a callback began after shutdown returned"
    );
    assert!(
        first_calls.len() < TIMERS,
        "shutdown came before the burst ended"
    );

    // The next start runs exactly the ones that did not begin, as attempt 1.
    let again: Kron<Behaviour> = Kron::with_clock(clock.clone());
    let host2 = TestHost::new();
    for id in &ids {
        let schedule = ScheduleSpec::at_ms(at);
        again.register(def(id, schedule, 3), Behaviour::Succeed)?;
    }
    again.start(config(dir.path()), host2.clone(), None)?;
    assert!(wait_until(Duration::from_secs(20), || ids.iter().all(
        |id| again
            .status(id)
            .ok()
            .flatten()
            .is_some_and(|v| v.state == TimerState::Completed)
    )));
    let mut ran: Vec<String> = first_calls
        .iter()
        .chain(host2.calls().iter())
        .map(|d| d.timer_id.clone())
        .collect();
    ran.sort();
    assert_eq!(ran, ids, "every occurrence ran exactly once");
    assert!(host2.calls().iter().all(|d| d.attempt == 1));
    let not_begun = &host2.calls()[0].timer_id;
    let kinds: Vec<(EventKind, Option<u32>)> = again
        .history(not_begun, 100)?
        .into_iter()
        .filter(|e| e.event.run_id.is_some())
        .map(|e| (e.event.kind, e.event.attempt))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::RunDue, Some(1)),
            (EventKind::RunStarted, Some(1)),
            (EventKind::RunNotStarted, Some(1)),
            (EventKind::RunStarted, Some(1)),
            (EventKind::RunSucceeded, Some(1)),
        ]
    );
    again.shutdown(Duration::from_secs(5));
    Ok(())
}
