//! Engine tests: a fake clock (plain integers) drives retries, overlap, catch-up, recovery and
//! commands in microseconds of real time.

use super::*;
use crate::event::EventKind as K;
use crate::schedule::ScheduleSpec;
use crate::timer::{Catchup, Overlap, TimerDef, TimerState};

/// The instant the engine tests start at (shared by the other engine test modules).
pub(super) const T0: EpochMs = 1_800_000_000_000;

/// A timer definition with the tests' usual settings (`delay`, 3 attempts, catch-up once).
pub(crate) fn def(id: &str, schedule: ScheduleSpec) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule,
        timezone: "UTC".into(),
        max_attempts: 3,
        overlap: Overlap::Delay,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: "app.job".into(),
        task: None,
    }
}

pub(super) fn every(id: &str, ms: u64) -> TimerDef {
    def(id, ScheduleSpec::Every { ms })
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), 42)
}

fn kinds(changes: &Changes) -> Vec<K> {
    changes.events.iter().map(|e| e.kind).collect()
}

/// Polls at each instant from `from` to `to` in `step` ms, succeeding every dispatched run at
/// once; returns (dispatch time, dispatch) pairs.
fn run_until(e: &mut Engine, from: EpochMs, to: EpochMs, step: i64) -> Vec<(EpochMs, Dispatch)> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        for d in e.poll(now, usize::MAX) {
            e.finish(&d.run_id, Outcome::Succeeded { duration_ms: 0 }, now);
            out.push((now, d));
        }
        now += step;
    }
    out
}

#[test]
fn register_creates_once_and_same_definition_is_unchanged() {
    let mut e = engine();
    assert_eq!(
        e.register(every("a", 60_000), T0).ok(),
        Some(Registered::Created)
    );
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::TimerCreated]);
    assert_eq!(c.timers.len(), 1);
    assert!(c.timer_states.is_empty());
    assert_eq!(c.timers[0].next_fire_at, Some(T0 + 60_000));
    assert_eq!(
        e.register(every("a", 60_000), T0 + 5_000).ok(),
        Some(Registered::Unchanged)
    );
    assert!(e.take_changes().events.is_empty());
    assert_eq!(e.view("a").and_then(|v| v.next_run_at), Some(T0 + 60_000));
}

#[test]
fn changed_definition_is_updated_and_recomputed() {
    let mut e = engine();
    e.register(every("a", 60_000), T0).ok();
    e.take_changes();
    assert_eq!(
        e.register(every("a", 10_000), T0 + 1_000).ok(),
        Some(Registered::Updated)
    );
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::TimerUpdated]);
    assert_eq!(e.view("a").and_then(|v| v.next_run_at), Some(T0 + 11_000));
    // Only max_attempts changed: updated, but the next run stands.
    let mut d = every("a", 10_000);
    d.max_attempts = 5;
    assert_eq!(e.register(d, T0 + 2_000).ok(), Some(Registered::Updated));
    assert_eq!(e.view("a").and_then(|v| v.next_run_at), Some(T0 + 11_000));
}

#[test]
fn bad_definitions_are_rejected_before_anything_changes() {
    let mut e = engine();
    let mut d = every("a", 1_000);
    d.max_attempts = 0;
    assert!(e.register(d, T0).is_err());
    assert!(e.register(every("bad/name", 1_000), T0).is_err());
    assert!(e.register(every("a", 0), T0).is_err());
    assert!(!e.has_changes());
    assert!(!e.contains("a"));
}

#[test]
fn due_record_is_written_ahead_and_run_starts_at_its_instant() {
    let mut e = engine();
    e.register(def("x", ScheduleSpec::at_ms(T0 + 1_000)), T0)
        .ok();
    e.take_changes();
    let lookahead = e.config().lookahead_ms;
    assert_eq!(e.next_wakeup(true), Some(T0 + 1_000 - lookahead));
    assert!(e.poll(T0 + 1_000 - lookahead, 10).is_empty());
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::RunDue]);
    assert_eq!(c.new_runs.len(), 1);
    assert_eq!(e.next_wakeup(true), Some(T0 + 1_000));
    let ds = e.poll(T0 + 1_000, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].scheduled_at, T0 + 1_000);
    assert_eq!(kinds(&e.take_changes()), vec![K::RunStarted]);
    assert_eq!(e.view("x").map(|v| v.state), Some(TimerState::Running));
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 3 },
        T0 + 1_003,
    );
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::RunSucceeded]);
    assert_eq!(c.finished_runs.len(), 1);
    let v = e.view("x").expect("timer");
    assert_eq!(v.state, TimerState::Completed);
    assert_eq!(
        v.record.last_status.as_ref().map(|s| s.display()),
        Some("OK".to_string())
    );
    assert_eq!(v.next_run_at, None);
    assert_eq!(e.next_wakeup(true), None);
}

