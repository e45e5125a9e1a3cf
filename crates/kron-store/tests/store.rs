//! Integration tests of kron-store: the writer, the reader, the lock and the file checks.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use kron_core::changes::Changes;
use kron_core::event::{Event, EventDetail, EventKind, StoredEvent};
use kron_core::run::{RunId, RunPhase, RunRecord};
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, LastStatus, Lifecycle, Overlap, TimerDef, TimerRecord};
use kron_store::{
    is_locked, read_owner, Durability, EventFilter, Reader, Store, StoreError, DB_FILE, LOCK_FILE,
    SCHEMA_VERSION,
};

// ---------------------------------------------------------------------------------------------
// Builders

fn def(id: &str, schedule: ScheduleSpec) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule,
        timezone: "Europe/Berlin".into(),
        max_attempts: 3,
        overlap: Overlap::Skip,
        catchup: Catchup::Once,
        jitter_ms: 250,
        fn_name: format!("app.jobs.{}", id.replace(['-', '.', ':'], "_")).into(),
        task: None,
    }
}

fn timer(id: &str) -> TimerRecord {
    TimerRecord {
        def: def(id, ScheduleSpec::Every { ms: 60_000 }),
        lifecycle: Lifecycle::Active,
        next_scheduled_at: Some(1_700_000_060_000),
        next_fire_at: Some(1_700_000_060_100),
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
        last_run_at: None,
        last_status: None,
        last_duration_ms: None,
        run_count: 0,
        failure_count: 0,
    }
}

fn run_id(n: u64) -> RunId {
    RunId::from(format!("run_{n:026}"))
}

fn run(n: u64, timer_id: &str, phase: RunPhase) -> RunRecord {
    RunRecord {
        run_id: run_id(n),
        timer_id: timer_id.to_string(),
        scheduled_at: 1_700_000_000_000 + n as i64,
        attempt: 1,
        phase,
        fire_at: 1_700_000_000_000 + n as i64 + 17,
        manual: false,
    }
}

fn event(ts: i64, timer_id: &str, kind: EventKind, run: Option<u64>) -> Event {
    Event {
        ts,
        timer_id: timer_id.to_string(),
        kind,
        run_id: run.map(run_id),
        attempt: run.map(|_| 1),
        detail: EventDetail::default(),
    }
}

/// One run's typical events: due, started, succeeded.
fn run_events(ts: i64, timer_id: &str, run: u64) -> [Event; 3] {
    let mut due = event(ts, timer_id, EventKind::RunDue, Some(run));
    due.detail.scheduled_at = Some(ts);
    due.detail.next_run_at = Some(ts + 60_000);
    let started = event(ts + 1, timer_id, EventKind::RunStarted, Some(run));
    let mut ok = event(ts + 2, timer_id, EventKind::RunSucceeded, Some(run));
    ok.detail.duration_ms = Some(12);
    [due, started, ok]
}

fn open(dir: &Path) -> Store {
    Store::open(dir, Durability::Normal).unwrap()
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn seqs(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

/// Whether this process ignores file permissions (root): read-only-directory tests skip then.
#[cfg(unix)]
fn permissions_ignored() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let writable = std::fs::write(ro.join("probe"), b"x").is_ok();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    writable
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_type_round_trips_through_commit_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let schedules = [
        ScheduleSpec::Cron {
            expr: "0 8 * * MON-FRI".into(),
            timezone: "America/New_York".into(),
        },
        ScheduleSpec::Every { ms: 30_000 },
        ScheduleSpec::After { ms: 10_000 },
        ScheduleSpec::at_ms(-5),
    ];
    let lifecycles = [
        Lifecycle::Active,
        Lifecycle::Paused,
        Lifecycle::Orphaned,
        Lifecycle::Completed,
        Lifecycle::Dead,
    ];
    let statuses = [
        None,
        Some(LastStatus::Ok),
        Some(LastStatus::Failed(
            "ValueError: bad\nTraceback ...\n  line 3".to_string(),
        )),
        Some(LastStatus::Dead(
            "RuntimeError: \"quoted\" ünïcödé".to_string(),
        )),
        Some(LastStatus::SkippedOverlap),
    ];
    let mut timers = Vec::new();
    for (i, lifecycle) in lifecycles.iter().enumerate() {
        for (j, status) in statuses.iter().enumerate() {
            let mut t = timer(&format!("t{i}{j}.x-y:z_w"));
            t.def = def(&t.def.id, schedules[(i + j) % schedules.len()].clone());
            t.def.overlap = [Overlap::Delay, Overlap::Skip, Overlap::Allow][j % 3];
            t.def.catchup = [Catchup::Once, Catchup::Skip, Catchup::All][i % 3];
            t.lifecycle = *lifecycle;
            t.last_status = status.clone();
            t.next_scheduled_at = if j % 2 == 0 { None } else { Some(-1_000) };
            t.next_fire_at = t.next_scheduled_at.map(|s| s + 3);
            t.last_run_at = Some(1_700_000_000_123 + j as i64);
            t.last_duration_ms = if j == 0 {
                None
            } else {
                Some(u64::try_from(i64::MAX).unwrap())
            };
            t.run_count = u64::try_from(i64::MAX).unwrap();
            t.failure_count = j as u64;
            timers.push(t);
        }
    }
    let mut runs = Vec::new();
    for (n, phase) in [RunPhase::Due, RunPhase::Running, RunPhase::RetryWait]
        .into_iter()
        .enumerate()
    {
        let mut r = run(n as u64, "t00.x-y:z_w", phase);
        r.manual = n == 1;
        r.attempt = n as u32 + 1;
        runs.push(r);
    }
    let full_detail = EventDetail {
        scheduled_at: Some(1),
        error: Some("Traceback (most recent call last):\n  boom".to_string()),
        duration_ms: Some(u64::MAX),
        next_attempt_at: Some(-2),
        count: Some(7),
        until: Some(3),
        manual: true,
        schedule: Some("cron 0 8 * * * (Europe/Berlin)".to_string()),
        next_run_at: Some(4),
        worker: Some("worker-1".to_string()),
        fencing_token: Some(9),
    };
    let mut events = Vec::new();
    for (i, kind) in EventKind::ALL.iter().enumerate() {
        let mut e = event(
            1_000 + i as i64,
            "t00.x-y:z_w",
            *kind,
            (i % 2 == 0).then_some(i as u64),
        );
        e.attempt = (i % 3 == 0).then_some(i as u32);
        if i % 2 == 1 {
            e.detail = full_detail.clone();
        }
        events.push(e);
    }
    store
        .commit(&Changes {
            events: events.clone(),
            timers: timers.clone(),
            timer_states: vec![],
            removed_timers: vec![],
            new_runs: runs.clone(),
            runs: vec![],
            finished_runs: vec![],
        })
        .unwrap();

    let mut sorted_timers = timers.clone();
    sorted_timers.sort_by(|a, b| a.def.id.cmp(&b.def.id));
    let check = |state: kron_store::StoredState| {
        assert_eq!(state.timers, sorted_timers);
        assert_eq!(state.runs, runs);
        assert_eq!(state.max_seq, events.len() as i64);
    };
    check(store.load().unwrap());
    let history = store.history("t00.x-y:z_w", 1000).unwrap();
    assert_eq!(
        history.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        events
    );
    assert_eq!(
        seqs(&history),
        (1..=events.len() as i64).collect::<Vec<_>>()
    );

    // Through a reopen and through a Reader.
    store.close().unwrap();
    let store = open(dir.path());
    check(store.load().unwrap());
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.timers().unwrap(), sorted_timers);
    assert_eq!(reader.runs().unwrap(), runs);
    assert_eq!(
        reader.timer("t44.x-y:z_w").unwrap().as_ref(),
        sorted_timers.last()
    );
    assert_eq!(reader.timer("missing").unwrap(), None);
    assert_eq!(reader.history("t00.x-y:z_w", 1000).unwrap(), history);
    assert_eq!(reader.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(reader.event_count().unwrap(), events.len() as u64);
    assert_eq!(reader.integrity_check().unwrap(), vec!["ok".to_string()]);
}

#[test]
fn a_pinned_reader_sees_one_moment_while_the_writer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut waiting = timer("a");
    waiting.next_scheduled_at = None;
    waiting.next_fire_at = None;
    store
        .commit(&Changes {
            timers: vec![waiting],
            runs: vec![run(1, "a", RunPhase::Running)],
            ..Changes::default()
        })
        .unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let pinned = reader.pin().unwrap();
    assert_eq!(reader.runs().unwrap().len(), 1);
    // The run finishes and the timer gets its next occurrence, in one commit.
    store
        .commit(&Changes {
            timers: vec![timer("a")],
            finished_runs: vec![run_id(1)],
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(reader.timer("a").unwrap().unwrap().next_scheduled_at, None);
    assert_eq!(reader.runs().unwrap().len(), 1);
    drop(pinned);
    assert!(reader
        .timer("a")
        .unwrap()
        .unwrap()
        .next_scheduled_at
        .is_some());
    assert!(reader.runs().unwrap().is_empty());
}

#[test]
fn commit_replaces_and_deletes_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .commit(&Changes {
            timers: vec![timer("a"), timer("b"), timer("c")],
            runs: vec![run(1, "a", RunPhase::Due), run(2, "b", RunPhase::Due)],
            ..Changes::default()
        })
        .unwrap();
    let mut a2 = timer("a");
    a2.lifecycle = Lifecycle::Paused;
    a2.run_count = 5;
    let mut r1 = run(1, "a", RunPhase::Running);
    r1.attempt = 2;
    store
        .commit(&Changes {
            // "c" is both upserted and removed: removal wins (applied after upserts).
            timers: vec![a2.clone(), timer("c")],
            removed_timers: vec![
                "b".to_string(),
                "c".to_string(),
                "never-existed".to_string(),
            ],
            // Run 3 starts and finishes within the same step: it must not remain.
            runs: vec![r1.clone(), run(3, "a", RunPhase::Due)],
            finished_runs: vec![run_id(2), run_id(3)],
            ..Changes::default()
        })
        .unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.timers, vec![a2]);
    assert_eq!(snapshot.runs, vec![r1]);
    assert_eq!(snapshot.max_seq, 0);
    store.commit(&Changes::default()).unwrap();
}

