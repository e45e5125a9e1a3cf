//! Commands on timers without a function, and the memory that repeated commands may hold.

use super::tests::{every, T0};
use super::*;
use crate::event::EventKind as K;
use crate::timer::{TimerDef, TimerState};

fn state(e: &Engine, id: &str) -> Option<TimerState> {
    e.view(id).map(|v| v.state)
}

/// A new process's engine over what `e` holds, registering only `registered`.
fn restart(e: &Engine, registered: &[TimerDef], now: EpochMs) -> Engine {
    let timers: Vec<_> = e.timers.iter().map(|(_, t)| t.record()).collect();
    let runs: Vec<_> = e.runs.values().cloned().collect();
    let mut fresh = Engine::new(EngineConfig::default(), 3);
    assert!(fresh.restore(timers, runs).is_ok());
    for def in registered {
        assert!(fresh.register(def.clone(), now).is_ok());
    }
    let names: Vec<&str> = registered.iter().map(|d| &*d.id).collect();
    fresh.mark_orphans_where(|_, id| names.contains(&id), now);
    fresh.recover(now);
    fresh.take_changes();
    fresh
}

#[test]
fn resuming_a_timer_without_a_function_makes_it_an_orphan() {
    // A paused timer that the new version does not register.
    let mut e = Engine::new(EngineConfig::default(), 3);
    assert!(e.register(every("p", 1_000), T0).is_ok());
    assert!(e.pause("p", T0 + 10).is_ok());
    let mut e = restart(&e, &[], T0 + 100);
    assert_eq!(state(&e, "p"), Some(TimerState::Paused));
    assert!(e.trigger("p", T0 + 150).is_err());
    assert!(e.resume("p", T0 + 200).is_ok());
    assert_eq!(state(&e, "p"), Some(TimerState::Orphaned));
    let c = e.take_changes();
    let kinds: Vec<_> = c.events.iter().map(|ev| ev.kind).collect();
    assert_eq!(kinds, vec![K::TimerResumed, K::TimerOrphaned]);
    assert_eq!(c.timer_states.len(), 1);
    assert_eq!(
        c.timer_states[0].lifecycle,
        crate::timer::Lifecycle::Orphaned
    );
    assert!(e.poll(T0 + 60_000, usize::MAX).is_empty());
    assert!(e.trigger("p", T0 + 60_000).is_err());
    // A registration revives it.
    assert!(e.register(every("p", 1_000), T0 + 61_000).is_ok());
    assert_eq!(state(&e, "p"), Some(TimerState::Scheduled));
    assert_eq!(e.poll(T0 + 62_000, usize::MAX).len(), 1);

    // An orphan paused, then resumed: an orphan again.
    let mut e = Engine::new(EngineConfig::default(), 3);
    assert!(e.register(every("o", 1_000), T0).is_ok());
    let mut e = restart(&e, &[], T0 + 100);
    assert_eq!(state(&e, "o"), Some(TimerState::Orphaned));
    assert!(e.pause("o", T0 + 200).is_ok());
    assert!(e.resume("o", T0 + 300).is_ok());
    assert_eq!(state(&e, "o"), Some(TimerState::Orphaned));
    assert!(e.poll(T0 + 60_000, usize::MAX).is_empty());

    // A paused timer that is registered stays paused after a revival, and resumes normally.
    let mut e = Engine::new(EngineConfig::default(), 3);
    assert!(e.register(every("r", 1_000), T0).is_ok());
    assert!(e.pause("r", T0 + 10).is_ok());
    let mut e = restart(&e, &[], T0 + 100);
    assert!(e.register(every("r", 1_000), T0 + 200).is_ok());
    assert_eq!(state(&e, "r"), Some(TimerState::Paused));
    assert!(e.resume("r", T0 + 300).is_ok());
    assert_eq!(state(&e, "r"), Some(TimerState::Scheduled));
    assert_eq!(e.poll(T0 + 1_300, usize::MAX).len(), 1);
}

#[test]
fn runs_of_a_timer_without_a_function_are_held() {
    // A run waiting to retry when the process ended, its timer paused and not registered since.
    let mut e = Engine::new(EngineConfig::default(), 3);
    assert!(e.register(every("w", 1_000), T0).is_ok());
    let ds = e.poll(T0 + 1_000, usize::MAX);
    assert_eq!(ds.len(), 1);
    let manual = e.trigger("w", T0 + 1_001);
    assert!(manual.is_ok());
    assert!(e.pause("w", T0 + 1_002).is_ok());
    let mut e = restart(&e, &[], T0 + 2_000);
    assert!(e.poll(T0 + 60_000, usize::MAX).is_empty());
    assert!(e.resume("w", T0 + 60_000).is_ok());
    assert!(e.poll(T0 + 120_000, usize::MAX).is_empty());
    assert_eq!(state(&e, "w"), Some(TimerState::Orphaned));
    // Registered again: both runs start.
    assert!(e.register(every("w", 1_000), T0 + 121_000).is_ok());
    assert_eq!(e.poll(T0 + 121_000, usize::MAX).len(), 2);
}

#[test]
fn repeated_commands_keep_the_queues_bounded() {
    let config = EngineConfig {
        backoff_base_ms: 10_000_000,
        backoff_cap_ms: 10_000_000,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(config, 3);
    for i in 0..10 {
        assert!(e
            .register(every(&format!("other{i}"), 3_600_000), T0)
            .is_ok());
    }
    assert!(e.register(every("p", 3_600_000), T0).is_ok());
    assert!(e.register(every("r", 3_600_000), T0).is_ok());
    // A run of "r" waiting to retry for hours, requeued by every resume.
    assert!(e.trigger("r", T0).is_ok());
    for d in e.poll(T0, usize::MAX) {
        let failed = Outcome::Failed {
            error: "boom".into(),
            duration_ms: 1,
        };
        e.finish(&d.run_id, failed, T0 + 1);
    }
    assert_eq!(e.view("r").map(|v| v.state), Some(TimerState::Retrying));
    let mut now = T0 + 2;
    let bound = |e: &Engine| 2 * (e.timer_count() + e.run_count()) + 2 * QUEUE_SLACK;
    for i in 0..100_000 {
        now += 1;
        assert!(e.pause("p", now).is_ok());
        assert!(e.resume("p", now).is_ok());
        assert!(e.pause("r", now).is_ok());
        assert!(e.resume("r", now).is_ok());
        assert!(e.register(every("gone", 3_600_000), now).is_ok());
        assert!(e.remove("gone", now).is_ok());
        assert!(e.trigger("p", now).is_ok());
        if i % 10 == 0 {
            // The triggered runs start and end now and then, as they would.
            for d in e.poll(now, usize::MAX) {
                e.finish(&d.run_id, Outcome::Succeeded { duration_ms: 1 }, now);
            }
            e.take_changes();
        }
        assert!(
            e.occurrences.len() <= bound(&e),
            "{i}: {}",
            e.occurrences.len()
        );
        assert!(e.waiting.len() <= bound(&e), "{i}: {}", e.waiting.len());
    }
    // Nothing was lost: every timer fires at its time, the retry still waits.
    let fired = e.poll(T0 + 3_600_000, usize::MAX);
    let mut ids: Vec<_> = fired.iter().map(|d| d.timer_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12, "{ids:?}");
    let retry = e.view("r").and_then(|v| v.next_run_at);
    assert!(retry.is_some_and(|at| at > T0 + 3_600_000));
}