#[test]
fn three_attempts_then_dead_with_backoff() {
    let mut e = engine();
    e.register(def("x", ScheduleSpec::After { ms: 10 }), T0)
        .ok();
    let mut now = T0 + 10;
    let mut attempts = Vec::new();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let ds = e.poll(now, 10);
        assert_eq!(ds.len(), 1, "one attempt due at {now}");
        attempts.push(ds[0].attempt);
        e.finish(
            &ds[0].run_id,
            Outcome::Failed {
                error: "ValueError: boom".into(),
                duration_ms: 1,
            },
            now,
        );
        if let Some(next) = e.next_wakeup(true) {
            delays.push(next - now);
            now = next;
        }
    }
    assert_eq!(attempts, vec![1, 2, 3]);
    assert_eq!(delays.len(), 2);
    assert!(
        (800..=1_200).contains(&delays[0]),
        "first backoff about 1 s: {}",
        delays[0]
    );
    assert!(
        (1_600..=2_400).contains(&delays[1]),
        "second backoff about 2 s: {}",
        delays[1]
    );
    let c = e.take_changes();
    let k = kinds(&c);
    assert_eq!(k.iter().filter(|k| **k == K::RunFailed).count(), 3);
    assert_eq!(k.iter().filter(|k| **k == K::RunRetrying).count(), 2);
    assert_eq!(k.last(), Some(&K::RunDead));
    let v = e.view("x").expect("timer");
    assert_eq!(v.state, TimerState::Dead);
    assert_eq!(v.record.failure_count, 3);
    assert_eq!(v.record.run_count, 3);
    assert_eq!(
        v.record.last_status.map(|s| s.display()),
        Some("DEAD: ValueError: boom".to_string())
    );
}

fn starting_ahead(ms: i64) -> Engine {
    Engine::new(
        EngineConfig {
            start_ahead_ms: ms,
            ..EngineConfig::default()
        },
        42,
    )
}

#[test]
fn an_attempt_starts_ahead_stamped_with_its_instant_and_carries_the_exact_instant() {
    let mut e = starting_ahead(2);
    // 1,000.4 ms after T0: the whole-millisecond instant is T0 + 1,001.
    let exact_us = (T0 + 1_000) * 1_000 + 400;
    e.register(def("x", ScheduleSpec::at_micros(exact_us)), T0)
        .ok();
    assert!(e.poll(T0 + 998, 10).is_empty());
    assert_eq!(e.next_wakeup(true), Some(T0 + 999));
    e.take_changes();
    let ds = e.poll(T0 + 999, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].scheduled_at, T0 + 1_001);
    assert_eq!(ds[0].not_before_us, exact_us);
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::RunStarted]);
    assert_eq!(c.events[0].ts, T0 + 1_001);
    // An outcome reported within that millisecond is not stamped before the start.
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 0 },
        T0 + 1_000,
    );
    let c = e.take_changes();
    assert_eq!(kinds(&c), vec![K::RunSucceeded]);
    assert_eq!(c.events[0].ts, T0 + 1_001);
    assert_eq!(e.view("x").map(|v| v.state), Some(TimerState::Completed));
}

#[test]
fn attempts_moved_from_their_instant_start_at_their_whole_millisecond() {
    let mut e = starting_ahead(2);
    let exact_us = (T0 + 1_000) * 1_000 + 400;
    let mut jittered = def("j", ScheduleSpec::at_micros(exact_us));
    jittered.jitter_ms = 5_000;
    e.register(jittered, T0).ok();
    e.register(def("late", ScheduleSpec::at_micros(exact_us)), T0)
        .ok();
    // `late` is polled after its instant: it starts now, nothing to wait for.
    let fire_j = e.view("j").and_then(|v| v.record.next_fire_at).expect("j");
    let ds = e.poll(T0 + 1_010, 10);
    let late = ds.iter().find(|d| d.timer_id == "late").expect("late");
    assert_eq!(late.not_before_us, exact_us);
    let mut now = T0 + 1_010;
    let mut found = None;
    while found.is_none() && now <= T0 + 7_000 {
        found = e.poll(now, 10).into_iter().find(|d| d.timer_id == "j");
        now += 1;
    }
    let j = found.expect("the jittered run starts");
    if fire_j != T0 + 1_001 {
        assert_eq!(j.not_before_us, fire_j * 1_000);
    }
    // A manual run starts at once.
    let run = e.trigger("late", T0 + 8_000).expect("trigger");
    let ds = e.poll(T0 + 8_000, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].run_id, run);
    assert_eq!(ds[0].not_before_us, (T0 + 8_000) * 1_000);
}

#[test]
fn without_start_ahead_an_attempt_waits_for_its_whole_millisecond() {
    let mut e = engine();
    let exact_us = (T0 + 1_000) * 1_000 + 400;
    e.register(def("x", ScheduleSpec::at_micros(exact_us)), T0)
        .ok();
    assert!(e.poll(T0 + 1_000, 10).is_empty());
    let ds = e.poll(T0 + 1_001, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].not_before_us, exact_us);
}

#[test]
fn retrying_state_and_backoff_is_capped() {
    let mut e = Engine::new(
        EngineConfig {
            backoff_cap_ms: 5_000,
            ..EngineConfig::default()
        },
        1,
    );
    let mut d = def("x", ScheduleSpec::After { ms: 1 });
    d.max_attempts = 20;
    e.register(d, T0).ok();
    let mut now = T0 + 1;
    for _ in 0..10 {
        let ds = e.poll(now, 1);
        e.finish(
            &ds[0].run_id,
            Outcome::Failed {
                error: "E".into(),
                duration_ms: 0,
            },
            now,
        );
        assert_eq!(e.view("x").map(|v| v.state), Some(TimerState::Retrying));
        let next = e.next_wakeup(true).expect("retry");
        assert!(next - now <= 5_000);
        now = next;
    }
}