#[test]
fn meta_entries_commit_with_changes_and_state_can_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.meta("raft_last_applied").unwrap(), None);
    store
        .commit_with_meta(
            &Changes {
                timers: vec![timer("a"), timer("b")],
                events: vec![event(1, "a", EventKind::TimerCreated, None)],
                runs: vec![run(1, "a", RunPhase::Due)],
                ..Changes::default()
            },
            &[("raft_last_applied", "7")],
        )
        .unwrap();
    assert_eq!(
        store.meta("raft_last_applied").unwrap().as_deref(),
        Some("7")
    );
    // Meta alone is written too.
    store
        .commit_with_meta(&Changes::default(), &[("raft_last_applied", "8")])
        .unwrap();
    assert_eq!(
        store.meta("raft_last_applied").unwrap().as_deref(),
        Some("8")
    );

    store
        .replace_state(
            &[timer("c")],
            &[run(2, "c", RunPhase::Due)],
            None,
            &[("raft_last_applied", "20")],
        )
        .unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.timers, vec![timer("c")]);
    assert_eq!(state.runs, vec![run(2, "c", RunPhase::Due)]);
    // History stays.
    assert_eq!(store.history("a", 10).unwrap().len(), 1);
    assert_eq!(
        store.meta("raft_last_applied").unwrap().as_deref(),
        Some("20")
    );
}

