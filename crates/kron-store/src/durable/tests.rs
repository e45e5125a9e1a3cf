use kron_core::event::EventKind;
use kron_core::run::RunPhase;
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, Lifecycle, Overlap, TimerDef, TimerState};

use super::*;
use crate::Reader;

const T0: EpochMs = 1_700_000_000_000;

fn every_second(id: &str) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule: ScheduleSpec::Every { ms: 1_000 },
        timezone: "UTC".into(),
        max_attempts: 1,
        overlap: Overlap::Skip,
        catchup: Catchup::Skip,
        jitter_ms: 0,
        fn_name: format!("app.jobs.{id}").into(),
        task: None,
    }
}

fn open(dir: &Path, now: EpochMs) -> DurableEngine {
    DurableEngine::open(dir, Durability::Normal, EngineConfig::default(), now).unwrap()
}

fn kinds(dir: &Path, timer: &str) -> Vec<EventKind> {
    let history = Reader::open(dir).unwrap().history(timer, 100).unwrap();
    history.iter().map(|e| e.event.kind).collect()
}

#[test]
fn what_is_applied_and_committed_is_there_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut durable = open(dir.path(), T0);
    let def = every_second("beat");
    durable.apply(Input::Register { at: T0, def }).unwrap();
    assert!(durable.commit().unwrap());
    assert!(!durable.commit().unwrap(), "nothing new to commit");
    durable.close().unwrap();

    let mut durable = open(dir.path(), T0 + 10);
    let view = durable.engine().view("beat").unwrap();
    assert_eq!(view.record.def.fn_name.as_ref(), "app.jobs.beat");
    let pause = Input::Pause {
        at: T0 + 10,
        timer: "beat".to_string(),
    };
    assert_eq!(durable.apply(pause).unwrap(), Output::Applied);
    durable.close().unwrap();

    let durable = open(dir.path(), T0 + 20);
    let view = durable.engine().view("beat").unwrap();
    assert_eq!(view.record.lifecycle, Lifecycle::Paused);
    durable.close().unwrap();
    assert_eq!(
        kinds(dir.path(), "beat"),
        [EventKind::TimerCreated, EventKind::TimerPaused]
    );
}

#[test]
fn a_refused_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut durable = open(dir.path(), T0);
    let pause = Input::Pause {
        at: T0,
        timer: "missing".to_string(),
    };
    assert!(matches!(durable.apply(pause), Err(Rejected::Command(_))));
    assert!(!durable.commit().unwrap());
}

#[test]
fn recovery_settles_the_runs_a_crash_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut durable = open(dir.path(), T0);
    let def = every_second("beat");
    durable.apply(Input::Register { at: T0, def }).unwrap();
    let tick = Input::Tick {
        at: T0 + 1_000,
        capacity: 1,
        batch: 16,
    };
    let started = durable.apply(tick).unwrap().into_dispatched();
    assert_eq!(started.len(), 1, "{started:?}");
    durable.commit().unwrap();
    // The process ends during the attempt: nothing more is written.
    drop(durable);

    let mut durable = open(dir.path(), T0 + 5_000);
    let state = |durable: &DurableEngine| durable.engine().view("beat").unwrap().state;
    assert_eq!(
        state(&durable),
        TimerState::Running,
        "restored as it was stored"
    );
    assert!(durable.recover(T0 + 5_000, Vec::new()).is_empty());
    assert_ne!(state(&durable), TimerState::Running);
    durable.close().unwrap();

    // Interrupted on its only attempt, and the occurrences missed meanwhile skipped (catch-up
    // `skip`), all at the recovery.
    let history = kinds(dir.path(), "beat");
    assert_eq!(
        history,
        [
            EventKind::TimerCreated,
            EventKind::RunDue,
            EventKind::RunStarted,
            EventKind::RunInterrupted,
            EventKind::RunDead,
            EventKind::RunMissed,
        ]
    );
    let stored = Store::open(dir.path(), Durability::Normal)
        .unwrap()
        .load()
        .unwrap();
    assert!(stored.runs.iter().all(|run| run.phase != RunPhase::Running));
}

#[test]
fn recovery_marks_the_timers_without_a_function_orphaned() {
    let dir = tempfile::tempdir().unwrap();
    let mut durable = open(dir.path(), T0);
    for id in ["kept", "gone"] {
        let def = every_second(id);
        durable.apply(Input::Register { at: T0, def }).unwrap();
    }
    durable.close().unwrap();

    let mut durable = open(dir.path(), T0 + 100);
    let orphaned = durable.recover(T0 + 100, vec!["gone".to_string(), "unknown".to_string()]);
    assert_eq!(orphaned, ["gone"]);
    let lifecycle = |id: &str| durable.engine().view(id).unwrap().record.lifecycle;
    assert_eq!(lifecycle("gone"), Lifecycle::Orphaned);
    assert_eq!(lifecycle("kept"), Lifecycle::Active);
    durable.close().unwrap();
    assert_eq!(
        kinds(dir.path(), "gone").last(),
        Some(&EventKind::TimerOrphaned)
    );
}

#[test]
fn a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let durable = open(dir.path(), T0);
    let second = DurableEngine::open(dir.path(), Durability::Normal, EngineConfig::default(), T0);
    assert!(
        matches!(second, Err(OpenError::Store(StoreError::Locked { .. }))),
        "{second:?}"
    );
    durable.close().unwrap();
}

#[test]
fn the_seed_depends_on_the_instant_and_the_process() {
    assert_eq!(engine_seed(T0, 7), engine_seed(T0, 7));
    assert_ne!(engine_seed(T0, 7), engine_seed(T0, 8));
    assert_ne!(engine_seed(T0, 7), engine_seed(T0 + 1, 7));
}