#[test]
fn delay_schedules_from_finish() {
    let mut e = engine();
    e.register(every("d", 1_000), T0).ok();
    let ds = e.poll(T0 + 1_000, 10);
    assert_eq!(ds.len(), 1);
    // While the run is in flight there is no next occurrence.
    assert_eq!(e.view("d").and_then(|v| v.record.next_fire_at), None);
    assert!(e.poll(T0 + 2_500, 10).is_empty());
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 2_500 },
        T0 + 3_500,
    );
    assert_eq!(e.view("d").and_then(|v| v.next_run_at), Some(T0 + 4_500));
}

#[test]
fn skip_keeps_the_grid_and_skips_while_running() {
    let mut e = engine();
    let mut d = every("s", 1_000);
    d.overlap = Overlap::Skip;
    e.register(d, T0).ok();
    let first = e.poll(T0 + 1_000, 10);
    assert_eq!(first.len(), 1);
    e.take_changes();
    // Next occurrence at T0+2000 finds the first still running.
    assert!(e.poll(T0 + 2_000, 10).is_empty());
    let c = e.take_changes();
    assert!(kinds(&c).contains(&K::RunSkippedOverlap), "{:?}", kinds(&c));
    assert_eq!(
        e.view("s")
            .and_then(|v| v.record.last_status)
            .map(|s| s.display()),
        Some("SKIPPED_OVERLAP".to_string())
    );
    e.finish(
        &first[0].run_id,
        Outcome::Succeeded { duration_ms: 1_500 },
        T0 + 2_500,
    );
    // The grid continues: T0+3000.
    let third = e.poll(T0 + 3_000, 10);
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].scheduled_at, T0 + 3_000);
}

#[test]
fn allow_runs_concurrently() {
    let mut e = engine();
    let mut d = every("a", 1_000);
    d.overlap = Overlap::Allow;
    e.register(d, T0).ok();
    let a = e.poll(T0 + 1_000, 10);
    let b = e.poll(T0 + 2_000, 10);
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(e.view("a").map(|v| v.active_runs), Some(2));
}

#[test]
fn capacity_limits_starts_and_holds_the_rest() {
    let mut e = engine();
    for i in 0..10 {
        e.register(def(&format!("t{i}"), ScheduleSpec::at_ms(T0 + 100)), T0)
            .ok();
    }
    assert_eq!(e.poll(T0 + 100, 4).len(), 4);
    assert_eq!(e.next_wakeup(false), None);
    assert_eq!(e.next_wakeup(true), Some(T0 + 100));
    assert_eq!(e.poll(T0 + 101, 100).len(), 6);
}

fn restart(e: &mut Engine) -> Engine {
    // Persist everything, then rebuild a fresh engine from the stored rows, as a new process would.
    let mut timers = std::collections::BTreeMap::new();
    let mut runs = std::collections::BTreeMap::new();
    let c = e.take_changes();
    for t in c.timers.into_iter().chain(c.timer_states) {
        timers.insert(t.def.id.clone(), t);
    }
    for r in c.new_runs.into_iter().chain(c.runs) {
        runs.insert(r.run_id.clone(), r);
    }
    for r in c.finished_runs {
        runs.remove(&r);
    }
    let mut fresh = engine();
    let restore = fresh.restore(timers.into_values().collect(), runs.into_values().collect());
    assert!(restore.is_ok());
    fresh
}

#[test]
fn an_attempt_that_never_began_is_due_again_with_the_same_attempt_number() {
    let mut e = engine();
    let mut stored = Stored::default();
    e.register(def("x", ScheduleSpec::After { ms: 10 }), T0)
        .ok();
    let ds = e.poll(T0 + 10, 10);
    assert_eq!(ds.len(), 1);
    stored.commit(&mut e);
    // Shutdown came before the callback began: undone, nothing counted.
    e.not_started(&ds[0].run_id, T0 + 20);
    let c = stored.commit(&mut e);
    assert_eq!(kinds(&c), vec![K::RunNotStarted]);
    assert_eq!(c.events[0].attempt, Some(1));
    let v = e.view("x").expect("timer");
    assert_eq!((v.record.run_count, v.record.failure_count), (0, 0));
    assert_ne!(v.state, TimerState::Running);
    // A duplicate or late report changes nothing.
    e.not_started(&ds[0].run_id, T0 + 21);
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 21,
    );
    assert!(stored.commit(&mut e).events.is_empty());
    // The next start finds it due, not interrupted: attempt 1 again, the same run.
    let mut e2 = stored.restore();
    e2.register(def("x", ScheduleSpec::After { ms: 10 }), T0 + 5_000)
        .ok();
    e2.recover(T0 + 5_000);
    assert!(!kinds(&e2.take_changes()).contains(&K::RunInterrupted));
    let ds2 = e2.poll(T0 + 5_000, 10);
    assert_eq!(ds2.len(), 1);
    assert_eq!(
        (ds2[0].run_id.clone(), ds2[0].attempt),
        (ds[0].run_id.clone(), 1)
    );
    // A retry that never began stays attempt 2.
    e2.finish(
        &ds2[0].run_id,
        Outcome::Failed {
            error: "boom".into(),
            duration_ms: 1,
        },
        T0 + 5_001,
    );
    // The backoff is about 1 s (at most 1.2 s).
    let retry_at = T0 + 5_001 + 1_300;
    let ds3 = e2.poll(retry_at, 10);
    assert_eq!(ds3.len(), 1);
    assert_eq!(ds3[0].attempt, 2);
    e2.not_started(&ds3[0].run_id, retry_at);
    assert_eq!(e2.view("x").map(|v| v.state), Some(TimerState::Retrying));
    assert_eq!(e2.view("x").map(|v| v.record.run_count), Some(1));
    let ds4 = e2.poll(retry_at + 1, 10);
    assert_eq!(ds4.len(), 1);
    assert_eq!(ds4[0].attempt, 2);
}