#[test]
fn a_history_copy_replaces_the_history_and_numbering_goes_on_after_it() {
    let source_dir = tempfile::tempdir().unwrap();
    let mut source = open(source_dir.path());
    source
        .commit(&Changes {
            timers: vec![timer("a"), timer("b")],
            events: vec![
                event(1, "a", EventKind::TimerCreated, None),
                event(2, "b", EventKind::TimerCreated, None),
                event(3, "a", EventKind::TimerPaused, None),
            ],
            ..Changes::default()
        })
        .unwrap();
    let upto = source.max_seq();
    assert_eq!(upto, 3);
    // Written after the copy's point: not part of it.
    source
        .commit(&Changes {
            events: vec![event(4, "b", EventKind::TimerPaused, None)],
            ..Changes::default()
        })
        .unwrap();
    let copy = Reader::open(source_dir.path())
        .unwrap()
        .history_upto(upto)
        .unwrap();
    assert_eq!(copy.upto_seq, 3);
    assert_eq!(
        copy.rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    // A replica that had a different (older) history takes the copy's in its place.
    let replica_dir = tempfile::tempdir().unwrap();
    let mut replica = open(replica_dir.path());
    replica
        .commit(&Changes {
            events: vec![event(1, "z", EventKind::TimerCreated, None)],
            ..Changes::default()
        })
        .unwrap();
    replica
        .replace_state(&[timer("a"), timer("b")], &[], Some(&copy), &[])
        .unwrap();
    assert_eq!(replica.max_seq(), 3);
    assert!(replica.history("z", 10).unwrap().is_empty());
    assert_eq!(
        replica.history("a", 10).unwrap(),
        source.history("a", 10).unwrap()
    );
    replica
        .commit(&Changes {
            events: vec![event(4, "b", EventKind::TimerPaused, None)],
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(
        replica.history("b", 10).unwrap(),
        source.history("b", 10).unwrap()
    );
    // Reopened, the numbering still goes on after the copy.
    drop(replica);
    let replica = open(replica_dir.path());
    assert_eq!(replica.max_seq(), 4);
}

#[test]
fn new_runs_are_inserted_and_known_runs_updated_or_written_whole_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .commit(&Changes {
            timers: vec![timer("a")],
            new_runs: vec![run(1, "a", RunPhase::Due), run(2, "a", RunPhase::Due)],
            ..Changes::default()
        })
        .unwrap();
    let mut r1 = run(1, "a", RunPhase::RetryWait);
    r1.attempt = 2;
    // Run 9 has no row (not expected of the engine): the update writes it whole.
    let r9 = run(9, "a", RunPhase::Running);
    store
        .commit(&Changes {
            new_runs: vec![run(3, "a", RunPhase::Running)],
            runs: vec![r1.clone(), r9.clone()],
            finished_runs: vec![run_id(2)],
            ..Changes::default()
        })
        .unwrap();
    let mut runs = store.load().unwrap().runs;
    runs.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    assert_eq!(runs, vec![r1, run(3, "a", RunPhase::Running), r9]);

    // Inserting a run that has a row is an error, and the commit writes nothing.
    let err = store
        .commit(&Changes {
            new_runs: vec![run(4, "a", RunPhase::Due), run(3, "a", RunPhase::Due)],
            ..Changes::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("runs"), "{err}");
    assert_eq!(store.load().unwrap().runs.len(), 3);
}

#[test]
fn failed_commit_writes_nothing_and_reuses_no_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .commit(&Changes {
            events: run_events(10, "a", 1).to_vec(),
            ..Changes::default()
        })
        .unwrap();
    let mut bad = timer("a");
    bad.run_count = u64::MAX;
    let err = store
        .commit(&Changes {
            events: run_events(20, "a", 2).to_vec(),
            timers: vec![bad],
            runs: vec![run(2, "a", RunPhase::Due)],
            ..Changes::default()
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidValue { .. }), "{err:?}");
    assert!(err.to_string().contains("run_count"), "{err}");
    let snapshot = store.load().unwrap();
    assert_eq!(
        (snapshot.timers.len(), snapshot.runs.len(), snapshot.max_seq),
        (0, 0, 3)
    );
    assert_eq!(seqs(&store.history("a", 10).unwrap()), vec![1, 2, 3]);
    store
        .commit(&Changes {
            events: run_events(30, "a", 3).to_vec(),
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(
        seqs(&store.history("a", 10).unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn store_moves_to_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let handle = std::thread::spawn(move || {
        store
            .commit(&Changes {
                events: run_events(1, "a", 1).to_vec(),
                ..Changes::default()
            })
            .unwrap();
        store.load().unwrap().max_seq
    });
    assert_eq!(handle.join().unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// History and event queries

#[test]
fn history_is_latest_first_limited_and_returned_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut events = Vec::new();
    for i in 0..30u64 {
        let timer_id = if i % 3 == 0 { "a" } else { "b" };
        events.push(event(i as i64 * 10, timer_id, EventKind::RunDue, Some(i)));
    }
    store
        .commit(&Changes {
            events,
            ..Changes::default()
        })
        .unwrap();
    // "a" has seqs 1, 4, 7, ..., 28.
    assert_eq!(seqs(&store.history("a", 3).unwrap()), vec![22, 25, 28]);
    assert_eq!(store.history("a", 100).unwrap().len(), 10);
    assert_eq!(seqs(&store.history("a", 100).unwrap())[..2], [1, 4]);
    assert!(store.history("a", 0).unwrap().is_empty());
    assert!(store.history("nobody", 10).unwrap().is_empty());

    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(
        reader.history("b", 2).unwrap(),
        store.history("b", 2).unwrap()
    );
    let all = reader.events(&EventFilter::default()).unwrap();
    assert_eq!(seqs(&all), (1..=30).collect::<Vec<_>>());
    let filtered = reader
        .events(&EventFilter {
            timer_id: Some("b".to_string()),
            since: Some(50),
            until: Some(150),
            ..EventFilter::default()
        })
        .unwrap();
    // ts = 10 * (seq - 1): seqs 6..=15 are in [50, 150), of which "b" (seq-1 not divisible by 3).
    assert_eq!(seqs(&filtered), vec![6, 8, 9, 11, 12, 14, 15]);
    let limited = reader
        .events(&EventFilter {
            timer_id: Some("b".to_string()),
            since: Some(50),
            until: Some(150),
            limit: Some(2),
            ..EventFilter::default()
        })
        .unwrap();
    assert_eq!(seqs(&limited), vec![14, 15]);
    assert!(reader
        .events(&EventFilter {
            limit: Some(0),
            ..EventFilter::default()
        })
        .unwrap()
        .is_empty());

    let mut extra = event(1_000, "a", EventKind::TimerPaused, None);
    extra.detail.next_run_at = Some(5);
    store
        .commit(&Changes {
            events: vec![extra, event(1_001, "b", EventKind::RunMissed, None)],
            ..Changes::default()
        })
        .unwrap();
    let kinds = reader
        .events(&EventFilter {
            kinds: vec![EventKind::TimerPaused, EventKind::RunMissed],
            ..EventFilter::default()
        })
        .unwrap();
    assert_eq!(seqs(&kinds), vec![31, 32]);
    assert_eq!(kinds[0].event.detail.next_run_at, Some(5));

    // Scoped to some timers, newest first with a limit, and counted apart from the limit.
    let scoped = EventFilter {
        timer_ids: Some(vec!["b".to_string(), "nobody".to_string()]),
        since: Some(50),
        until: Some(150),
        limit: Some(3),
        ..EventFilter::default()
    };
    assert_eq!(seqs(&reader.events(&scoped).unwrap()), vec![12, 14, 15]);
    assert_eq!(reader.count_events(&scoped).unwrap(), 7);
    let none = EventFilter {
        timer_ids: Some(Vec::new()),
        ..EventFilter::default()
    };
    assert!(reader.events(&none).unwrap().is_empty());
    assert_eq!(reader.count_events(&none).unwrap(), 0);
    assert_eq!(reader.count_events(&EventFilter::default()).unwrap(), 32);
    let dead_kinds = EventFilter {
        kinds: vec![EventKind::TimerPaused, EventKind::RunMissed],
        timer_ids: Some(vec!["a".to_string()]),
        ..EventFilter::default()
    };
    assert_eq!(seqs(&reader.events(&dead_kinds).unwrap()), vec![31]);
    assert_eq!(reader.count_events(&dead_kinds).unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// Lock

#[test]
fn locked_directory_reports_the_owner_and_changes_nothing() {
    use fs4::FileExt;
    let dir = tempfile::tempdir().unwrap();
    // Another "process" holds the lock on an otherwise empty directory.
    let lock_path = dir.path().join(LOCK_FILE);
    let holder = std::fs::File::create(&lock_path).unwrap();
    FileExt::try_lock(&holder).unwrap();
    std::fs::write(
        &lock_path,
        "pid=4242\nstarted_at=1700000000000\nversion=9.9.9\n",
    )
    .unwrap();
    assert!(is_locked(dir.path()));

    match Store::open(dir.path(), Durability::Full) {
        Err(StoreError::Locked { data_dir, pid }) => {
            assert_eq!(data_dir, dir.path());
            assert_eq!(pid, Some(4242));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert_eq!(
        listing(dir.path()),
        set(&[LOCK_FILE]),
        "no database may be created"
    );
    assert_eq!(
        std::fs::read_to_string(&lock_path).unwrap(),
        "pid=4242\nstarted_at=1700000000000\nversion=9.9.9\n"
    );
    let owner = read_owner(dir.path()).unwrap();
    assert_eq!((owner.pid, owner.version.as_deref()), (4242, Some("9.9.9")));
    FileExt::unlock(&holder).unwrap();
    drop(holder);
    assert!(!is_locked(dir.path()));
}

#[test]
fn second_store_on_a_live_directory_is_locked_and_leaves_the_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    store
        .commit(&Changes {
            events: run_events(1, "a", 1).to_vec(),
            timers: vec![timer("a")],
            ..Changes::default()
        })
        .unwrap();
    let owner = read_owner(dir.path()).unwrap();
    assert_eq!(owner.pid, std::process::id());
    assert_eq!(owner.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(owner.started_at.unwrap() > 1_600_000_000_000);
    let err = Store::open(dir.path(), Durability::Normal).unwrap_err();
    assert!(
        matches!(err, StoreError::Locked { pid: Some(pid), .. } if pid == std::process::id()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    // The first store goes on unharmed.
    store
        .commit(&Changes {
            events: run_events(2, "a", 2).to_vec(),
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(store.load().unwrap().max_seq, 6);
    drop(store);
    assert!(!is_locked(dir.path()));
    assert_eq!(
        read_owner(dir.path()),
        None,
        "a clean close empties kron.lock"
    );
    assert_eq!(open(dir.path()).load().unwrap().max_seq, 6);
}

// ---------------------------------------------------------------------------------------------
// Refused files

fn assert_corrupt_naming(result: Result<impl std::fmt::Debug, StoreError>, path: &Path) -> String {
    match result {
        Err(err @ StoreError::Corrupt { .. }) => {
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            text
        }
        other => panic!("expected Corrupt for {}, got {other:?}", path.display()),
    }
}

/// A closed data directory with some history, for damaging.
fn populated_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut events = Vec::new();
    for i in 0..2_000u64 {
        events.extend(run_events(i as i64, &format!("t{}", i % 10), i));
    }
    store
        .commit(&Changes {
            events,
            timers: (0..10).map(|i| timer(&format!("t{i}"))).collect(),
            ..Changes::default()
        })
        .unwrap();
    store.close().unwrap();
    dir
}

#[test]
fn garbage_file_is_refused_naming_it_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    let garbage: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    let text = assert_corrupt_naming(Store::open(dir.path(), Durability::Normal), &db);
    assert!(text.contains("not an SQLite database"), "{text}");
    assert_corrupt_naming(Reader::open(dir.path()), &db);
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));

    // A few bytes only.
    std::fs::write(&db, b"SQLite").unwrap();
    assert_corrupt_naming(Store::open(dir.path(), Durability::Normal), &db);
    assert_eq!(std::fs::read(&db).unwrap(), b"SQLite");
}

#[test]
fn truncated_file_is_refused_naming_it() {
    let dir = populated_dir();
    let db = dir.path().join(DB_FILE);
    let full = std::fs::read(&db).unwrap();
    assert!(full.len() > 16 * 4096, "{}", full.len());
    for cut in [full.len() / 2, full.len() - 4096, 4096, 50] {
        std::fs::write(&db, &full[..cut]).unwrap();
        assert_corrupt_naming(Store::open(dir.path(), Durability::Normal), &db);
        assert_corrupt_naming(Reader::open(dir.path()), &db);
        assert_eq!(std::fs::read(&db).unwrap().len(), cut, "left untouched");
    }
    // Intact again: fine.
    std::fs::write(&db, &full).unwrap();
    assert_eq!(open(dir.path()).load().unwrap().max_seq, 6_000);
}

#[test]
fn damaged_schema_page_is_refused() {
    let dir = populated_dir();
    let db = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    // Keep the 100-byte header, scribble over the rest of page 1 (the schema table).
    for (i, b) in bytes[100..4096].iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&db, &bytes).unwrap();
    assert_corrupt_naming(Store::open(dir.path(), Durability::Normal), &db);
    assert_corrupt_naming(Reader::open(dir.path()), &db);
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
}

#[test]
fn damaged_data_page_is_found_by_integrity_check() {
    let dir = populated_dir();
    let db = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    let pages = bytes.len() / 4096;
    // Scribble over a page in the middle (the events table or its indexes).
    let page = pages / 2;
    for b in bytes[page * 4096..(page + 1) * 4096].iter_mut() {
        *b = 0x5A;
    }
    std::fs::write(&db, &bytes).unwrap();
    let problems = match Reader::open(dir.path()) {
        Ok(reader) => reader.integrity_check().unwrap(),
        Err(StoreError::Corrupt { detail, .. }) => vec![detail],
        Err(other) => panic!("{other:?}"),
    };
    assert_ne!(problems, vec!["ok".to_string()]);
}

#[test]
fn newer_schema_is_refused_untouched() {
    let dir = populated_dir();
    let db = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for result in [
        Store::open(dir.path(), Durability::Normal).map(|_| ()),
        Reader::open(dir.path()).map(|_| ()),
    ] {
        match result {
            Err(
                err @ StoreError::SchemaTooNew {
                    found: 99,
                    supported,
                    ..
                },
            ) => {
                assert_eq!(supported, SCHEMA_VERSION);
                assert!(err.to_string().contains(&db.display().to_string()), "{err}");
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
}

/// Turns a stopped directory's database back into schema version 1 (one `timers` table holding
/// definition and state), as an older Kron left it.
fn downgrade_to_version_1(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE timers_v1 (
             id TEXT PRIMARY KEY, def TEXT NOT NULL, lifecycle TEXT NOT NULL,
             next_scheduled_at INTEGER, next_fire_at INTEGER, created_at INTEGER NOT NULL,
             updated_at INTEGER NOT NULL, last_run_at INTEGER, last_status TEXT,
             last_duration_ms INTEGER, run_count INTEGER NOT NULL, failure_count INTEGER NOT NULL
         ) WITHOUT ROWID;
         INSERT INTO timers_v1 SELECT * FROM timers;
         DROP VIEW timers;
         DROP TABLE timer_defs;
         DROP TABLE timer_state;
         ALTER TABLE timers_v1 RENAME TO timers;
         DROP INDEX events_dead_ts;
         PRAGMA user_version = 1;
         COMMIT;",
    )
    .unwrap();
}

#[test]
fn a_version_1_directory_is_read_as_it_is_and_migrated_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut done = timer("b-done");
    done.lifecycle = Lifecycle::Completed;
    done.last_status = Some(LastStatus::Dead("Boom: x".into()));
    done.last_run_at = Some(1_700_000_000_500);
    done.last_duration_ms = Some(12);
    done.run_count = 3;
    done.failure_count = 3;
    let timers = vec![timer("a-every"), done];
    {
        let mut store = open(dir.path());
        store
            .commit(&Changes {
                timers: timers.clone(),
                runs: vec![run(1, "a-every", RunPhase::Running)],
                ..Default::default()
            })
            .unwrap();
    }
    let db = dir.path().join(DB_FILE);
    downgrade_to_version_1(&db);

    // A reader (the CLI) reads a version 1 directory without changing it.
    let before = std::fs::read(&db).unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 1);
    assert_eq!(reader.timers().unwrap(), timers);
    drop(reader);
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // The writer migrates it; every timer and run reads back the same, and keeps being written.
    let mut store = open(dir.path());
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.timers, timers);
    assert_eq!(snapshot.runs, vec![run(1, "a-every", RunPhase::Running)]);
    let mut next = timers[0].clone();
    next.run_count = 1;
    store
        .commit(&Changes {
            timer_states: vec![next.clone()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.load().unwrap().timers[0], next);
    drop(store);
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(reader.timer("b-done").unwrap(), Some(timers[1].clone()));
}

#[test]
fn foreign_sqlite_file_is_refused_and_empty_file_is_initialized() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(DB_FILE);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let text = assert_corrupt_naming(Store::open(dir.path(), Durability::Normal), &db);
    assert!(text.contains("without a Kron schema"), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    std::fs::write(&db, b"").unwrap();
    let store = open(dir.path());
    assert_eq!(store.load().unwrap(), kron_store::StoredState::default());
}

// ---------------------------------------------------------------------------------------------
// Reader

#[test]
fn reader_never_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    match Reader::open(&missing) {
        Err(StoreError::NotFound { path }) => assert_eq!(path, missing),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!missing.exists());
    match Reader::open(dir.path()) {
        Err(StoreError::NotFound { path }) => assert_eq!(path, dir.path().join(DB_FILE)),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn reader_sees_the_writers_commits_live() {
    let dir = tempfile::tempdir().unwrap();
    // Initialize and stop, so the reader starts on a stopped (rollback-journal) database...
    open(dir.path()).close().unwrap();
    let early = Reader::open(dir.path()).unwrap();
    assert!(early.timers().unwrap().is_empty());
    // ...then a runtime starts (switching to WAL) and commits.
    let mut store = open(dir.path());
    let late = Reader::open(dir.path()).unwrap();
    for i in 0..5u64 {
        store
            .commit(&Changes {
                events: run_events(i as i64, "a", i).to_vec(),
                timers: vec![TimerRecord {
                    run_count: i + 1,
                    ..timer("a")
                }],
                runs: vec![run(i, "a", RunPhase::Running)],
                finished_runs: i.checked_sub(1).map(run_id).into_iter().collect(),
                ..Default::default()
            })
            .unwrap();
        for reader in [&early, &late] {
            assert_eq!(reader.timer("a").unwrap().unwrap().run_count, i + 1);
            assert_eq!(reader.event_count().unwrap(), 3 * (i + 1));
            assert_eq!(reader.runs().unwrap(), vec![run(i, "a", RunPhase::Running)]);
        }
    }
    assert!(listing(dir.path()).contains("kron.db-wal"));
    // The writer may close while readers are open (it then leaves WAL mode as it is); they go
    // on reading, and so do new readers, creating nothing.
    store.close().unwrap();
    assert_eq!(late.event_count().unwrap(), 15);
    drop((early, late));
    let files = listing(dir.path());
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.event_count().unwrap(), 15);
    drop(reader);
    assert_eq!(listing(dir.path()), files);
    // The next writer tidies up.
    open(dir.path()).close().unwrap();
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
}

#[test]
fn stopped_directory_is_one_file_and_reading_it_creates_nothing() {
    let dir = populated_dir();
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.event_count().unwrap(), 6_000);
    assert_eq!(reader.history("t3", 5).unwrap().len(), 5);
    assert_eq!(reader.integrity_check().unwrap(), vec!["ok".to_string()]);
    drop(reader);
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
    // Dropping a store without `close` restores the rollback journal too.
    let store = open(dir.path());
    assert!(listing(dir.path()).contains("kron.db-wal"));
    drop(store);
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
}

/// Helper run as a child process by `crash_leaves_wal_that_readers_and_the_next_store_use`:
/// commits, then exits without closing anything, like a killed process.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os("KRON_STORE_CRASH_DIR") else {
        return;
    };
    let mut store = open(Path::new(&dir));
    store
        .commit(&Changes {
            events: run_events(1, "a", 1).to_vec(),
            timers: vec![timer("a")],
            runs: vec![run(1, "a", RunPhase::Running)],
            ..Changes::default()
        })
        .unwrap();
    std::process::exit(0);
}

#[test]
fn crash_leaves_wal_that_readers_and_the_next_store_use() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1"])
        .env("KRON_STORE_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        !is_locked(dir.path()),
        "the OS released the dead process's lock"
    );
    let owner = read_owner(dir.path()).unwrap();
    assert_ne!(
        owner.pid,
        std::process::id(),
        "kron.lock still names the dead process"
    );
    let files = listing(dir.path());
    assert!(
        files.contains("kron.db-wal") && files.contains("kron.db-shm"),
        "{files:?}"
    );

    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.timers().unwrap(), vec![timer("a")]);
    assert_eq!(reader.event_count().unwrap(), 3);
    assert_eq!(listing(dir.path()), files, "the reader created nothing");
    drop(reader);

    let store = open(dir.path());
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.runs, vec![run(1, "a", RunPhase::Running)]);
    assert_eq!(snapshot.max_seq, 3);
    store.close().unwrap();
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));
}

// ---------------------------------------------------------------------------------------------
// Read-only directories (skipped as root, which ignores permissions)

#[cfg(unix)]
#[test]
fn read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    if permissions_ignored() {
        eprintln!("skipped: running with permissions ignored (root)");
        return;
    }
    let dir = populated_dir();
    let mode =
        |m: u32| std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(m)).unwrap();
    mode(0o555);
    // A stopped directory reads without write access.
    let reader = Reader::open(dir.path()).map(|r| r.event_count());
    // The writer cannot start and says where.
    let writer = Store::open(dir.path(), Durability::Normal).map(|_| ());
    let fresh = dir.path().join("sub");
    let nested = Store::open(&fresh, Durability::Normal).map(|_| ());
    mode(0o755);
    assert_eq!(reader.unwrap().unwrap(), 6_000);
    for (err, path) in [(writer, dir.path()), (nested, fresh.as_path())] {
        match err {
            Err(err @ StoreError::ReadOnly { .. }) => {
                eprintln!("{err}");
                assert!(
                    err.to_string().contains(&path.display().to_string()),
                    "{err}"
                );
            }
            other => panic!("expected ReadOnly, got {other:?}"),
        }
    }
    assert_eq!(listing(dir.path()), set(&[DB_FILE, LOCK_FILE]));

    // A read-only database file in a writable directory: the writer refuses, naming the file.
    let db = dir.path().join(DB_FILE);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let writer = Store::open(dir.path(), Durability::Normal).map(|_| ());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    match writer {
        Err(err @ StoreError::ReadOnly { .. }) => {
            eprintln!("{err}");
            assert!(err.to_string().contains(&db.display().to_string()), "{err}");
        }
        other => panic!("expected ReadOnly, got {other:?}"),
    }
}

#[cfg(unix)]
#[test]
fn crashed_directory_reads_without_write_access() {
    use std::os::unix::fs::PermissionsExt;
    if permissions_ignored() {
        eprintln!("skipped: running with permissions ignored (root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1"])
        .env("KRON_STORE_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let files = listing(dir.path());
    let chmod = |name: &str, m: u32| {
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(m)).unwrap()
    };
    for name in &files {
        chmod(name, 0o444);
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let read = Reader::open(dir.path())
        .and_then(|reader| Ok((reader.event_count()?, reader.timers()?.len())));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in &files {
        chmod(name, 0o644);
    }
    assert_eq!(
        read.unwrap(),
        (3, 1),
        "the committed transactions in the WAL are visible"
    );
    assert_eq!(listing(dir.path()), files);
}

// ---------------------------------------------------------------------------------------------
// Write-ahead log

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("kron.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// One small commit, like the runtime's hot path: run `n` of timer "a" and the timer's row.
fn commit_run(store: &mut Store, n: u64) {
    store
        .commit(&Changes {
            events: run_events(n as i64, "a", n).to_vec(),
            timers: vec![timer("a")],
            ..Changes::default()
        })
        .unwrap();
}

#[test]
fn finishing_a_background_checkpoint_lets_the_next_commits_reuse_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let checkpointer = store.checkpointer().unwrap();
    for n in 0..20 {
        commit_run(&mut store, n);
    }
    // The background checkpoint copies all but the last commit: the state it leaves when a
    // commit lands while it copies (here a read that began before that commit holds it back).
    let read = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    read.execute_batch("BEGIN; SELECT count(*) FROM events;")
        .unwrap();
    commit_run(&mut store, 20);
    let report = checkpointer.checkpoint().unwrap();
    assert!(report.checkpointed < report.wal_pages, "{report:?}");
    read.execute_batch("COMMIT").unwrap();
    // The log is not fully copied, so the next commit appends instead of starting it over.
    let before = wal_bytes(dir.path());
    commit_run(&mut store, 21);
    assert!(wal_bytes(dir.path()) > before);
    // The writer copies the rest itself; the commits after it overwrite the log from its start.
    let report = store.finish_checkpoint().unwrap();
    assert_eq!(report.checkpointed, report.wal_pages);
    let high_water = wal_bytes(dir.path());
    for n in 22..30 {
        commit_run(&mut store, n);
    }
    assert_eq!(wal_bytes(dir.path()), high_water);
    drop((checkpointer, read));
    store.close().unwrap();
    assert_eq!(Reader::open(dir.path()).unwrap().event_count().unwrap(), 90);
}

#[test]
fn reclaim_log_empties_the_log_and_keeps_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let checkpointer = store.checkpointer().unwrap();
    for n in 0..10 {
        commit_run(&mut store, n);
    }
    assert!(wal_bytes(dir.path()) > 0);
    store.reclaim_log().unwrap();
    assert_eq!(wal_bytes(dir.path()), 0);
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.event_count().unwrap(), 30);
    commit_run(&mut store, 10);
    assert_eq!(reader.event_count().unwrap(), 33);
    drop((checkpointer, reader));
    store.close().unwrap();
    assert_eq!(Reader::open(dir.path()).unwrap().event_count().unwrap(), 33);
}