#[test]
fn interrupted_run_is_retried_as_attempt_two() {
    let mut e = engine();
    e.register(def("x", ScheduleSpec::After { ms: 10 }), T0)
        .ok();
    let ds = e.poll(T0 + 10, 10);
    assert_eq!(ds.len(), 1);
    let mut e2 = restart(&mut e);
    e2.register(def("x", ScheduleSpec::After { ms: 10 }), T0 + 5_000)
        .ok();
    e2.recover(T0 + 5_000);
    let c = e2.take_changes();
    assert_eq!(kinds(&c), vec![K::RunInterrupted, K::RunRetrying]);
    let ds2 = e2.poll(T0 + 5_000, 10);
    assert_eq!(ds2.len(), 1);
    assert_eq!(ds2[0].attempt, 2);
    assert_eq!(ds2[0].run_id, ds[0].run_id);
    e2.finish(
        &ds2[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 5_001,
    );
    assert_eq!(e2.view("x").map(|v| v.state), Some(TimerState::Completed));
}

#[test]
fn pending_one_shot_fires_at_its_original_time_after_restart() {
    let mut e = engine();
    e.register(def("x", ScheduleSpec::After { ms: 10_000 }), T0)
        .ok();
    let mut e2 = restart(&mut e);
    assert_eq!(
        e2.register(def("x", ScheduleSpec::After { ms: 10_000 }), T0 + 3_000)
            .ok(),
        Some(Registered::Unchanged)
    );
    e2.recover(T0 + 3_000);
    let fired = run_until(&mut e2, T0 + 3_000, T0 + 20_000, 100);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, T0 + 10_000);
    // A completed one-shot does not run again after another restart.
    let mut e3 = restart(&mut e2);
    e3.register(def("x", ScheduleSpec::After { ms: 10_000 }), T0 + 30_000)
        .ok();
    e3.recover(T0 + 30_000);
    assert!(run_until(&mut e3, T0 + 30_000, T0 + 60_000, 1_000).is_empty());
}

#[test]
fn past_one_shot_fires_right_after_start() {
    let mut e = engine();
    e.register(def("x", ScheduleSpec::at_ms(T0 - 60_000)), T0)
        .ok();
    e.recover(T0);
    assert_eq!(e.poll(T0, 10).len(), 1);
}

#[test]
fn unregistered_timers_become_orphans_and_are_revived() {
    let mut e = engine();
    e.register(every("keep", 1_000), T0).ok();
    e.register(every("gone", 1_000), T0).ok();
    let mut e2 = restart(&mut e);
    e2.register(every("keep", 1_000), T0 + 100).ok();
    let orphans = e2.mark_orphans_where(|_, id| id == "keep", T0 + 100);
    assert_eq!(orphans, vec!["gone".to_string()]);
    assert_eq!(e2.view("gone").map(|v| v.state), Some(TimerState::Orphaned));
    let fired = run_until(&mut e2, T0 + 100, T0 + 5_000, 100);
    assert!(fired.iter().all(|(_, d)| d.timer_id == "keep"));
    assert!(e2.trigger("gone", T0 + 5_000).is_err());
    e2.take_changes();
    e2.register(every("gone", 1_000), T0 + 6_000).ok();
    assert_eq!(kinds(&e2.take_changes()), vec![K::TimerResumed]);
    assert_eq!(
        e2.view("gone").map(|v| v.state),
        Some(TimerState::Scheduled)
    );
    assert!(!run_until(&mut e2, T0 + 6_000, T0 + 8_000, 100).is_empty());
}

fn missed_setup(catchup: Catchup, overlap: Overlap) -> (Engine, Changes) {
    let mut e = engine();
    let mut d = every("m", 1_000);
    d.overlap = overlap;
    d.catchup = catchup;
    e.register(d.clone(), T0).ok();
    // Down from T0+500 to T0+10_500: occurrences at T0+1000..T0+10_000 missed (10 of them).
    let mut e2 = restart(&mut e);
    e2.register(d, T0 + 10_500).ok();
    e2.recover(T0 + 10_500);
    let c = e2.take_changes();
    (e2, c)
}

#[test]
fn catchup_once_runs_one_for_all() {
    let (mut e, _) = missed_setup(Catchup::Once, Overlap::Skip);
    let ds = e.poll(T0 + 10_500, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].scheduled_at, T0 + 1_000);
    let c = e.take_changes();
    let due = c
        .events
        .iter()
        .find(|ev| ev.kind == K::RunDue)
        .expect("RUN_DUE");
    assert_eq!(due.detail.count, Some(10));
    assert_eq!(due.detail.until, Some(T0 + 10_000));
    // Then the grid continues after the last missed occurrence.
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 10_501,
    );
    assert_eq!(e.view("m").and_then(|v| v.next_run_at), Some(T0 + 11_000));
}

#[test]
fn catchup_skip_records_missed() {
    let (mut e, c) = missed_setup(Catchup::Skip, Overlap::Skip);
    let missed = c
        .events
        .iter()
        .find(|ev| ev.kind == K::RunMissed)
        .expect("RUN_MISSED");
    assert_eq!(missed.detail.count, Some(10));
    assert_eq!(missed.detail.scheduled_at, Some(T0 + 1_000));
    assert!(e.poll(T0 + 10_500, 10).is_empty());
    assert_eq!(e.view("m").and_then(|v| v.next_run_at), Some(T0 + 11_000));
}

#[test]
fn catchup_all_runs_each_in_order() {
    // Delay: each missed occurrence runs after the previous one finished, on the old grid.
    let (mut e, _) = missed_setup(Catchup::All, Overlap::Delay);
    let fired = run_until(&mut e, T0 + 10_500, T0 + 10_520, 1);
    let scheduled: Vec<_> = fired.iter().map(|(_, d)| d.scheduled_at).collect();
    let expected: Vec<_> = (1..=10).map(|i| T0 + i * 1_000).collect();
    assert_eq!(scheduled, expected);
    // Then it goes on from the last finish.
    assert!(e
        .view("m")
        .and_then(|v| v.next_run_at)
        .is_some_and(|at| at > T0 + 10_500));
}

#[test]
fn pause_holds_and_resume_restarts() {
    let mut e = engine();
    e.register(every("p", 200), T0).ok();
    assert!(!run_until(&mut e, T0, T0 + 1_000, 10).is_empty());
    e.pause("p", T0 + 1_000).ok();
    assert_eq!(e.view("p").map(|v| v.state), Some(TimerState::Paused));
    assert!(run_until(&mut e, T0 + 1_001, T0 + 5_000, 10).is_empty());
    e.resume("p", T0 + 5_000).ok();
    let fired = run_until(&mut e, T0 + 5_000, T0 + 6_000, 10);
    assert!(!fired.is_empty());
    assert!(fired[0].0 >= T0 + 5_000);
    assert!(e.pause("nope", T0).is_err());
}

#[test]
fn trigger_runs_now_without_touching_the_schedule() {
    let mut e = engine();
    e.register(every("t", 3_600_000), T0).ok();
    let run_id = e.trigger("t", T0 + 10).ok();
    assert!(run_id.is_some());
    let ds = e.poll(T0 + 10, 10);
    assert_eq!(ds.len(), 1);
    e.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 11,
    );
    assert_eq!(
        e.view("t").and_then(|v| v.next_run_at),
        Some(T0 + 3_600_000)
    );
    let c = e.take_changes();
    let due = c
        .events
        .iter()
        .find(|ev| ev.kind == K::RunDue)
        .expect("RUN_DUE");
    assert!(due.detail.manual);
}