#[test]
fn reclaim_log_waits_only_briefly_for_a_reader_and_leaves_the_log_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    commit_run(&mut store, 0);
    // A reader in the middle of a read holds the pages of the log it started with.
    let reader = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let count: i64 = reader
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 3);
    commit_run(&mut store, 1);
    let before = wal_bytes(dir.path());
    let started = Instant::now();
    store.reclaim_log().unwrap();
    assert!(
        started.elapsed().as_secs_f64() < 2.0,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(wal_bytes(dir.path()), before);
    // Once the read ends, the log can be emptied; nothing was lost meanwhile.
    reader.execute_batch("COMMIT").unwrap();
    store.reclaim_log().unwrap();
    assert_eq!(wal_bytes(dir.path()), 0);
    assert_eq!(
        seqs(&store.history("a", 10).unwrap()),
        (1..=6).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// Compaction

/// 20 timers with 200 runs each (3 events a run, the last with a 200-byte error), t0's
/// `TIMER_CREATED` as the newest event, and two runs in flight: run 0 of t0 (the oldest of all)
/// and run 21 of t1. Returns the number of events and the runs in flight.
fn compaction_fixture(store: &mut Store) -> (u64, Vec<RunRecord>) {
    let timers = 20u64;
    let runs_per_timer = 200u64;
    let mut events = Vec::new();
    for r in 0..runs_per_timer {
        for t in 0..timers {
            let n = r * timers + t;
            let mut evs = run_events(n as i64 * 10, &format!("t{t}"), n);
            evs[2].detail.error = Some("x".repeat(200));
            events.extend(evs);
        }
    }
    events.push(event(0, "t0", EventKind::TimerCreated, None));
    // In flight: run 0 of t0 (the oldest of all) and run 21 of t1.
    let in_flight = vec![
        run(0, "t0", RunPhase::RetryWait),
        run(21, "t1", RunPhase::Running),
    ];
    store
        .commit(&Changes {
            events,
            runs: in_flight.clone(),
            ..Changes::default()
        })
        .unwrap();
    (3 * timers * runs_per_timer + 1, in_flight)
}

#[test]
fn compact_keeps_recent_and_in_flight_runs_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let timers = 20u64;
    let (total, _) = compaction_fixture(&mut store);
    let max_seq = store.load().unwrap().max_seq;
    assert_eq!(max_seq, total as i64);

    let report = store.compact(Some(2), None).unwrap();
    // Each timer keeps its 2 latest runs (6 events); t0 and t1 also keep their in-flight run, and
    // t0 its TIMER_CREATED (the newest event of all).
    assert_eq!(report.events_deleted, total - (timers * 6 + 3 + 3 + 1));
    assert!(
        report.bytes_after < report.bytes_before / 4,
        "file should shrink: {report:?}"
    );
    let reader = Reader::open(dir.path()).unwrap();
    let t0 = reader.history("t0", 100).unwrap();
    assert_eq!(t0.len(), 10);
    assert_eq!(t0[0].event.run_id, Some(run_id(0)));
    assert!(t0[3..9].iter().all(|e| e
        .event
        .run_id
        .as_ref()
        .is_some_and(|id| *id >= run_id(3960))));
    assert_eq!(t0[9].event.kind, EventKind::TimerCreated);
    assert_eq!(
        reader.history("t1", 100).unwrap()[0].event.run_id,
        Some(run_id(21))
    );
    assert_eq!(reader.history("t5", 100).unwrap().len(), 6);
    assert_eq!(reader.integrity_check().unwrap(), vec!["ok".to_string()]);

    // Time-based: everything before ts 39_900 except in-flight runs: the older kept run of every
    // timer (60), the newer one of t0..t9 (30) and TIMER_CREATED (ts 0).
    let report = store.compact(None, Some(39_900)).unwrap();
    assert_eq!(report.events_deleted, 60 + 30 + 1);
    assert_eq!(reader.event_count().unwrap(), 6 + 3 * 10);

    // Delete everything deletable; seqs are still never reused, also across a reopen.
    let report = store.compact(Some(0), None).unwrap();
    assert_eq!(report.events_deleted, 30);
    assert_eq!(reader.event_count().unwrap(), 6);
    store
        .commit(&Changes {
            finished_runs: vec![run_id(0), run_id(21)],
            ..Changes::default()
        })
        .unwrap();
    store.compact(Some(0), None).unwrap();
    assert_eq!(reader.event_count().unwrap(), 0);
    drop(reader);
    store.close().unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.load().unwrap().max_seq, max_seq);
    store
        .commit(&Changes {
            events: vec![event(1, "t0", EventKind::TimerResumed, None)],
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(seqs(&store.history("t0", 10).unwrap()), vec![max_seq + 1]);
}

#[test]
fn retainer_in_small_steps_keeps_exactly_what_one_compaction_keeps() {
    let whole_dir = tempfile::tempdir().unwrap();
    let mut whole = open(whole_dir.path());
    compaction_fixture(&mut whole);
    let expected = whole.compact(Some(2), None).unwrap().events_deleted;

    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (total, _) = compaction_fixture(&mut store);
    let keep = std::num::NonZeroUsize::new(2).unwrap();
    let mut retainer = store.retainer(keep).unwrap();
    let (mut steps, mut deleted) = (0, 0);
    loop {
        // At most 50 events per transaction, and the writer commits between them.
        let step = retainer
            .step(std::time::Duration::from_secs(10), 50)
            .unwrap();
        assert!(step.events_deleted <= 50, "{step:?}");
        steps += 1;
        deleted += step.events_deleted;
        store.commit(&Changes::default()).unwrap();
        if step.pass_done {
            break;
        }
    }
    assert!(steps >= expected / 50, "{steps} steps");
    assert_eq!(deleted, expected);
    let all = |dir: &Path| {
        Reader::open(dir)
            .unwrap()
            .events(&EventFilter::default())
            .unwrap()
    };
    let kept = all(dir.path());
    assert_eq!(kept, all(whole_dir.path()));
    assert_eq!(kept.len() as u64, total - deleted);
    // A pass over nothing left to delete deletes nothing; seqs still go on from the highest.
    retainer.begin_pass();
    let step = retainer
        .step(std::time::Duration::from_secs(10), 1_000)
        .unwrap();
    assert_eq!(step.events_deleted, 0);
    drop(retainer);
    let max_seq = store.load().unwrap().max_seq;
    assert_eq!(max_seq, total as i64);
    store.close().unwrap();
    assert_eq!(open(dir.path()).load().unwrap().max_seq, total as i64);
}

/// A commit waits for a retention transaction in hand only until its next statement: while a
/// retainer deletes 150,000 events in a loop on another thread (what the runtime's retention
/// thread does, without its pauses), commits keep going through quickly. Run with `--nocapture`
/// for the numbers; the bound is loose (a debug build, a busy machine), the whole pass takes
/// seconds.
#[test]
fn commits_wait_at_most_a_statement_for_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    fill(&mut store, 10, 0, 150_000, 5_000);
    // As in the runtime, no commit checkpoints: that is the checkpoint thread's work.
    let _checkpointer = store.checkpointer().unwrap();
    // The same commits without retention, for comparison.
    let mut alone = Vec::new();
    for n in 0..2_000 {
        let started = Instant::now();
        commit_run(&mut store, 500_000 + n);
        alone.push(started.elapsed());
    }
    alone.sort();
    println!(
        "alone: {} commits, p99 {:?}, max {:?}",
        alone.len(),
        alone[alone.len() * 99 / 100],
        alone[alone.len() - 1]
    );
    let mut retainer = store
        .retainer(std::num::NonZeroUsize::new(1).unwrap())
        .unwrap();
    let pass = std::thread::spawn(move || {
        let began = Instant::now();
        let (mut deleted, mut steps) = (0, 0);
        loop {
            let step = retainer
                .step(std::time::Duration::from_millis(2), 1_000)
                .unwrap();
            deleted += step.events_deleted;
            steps += 1;
            if step.pass_done {
                return (deleted, steps, began.elapsed());
            }
        }
    });
    let mut waits = Vec::new();
    let mut n = 1_000_000;
    while !pass.is_finished() {
        let started = Instant::now();
        commit_run(&mut store, n);
        waits.push(started.elapsed());
        n += 1;
    }
    let (deleted, steps, took) = pass.join().unwrap();
    waits.sort();
    let p99 = waits[waits.len() * 99 / 100];
    let max = waits[waits.len() - 1];
    println!(
        "retention deleted {deleted} events in {steps} transactions, {took:?}; {} commits meanwhile, p99 {p99:?}, max {max:?}",
        waits.len()
    );
    assert!(deleted >= 149_000, "{deleted}");
    assert!(steps >= 150, "{steps} transactions");
    assert!(max < std::time::Duration::from_millis(500), "max {max:?}");
}

/// Events of no run (a timer registered again with changes at every start, paused and resumed)
/// are bounded too: the latest N of them stay, whether or not the timer ever ran.
#[test]
fn events_of_no_run_are_bounded_by_the_same_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let mut events = vec![event(0, "quiet", EventKind::TimerCreated, None)];
    for i in 1..=50 {
        events.push(event(i, "quiet", EventKind::TimerUpdated, None));
    }
    // "busy" has 3 runs and 20 pauses after its last run.
    events.push(event(0, "busy", EventKind::TimerCreated, None));
    for r in 0..3 {
        events.extend(run_events(100 + r as i64, "busy", r));
    }
    for i in 0..20 {
        events.push(event(200 + i, "busy", EventKind::TimerPaused, None));
    }
    store
        .commit(&Changes {
            events,
            ..Changes::default()
        })
        .unwrap();
    let keep = std::num::NonZeroUsize::new(5).unwrap();
    let mut retainer = store.retainer(keep).unwrap();
    while !retainer
        .step(std::time::Duration::from_secs(10), 7)
        .unwrap()
        .pass_done
    {}
    drop(retainer);
    let quiet = store.history("quiet", 1_000).unwrap();
    assert_eq!(quiet.len(), 5);
    assert!(quiet
        .iter()
        .all(|e| e.event.kind == EventKind::TimerUpdated));
    assert_eq!(quiet[4].event.ts, 50);
    // All three runs stay (fewer than 5); of the 21 events of no run, the latest 5.
    let busy = store.history("busy", 1_000).unwrap();
    let kinds: Vec<EventKind> = busy.iter().map(|e| e.event.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == EventKind::RunDue).count(), 3);
    assert_eq!(busy.len(), 9 + 5);
    assert_eq!(busy[9].event.ts, 215);
    // The one-transaction compaction applies the same rule.
    let dir2 = tempfile::tempdir().unwrap();
    let mut other = open(dir2.path());
    let mut events = vec![event(0, "quiet", EventKind::TimerCreated, None)];
    for i in 1..=50 {
        events.push(event(i, "quiet", EventKind::TimerUpdated, None));
    }
    other
        .commit(&Changes {
            events,
            ..Changes::default()
        })
        .unwrap();
    assert_eq!(other.compact(Some(5), None).unwrap().events_deleted, 46);
}

// ---------------------------------------------------------------------------------------------
// Volume

/// Commits events number `start..start + count` (3 per run, runs spread over `timers` timers) in
/// commits of `batch` events, with the run and timer rows a runtime would write. Returns the
/// rate in events/s of the `commit` calls alone (building the changes is not counted).
fn fill(store: &mut Store, timers: u64, start: u64, count: u64, batch: u64) -> f64 {
    let mut committing = std::time::Duration::ZERO;
    let mut n = start;
    while n < start + count {
        let mut changes = Changes::default();
        let end = (n + batch).min(start + count);
        while n < end {
            let run = n / 3;
            let timer_id = format!("timer-{:04}", run % timers);
            let evs = run_events(1_700_000_000_000 + n as i64, &timer_id, run);
            changes.events.push(evs[(n % 3) as usize].clone());
            if n % 3 == 2 {
                changes.finished_runs.push(run_id(run));
            } else if n.is_multiple_of(3) {
                changes.runs.push(crate::run(run, &timer_id, RunPhase::Due));
            }
            n += 1;
        }
        let touched: BTreeSet<String> = changes.events.iter().map(|e| e.timer_id.clone()).collect();
        changes.timers = touched.iter().map(|id| timer(id)).collect();
        let started = Instant::now();
        store.commit(&changes).unwrap();
        committing += started.elapsed();
    }
    count as f64 / committing.as_secs_f64()
}