#[test]
fn remove_drops_waiting_runs_and_keeps_running_ones_reporting() {
    let mut e = engine();
    let mut d = every("r", 1_000);
    d.overlap = Overlap::Allow;
    e.register(d, T0).ok();
    let running = e.poll(T0 + 1_000, 10);
    e.poll(T0 + 1_960, 10); // materializes the T0+2000 occurrence ahead of time
    e.remove("r", T0 + 1_970).ok();
    assert!(!e.contains("r"));
    assert_eq!(e.run_count(), 1);
    e.finish(
        &running[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 2_100,
    );
    assert_eq!(e.run_count(), 0);
    let c = e.take_changes();
    assert!(c.removed_timers.contains(&"r".to_string()));
    assert!(c.timers.is_empty());
    assert!(e.remove("r", T0).is_err());
}

#[test]
fn jitter_delays_within_bound_and_keeps_nominal_time() {
    let mut e = engine();
    let mut d = every("j", 10_000);
    d.jitter_ms = 2_000;
    d.overlap = Overlap::Skip;
    e.register(d, T0).ok();
    let fired = run_until(&mut e, T0, T0 + 100_000, 1);
    assert!(fired.len() >= 9);
    for (at, d) in &fired {
        assert_eq!((d.scheduled_at - T0) % 10_000, 0);
        assert!(*at >= d.scheduled_at && *at <= d.scheduled_at + 2_000);
    }
}

#[test]
fn cron_in_new_york_across_2026_dst() {
    let mut e = engine();
    let mut d = def(
        "c",
        ScheduleSpec::Cron {
            expr: "30 2 * * *".into(),
            timezone: "America/New_York".into(),
        },
    );
    d.timezone = "America/New_York".into();
    // 2026-03-07T12:00Z: the next 02:30 is 2026-03-08, in the spring-forward gap -> 03:00 EDT.
    let start = 1_772_884_800_000;
    e.register(d, start).ok();
    assert_eq!(
        e.view("c").and_then(|v| v.next_run_at),
        Some(1_772_953_200_000)
    );
}

#[test]
fn same_seed_same_decisions() {
    let script = |seed| {
        let mut e = Engine::new(EngineConfig::default(), seed);
        let mut d = every("j", 1_000);
        d.jitter_ms = 500;
        e.register(d, T0).ok();
        run_until(&mut e, T0, T0 + 20_000, 7)
            .into_iter()
            .map(|(at, d)| (at, d.run_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(script(9), script(9));
}

#[test]
fn poll_batch_bounds_both_due_records_and_starts() {
    let mut e = engine();
    for i in 0..100 {
        e.register(
            def(&format!("t{i:03}"), ScheduleSpec::at_ms(T0 + 1_000)),
            T0,
        )
        .ok();
    }
    e.take_changes();
    // Inside the look-ahead: at most `batch` occurrences become due, nothing starts yet.
    assert!(e.poll_batch(T0 + 990, usize::MAX, 8).is_empty());
    let due = e.take_changes();
    assert_eq!(kinds(&due), vec![K::RunDue; 8]);
    // At the instant: `batch` more become due and `batch` start, oldest first.
    let started = e.poll_batch(T0 + 1_000, usize::MAX, 16);
    assert_eq!(started.len(), 16);
    let step = e.take_changes();
    assert_eq!(
        step.events.iter().filter(|ev| ev.kind == K::RunDue).count(),
        16
    );
    assert_eq!(
        step.events
            .iter()
            .filter(|ev| ev.kind == K::RunStarted)
            .count(),
        16
    );
    // Capacity still bounds starts; a full poll finishes the rest.
    assert_eq!(e.poll_batch(T0 + 1_000, 4, 16).len(), 4);
    let rest = e.poll(T0 + 1_000, usize::MAX);
    assert_eq!(rest.len(), 100 - 16 - 4);
}

#[test]
fn timers_share_one_copy_of_each_zone_and_function_name() {
    let shared = |e: &Engine, a: &str, b: &str| {
        let (a, b) = (
            e.definition(a).expect("timer a"),
            e.definition(b).expect("timer b"),
        );
        (
            Arc::ptr_eq(&a.timezone, &b.timezone),
            Arc::ptr_eq(&a.fn_name, &b.fn_name),
        )
    };
    let mut e = engine();
    // Equal names, allocated apart (as each registration from Python is).
    let mut b = every("b", 1_000);
    b.timezone = String::from("UTC").into();
    b.fn_name = String::from("app.job").into();
    let mut c = every("c", 1_000);
    c.fn_name = "app.other".into();
    for d in [every("a", 1_000), b, c] {
        e.register(d, T0).expect("register");
    }
    assert_eq!(shared(&e, "a", "b"), (true, true));
    assert_eq!(shared(&e, "a", "c"), (true, false));
    assert_eq!(&*e.definition("c").expect("timer c").fn_name, "app.other");

    // Records read back from storage share them too.
    let records: Vec<TimerRecord> = e.views().into_iter().map(|v| v.record).collect();
    let decoded: Vec<TimerRecord> = records
        .iter()
        .map(|r| {
            let json = serde_json::to_string(r).expect("encode");
            serde_json::from_str(&json).expect("decode")
        })
        .collect();
    let mut restored = engine();
    restored.restore(decoded, Vec::new()).expect("restore");
    assert_eq!(shared(&restored, "a", "b"), (true, true));
    assert_eq!(
        records,
        restored
            .views()
            .into_iter()
            .map(|v| v.record)
            .collect::<Vec<_>>()
    );
}

/// The rows a store would hold: every change applied in order.
#[derive(Default)]
struct Stored {
    timers: std::collections::BTreeMap<Arc<str>, TimerRecord>,
    runs: std::collections::BTreeMap<RunId, RunRecord>,
}

impl Stored {
    /// Commits the engine's pending changes; returns them.
    fn commit(&mut self, e: &mut Engine) -> Changes {
        let c = e.take_changes();
        for t in c.timers.iter().chain(&c.timer_states) {
            self.timers.insert(t.def.id.clone(), t.clone());
        }
        for r in c.new_runs.iter().chain(&c.runs) {
            self.runs.insert(r.run_id.clone(), r.clone());
        }
        for r in &c.finished_runs {
            self.runs.remove(r);
        }
        c
    }

    fn restore(&self) -> Engine {
        let mut fresh = engine();
        let timers = self.timers.values().cloned().collect();
        let runs = self.runs.values().cloned().collect();
        assert!(fresh.restore(timers, runs).is_ok());
        fresh
    }
}

#[test]
fn making_an_occurrence_due_writes_the_run_row_not_the_timer_row() {
    let mut e = engine();
    e.register(every_skip("a"), T0).ok();
    let mut stored = Stored::default();
    stored.commit(&mut e);
    assert_eq!(e.poll(T0 + 1_000, 10).len(), 1);
    let c = stored.commit(&mut e);
    assert_eq!(kinds(&c), vec![K::RunDue, K::RunStarted]);
    assert!(c.timers.is_empty() && c.timer_states.is_empty());
    assert_eq!(c.new_runs.len(), 1);
    // The stored row still names T0 + 1,000; a restart moves past it, as memory did.
    assert_eq!(stored.timers["a"].next_scheduled_at, Some(T0 + 1_000));
    let mut e2 = stored.restore();
    let v = e2.view("a").expect("a");
    assert_eq!(v.record.next_scheduled_at, Some(T0 + 2_000));
    assert_eq!(v.record.next_fire_at, Some(T0 + 2_000));
    e2.register(every_skip("a"), T0 + 1_500).ok();
    e2.recover(T0 + 1_500);
    let ds = e2.poll(T0 + 1_500, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!((ds[0].attempt, ds[0].scheduled_at), (2, T0 + 1_000));
    assert_eq!(
        kinds(&e2.take_changes()),
        vec![K::RunInterrupted, K::RunRetrying, K::RunStarted]
    );
    e2.finish(
        &ds[0].run_id,
        Outcome::Succeeded { duration_ms: 0 },
        T0 + 1_600,
    );
    e2.take_changes();
    let ds = e2.poll(T0 + 2_000, 10);
    assert_eq!(ds.len(), 1);
    assert_eq!((ds[0].attempt, ds[0].scheduled_at), (1, T0 + 2_000));
}

fn every_skip(id: &str) -> TimerDef {
    let mut d = every(id, 1_000);
    d.overlap = Overlap::Skip;
    d
}

#[test]
fn a_restart_moves_past_every_occurrence_already_due() {
    // Allow: two occurrences in flight, neither rewrote the row.
    let mut e = engine();
    let mut d = every("a", 1_000);
    d.overlap = Overlap::Allow;
    e.register(d, T0).ok();
    let mut stored = Stored::default();
    stored.commit(&mut e);
    e.poll(T0 + 1_000, 10);
    e.poll(T0 + 2_000, 10);
    stored.commit(&mut e);
    assert_eq!(stored.timers["a"].next_scheduled_at, Some(T0 + 1_000));
    let e2 = stored.restore();
    assert_eq!(
        e2.view("a").and_then(|v| v.record.next_scheduled_at),
        Some(T0 + 3_000)
    );
    // Delay: no next occurrence while the run is in flight. One-shot: none at all.
    let mut e = engine();
    e.register(every("d", 1_000), T0).ok();
    e.register(def("o", ScheduleSpec::at_ms(T0 + 1_000)), T0)
        .ok();
    let mut stored = Stored::default();
    stored.commit(&mut e);
    assert_eq!(e.poll(T0 + 1_000, 10).len(), 2);
    stored.commit(&mut e);
    let e2 = stored.restore();
    for id in ["d", "o"] {
        let v = e2.view(id).expect("timer");
        assert_eq!(v.record.next_scheduled_at, None, "{id}");
        assert_eq!(v.record.next_fire_at, None, "{id}");
        assert_eq!(v.active_runs, 1, "{id}");
    }
    // The same, through the function readers of stored rows use.
    let mut timers: Vec<TimerRecord> = stored.timers.values().cloned().collect();
    let runs: Vec<RunRecord> = stored.runs.values().cloned().collect();
    settle_taken_occurrences(&mut timers, &runs);
    assert!(timers.iter().all(|t| t.next_scheduled_at.is_none()));
}

#[test]
fn rows_that_a_restart_could_not_rebuild_are_written_when_made_due() {
    // Jitter is drawn when the next occurrence is set: the row must carry it.
    let mut e = engine();
    let mut d = every_skip("j");
    d.jitter_ms = 500;
    e.register(d, T0).ok();
    let fire = e
        .view("j")
        .and_then(|v| v.record.next_fire_at)
        .expect("next");
    e.take_changes();
    e.poll(fire, 10);
    let c = e.take_changes();
    assert_eq!(c.timer_states.len(), 1);
    // A manual run takes no occurrence: the stored next occurrence stands.
    let mut e = engine();
    e.register(every_skip("m"), T0).ok();
    let mut stored = Stored::default();
    stored.commit(&mut e);
    e.trigger("m", T0 + 1_000).expect("trigger");
    stored.commit(&mut e);
    let e2 = stored.restore();
    assert_eq!(
        e2.view("m").and_then(|v| v.record.next_scheduled_at),
        Some(T0 + 1_000)
    );
}

#[test]
fn a_removed_timers_slot_is_reused_without_its_queued_occurrence() {
    let mut e = engine();
    e.register(def("a", ScheduleSpec::at_ms(T0 + 1_000)), T0)
        .expect("register a");
    let slot = e.key("a").expect("slot of a");
    e.remove("a", T0 + 1).expect("remove a");
    assert_eq!(e.key("a"), None);

    // `b` takes the freed slot; `a`'s entry in the queue (at T0 + 1000) is stale for it.
    e.register(def("b", ScheduleSpec::at_ms(T0 + 5_000)), T0 + 2)
        .expect("register b");
    assert_eq!(e.key("b"), Some(slot));
    assert!(run_until(&mut e, T0 + 2, T0 + 4_990, 10).is_empty());
    let fired = run_until(&mut e, T0 + 5_000, T0 + 6_000, 10);
    let ids: Vec<&str> = fired.iter().map(|(_, d)| d.timer_id.as_str()).collect();
    assert_eq!(ids, ["b"]);
    assert_eq!(fired[0].1.timer, slot);
}

#[test]
fn a_slot_reused_at_the_same_instant_fires_the_new_timer_once() {
    let mut e = engine();
    e.register(def("a", ScheduleSpec::at_ms(T0 + 1_000)), T0)
        .expect("register a");
    e.remove("a", T0 + 1).expect("remove a");
    e.register(def("b", ScheduleSpec::at_ms(T0 + 1_000)), T0 + 2)
        .expect("register b");
    let fired = run_until(&mut e, T0 + 2, T0 + 3_000, 10);
    let ids: Vec<&str> = fired.iter().map(|(_, d)| d.timer_id.as_str()).collect();
    assert_eq!(ids, ["b"]);
    let changes = e.take_changes();
    assert_eq!(changes.removed_timers, ["a"]);
    let written: Vec<&str> = changes.timers.iter().map(|t| &*t.def.id).collect();
    assert_eq!(written, ["b"]);
}

#[test]
fn requeueing_an_occurrence_twice_still_runs_it_once() {
    let mut e = engine();
    e.register(def("p", ScheduleSpec::at_ms(T0 + 1_000)), T0)
        .expect("register");
    // Each pause/resume queues the same instant again: three entries for one occurrence.
    for at in [T0 + 10, T0 + 20] {
        e.pause("p", at).expect("pause");
        e.resume("p", at + 1).expect("resume");
    }
    let fired = run_until(&mut e, T0 + 30, T0 + 3_000, 10);
    assert_eq!(fired.len(), 1);
    assert_eq!(e.view("p").map(|v| v.state), Some(TimerState::Completed));
}

#[test]
fn thousands_of_timers_span_chunks_and_come_back_by_name() {
    let mut e = engine();
    for i in 0..3_000 {
        e.register(every(&format!("t{i}"), 60_000), T0)
            .expect("register");
    }
    for i in (0..3_000).step_by(3) {
        e.remove(&format!("t{i}"), T0 + 1).expect("remove");
    }
    assert_eq!(e.timer_count(), 2_000);
    for i in 0..3_000 {
        let id = format!("t{i}");
        assert_eq!(e.contains(&id), i % 3 != 0, "{id}");
        if i % 3 != 0 {
            assert_eq!(e.view(&id).map(|v| v.record.def.id.to_string()), Some(id));
        }
    }
    // Freed slots are taken before new ones.
    let before: Vec<TimerKey> = (0..1_000).map(|i| i * 3).collect();
    for i in 0..1_000 {
        e.register(every(&format!("n{i}"), 60_000), T0 + 2)
            .expect("register");
    }
    let mut reused: Vec<TimerKey> = (0..1_000).filter_map(|i| e.key(&format!("n{i}"))).collect();
    reused.sort_unstable();
    assert_eq!(reused, before);
}

#[test]
fn a_runs_row_is_inserted_when_it_is_created_and_updated_after() {
    let mut e = engine();
    e.register(def("a", ScheduleSpec::at_ms(T0 + 100)), T0)
        .expect("register");
    e.take_changes();
    // Due within the look-ahead, no worker free: created, not started.
    assert!(e.poll(T0 + 60, 0).is_empty());
    let c = e.take_changes();
    let ids = |runs: &[RunRecord]| runs.iter().map(|r| r.phase).collect::<Vec<_>>();
    assert_eq!(
        (ids(&c.new_runs), ids(&c.runs)),
        (vec![RunPhase::Due], vec![])
    );
    let started = e.poll(T0 + 100, 1);
    let c = e.take_changes();
    assert_eq!(
        (ids(&c.new_runs), ids(&c.runs)),
        (vec![], vec![RunPhase::Running])
    );
    e.finish(
        &started[0].run_id,
        Outcome::Succeeded { duration_ms: 1 },
        T0 + 101,
    );
    let c = e.take_changes();
    assert!(c.new_runs.is_empty() && c.runs.is_empty());
    assert_eq!(c.finished_runs, vec![started[0].run_id.clone()]);
}

#[test]
fn a_run_created_and_dropped_in_one_step_writes_no_row() {
    let mut e = engine();
    e.register(every("t", 3_600_000), T0).expect("register");
    e.take_changes();
    let run_id = e.trigger("t", T0 + 1).expect("trigger");
    e.remove("t", T0 + 2).expect("remove");
    let c = e.take_changes();
    assert!(c.new_runs.is_empty() && c.runs.is_empty());
    assert!(!c.finished_runs.contains(&run_id));
    assert_eq!(
        kinds(&c),
        vec![K::RunDue, K::TimerRemoved],
        "the history still says what happened"
    );
}