/// Median of `rounds` calls to `history(timer, 100)` over different timers, in microseconds.
fn history_latency_us(reader: &Reader, timers: u64, rounds: u64) -> f64 {
    let mut samples = Vec::new();
    for i in 0..rounds {
        let timer_id = format!("timer-{:04}", (i * 7919) % timers);
        let started = Instant::now();
        let events = reader.history(&timer_id, 100).unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(events.len(), 100);
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[test]
fn fifty_thousand_events_stay_fast() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let rate = fill(&mut store, 100, 0, 50_000, 10_000);
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.event_count().unwrap(), 50_000);
    let latency = history_latency_us(&reader, 100, 200);
    println!("50k events: commit {rate:.0} events/s, history(100) median {latency:.0} us (this build's profile)");
    // Generous for unoptimized builds; release is far below (see the ignored test).
    assert!(latency < 20_000.0, "history(100) took {latency} us");
    // In-flight runs: the last run's first two events left a run behind.
    assert_eq!(store.load().unwrap().runs.len(), 1);
}

/// `cargo test -p kron-store --release -- --ignored --nocapture`
#[test]
#[ignore = "a million events: run in release with --nocapture for the numbers"]
fn million_events_throughput_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let db = dir.path().join(DB_FILE);

    // A 50,000-run burst: 150k events in one commit.
    let burst = fill(&mut store, 1000, 0, 150_000, 150_000);
    println!("burst: 150k events in one commit: {burst:.0} events/s");
    store.close().unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let started = Instant::now();
    let check = reader.integrity_check().unwrap();
    println!(
        "150k events ({:.1} MB): integrity_check {:?} in {:.1} ms",
        std::fs::metadata(&db).unwrap().len() as f64 / 1e6,
        check,
        started.elapsed().as_secs_f64() * 1e3
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let started = Instant::now();
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    println!(
        "150k events: quick_check {quick} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    drop((conn, reader));

    // Small steps (10 events each), as a quiet runtime commits them, in both durabilities.
    for durability in [Durability::Normal, Durability::Full] {
        let small = tempfile::tempdir().unwrap();
        let mut store = Store::open(small.path(), durability).unwrap();
        let rate = fill(&mut store, 100, 0, 20_000, 10);
        println!(
            "small: 2,000 commits of 10 events, {durability:?}: {:.0} commits/s ({rate:.0} events/s)",
            rate / 10.0
        );
    }

    let mut store = open(dir.path());
    let steady = fill(&mut store, 1000, 150_000, 850_000, 5_000);
    println!("steady: 850k events in commits of 5k: {steady:.0} events/s");
    store.close().unwrap();

    let started = Instant::now();
    let store = open(dir.path());
    println!(
        "open with 1M events: {:.2} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let snapshot = store.load().unwrap();
    println!(
        "load: {} timers, {} runs in {:.2} ms",
        snapshot.timers.len(),
        snapshot.runs.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.event_count().unwrap(), 1_000_000);
    let latency = history_latency_us(&reader, 1000, 1000);
    println!("1M events: history(timer, 100) median {latency:.0} us");
    let started = Instant::now();
    let since = reader
        .events(&EventFilter {
            since: Some(1_700_000_000_000 + 999_000),
            ..EventFilter::default()
        })
        .unwrap();
    println!(
        "1M events: events(since = last 1000 ms) -> {} in {:.2} ms",
        since.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let started = Instant::now();
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .unwrap();
    println!(
        "1M events ({:.1} MB): quick_check {quick} in {:.1} ms",
        std::fs::metadata(&db).unwrap().len() as f64 / 1e6,
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(conn);
    drop(reader);
    drop(store);
    let mut store = open(dir.path());
    let started = Instant::now();
    let report = store
        .compact(None, Some(1_700_000_000_000 + 100_000))
        .unwrap();
    println!(
        "compact(older_than: the oldest 10%): {report:?} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let report = store.compact(Some(10), None).unwrap();
    println!(
        "compact(keep 10 runs per timer): {report:?} in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert!(
        latency < 1_000.0 || cfg!(debug_assertions),
        "history(100) took {latency} us"
    );
}

#[test]
fn state_only_updates_keep_the_definition_and_insert_missing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let a = timer("a");
    store
        .commit(&Changes {
            timers: vec![a.clone()],
            ..Changes::default()
        })
        .unwrap();
    // A state update carries the (unchanged) definition in memory, but only state is written.
    let mut a2 = a.clone();
    a2.run_count = 7;
    a2.next_fire_at = Some(123);
    // A state update for a row that was never written falls back to a full write.
    let mut b = timer("b");
    b.failure_count = 2;
    store
        .commit(&Changes {
            timer_states: vec![a2.clone(), b.clone()],
            ..Changes::default()
        })
        .unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.timers, vec![a2, b]);
}

/// Large commits go through the multi-row statements: 70 timers (two full groups and singles),
/// a run written twice in one merged commit (the later row wins), runs deleted in groups, and a
/// state update for a timer whose row was never written, which is then written whole.
#[test]
fn grouped_writes_keep_the_last_value_and_write_missing_rows_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let ids: Vec<String> = (0..70).map(|i| format!("t{i:02}")).collect();
    store
        .commit(&Changes {
            timers: ids.iter().map(|id| timer(id)).collect(),
            runs: (0..70)
                .map(|n| run(n, &ids[n as usize], RunPhase::Due))
                .collect(),
            ..Changes::default()
        })
        .unwrap();
    let mut first = Changes {
        runs: vec![run(5, "t05", RunPhase::Due)],
        ..Changes::default()
    };
    let mut states: Vec<TimerRecord> = ids.iter().map(|id| timer(id)).collect();
    for state in &mut states {
        state.run_count = 7;
    }
    let mut ghost = timer("ghost");
    ghost.run_count = 3;
    states.push(ghost);
    first.merge(Changes {
        runs: vec![run(5, "t05", RunPhase::Running)],
        timer_states: states,
        finished_runs: (40..70).map(run_id).collect(),
        ..Changes::default()
    });
    store.commit(&first).unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.timers.len(), 71);
    assert!(snapshot
        .timers
        .iter()
        .all(|t| t.run_count == if &*t.def.id == "ghost" { 3 } else { 7 }));
    assert_eq!(snapshot.runs.len(), 40);
    let five = snapshot
        .runs
        .iter()
        .find(|r| r.run_id == run_id(5))
        .unwrap();
    assert_eq!(five.phase, RunPhase::Running);
}

#[test]
fn a_data_dir_that_is_a_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory\n").unwrap();
    let under = file.join("sub").join("dir");
    for data_dir in [file.clone(), under] {
        match Store::open(&data_dir, Durability::Normal).map(|_| ()) {
            Err(err @ StoreError::NotADirectory { .. }) => {
                let text = err.to_string();
                assert!(
                    text.starts_with(&format!(
                        "invalid data_dir {:?}",
                        data_dir.display().to_string()
                    )),
                    "{text}"
                );
                assert!(
                    text.ends_with(&format!("{} is a file, not a directory", file.display())),
                    "{text}"
                );
            }
            other => panic!("expected NotADirectory, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory\n");
    assert_eq!(listing(dir.path()), set(&["a-file"]));
}
