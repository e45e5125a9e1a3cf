//! Storage hot paths: group commits (the scheduler thread's durable write per engine step) and
//! history reads on a large event log.
//!
//! `cargo bench -p kron-store --bench store` (add `-- --quick` for a fast, rough run). History
//! sizes are 10k and 100k events; `KRON_BENCH_LARGE=1` adds 1M (about 10 s of set-up).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kron_core::changes::Changes;
use kron_core::event::{Event, EventDetail, EventKind};
use kron_core::run::{RunId, RunPhase, RunRecord};
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, LastStatus, Lifecycle, Overlap, TimerDef, TimerRecord};
use kron_store::{Durability, Reader, Store};

const T0: i64 = 1_800_000_000_000;

fn timer(id: &str) -> TimerRecord {
    TimerRecord {
        def: TimerDef {
            id: id.into(),
            schedule: ScheduleSpec::Every { ms: 60_000 },
            timezone: "UTC".into(),
            max_attempts: 3,
            overlap: Overlap::Delay,
            catchup: Catchup::Once,
            jitter_ms: 0,
            fn_name: "bench.jobs.job".into(),
            task: None,
        },
        lifecycle: Lifecycle::Active,
        next_scheduled_at: Some(T0 + 60_000),
        next_fire_at: Some(T0 + 60_000),
        created_at: T0 - 86_400_000,
        updated_at: T0,
        last_run_at: Some(T0),
        last_status: Some(LastStatus::Ok),
        last_duration_ms: Some(3),
        run_count: 10,
        failure_count: 0,
    }
}

fn timer_id(i: usize) -> String {
    format!("t{i:06}")
}

fn run_id(n: usize) -> RunId {
    RunId::from(format!("run_{n:026}"))
}

fn event(ts: i64, timer_id: &str, kind: EventKind, run: usize) -> Event {
    let mut detail = EventDetail {
        scheduled_at: Some(ts),
        ..EventDetail::default()
    };
    if kind == EventKind::RunSucceeded {
        detail.duration_ms = Some(3);
    }
    Event {
        ts,
        timer_id: timer_id.to_string(),
        kind,
        run_id: Some(run_id(run)),
        attempt: Some(1),
        detail,
    }
}

/// A commit as the scheduler thread makes it during a burst: for each of `runs` runs its
/// RUN_DUE, RUN_STARTED and RUN_SUCCEEDED events, the run row written and deleted, and the
/// timer's state columns rewritten. `runs` = 334 gives 1,002 events.
fn run_batch(runs: usize, timers: usize) -> Changes {
    let mut changes = Changes::default();
    for r in 0..runs {
        let id = timer_id(r % timers);
        let ts = T0 + r as i64;
        for kind in [
            EventKind::RunDue,
            EventKind::RunStarted,
            EventKind::RunSucceeded,
        ] {
            changes.events.push(event(ts, &id, kind, r));
        }
        changes.runs.push(RunRecord {
            run_id: run_id(r),
            timer_id: id.clone(),
            scheduled_at: ts,
            attempt: 1,
            phase: RunPhase::Due,
            fire_at: ts,
            manual: false,
        });
        changes.finished_runs.push(run_id(r));
        changes.timer_states.push(timer(&id));
    }
    changes
}

fn store_with_timers(dir: &Path, durability: Durability, timers: usize) -> Store {
    let mut store = Store::open(dir, durability).expect("open store");
    let changes = Changes {
        timers: (0..timers).map(|i| timer(&timer_id(i))).collect(),
        ..Changes::default()
    };
    store.commit(&changes).expect("commit timers");
    store
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_commit");
    for (label, runs, durability) in [
        ("1k_events_normal", 334, Durability::Normal),
        ("9_events_normal", 3, Durability::Normal),
        ("9_events_full_fsync", 3, Durability::Full),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = store_with_timers(dir.path(), durability, 1_000);
        let batch = run_batch(runs, 1_000);
        group.throughput(Throughput::Elements(batch.events.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| store.commit(black_box(&batch)).expect("commit"));
        });
        drop(store);
    }
    group.finish();
}

/// A store holding `events` events spread round-robin over `events / 1,000` timers: every timer
/// has 1,000 events, interleaved with everyone else's, so `history(id, 100)` always returns 100
/// and only the size of the log changes.
fn populated(dir: &Path, events: usize) -> Store {
    let timers = (events / 1_000).max(1);
    let mut store = store_with_timers(dir, Durability::Normal, timers);
    let chunk_runs = 50_000;
    let total_runs = events / 3;
    let mut done = 0;
    while done < total_runs {
        let n = chunk_runs.min(total_runs - done);
        let mut batch = run_batch(n, timers);
        // Distinct run ids per chunk, for realism; timers keep rotating.
        for (i, e) in batch.events.iter_mut().enumerate() {
            e.run_id = Some(run_id(done + i / 3));
            e.timer_id = timer_id((done + i / 3) % timers);
        }
        batch.runs.clear();
        batch.finished_runs.clear();
        batch.timer_states.clear();
        store.commit(&batch).expect("commit history");
        done += n;
    }
    store
}

fn history(c: &mut Criterion) {
    let mut sizes = vec![10_000usize, 100_000];
    if std::env::var_os("KRON_BENCH_LARGE").is_some() {
        sizes.push(1_000_000);
    }
    let mut group = c.benchmark_group("store_history_100");
    for events in sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = populated(dir.path(), events);
        let reader = Reader::open(dir.path()).expect("reader");
        let id = timer_id(events / 2_000);
        group.bench_function(BenchmarkId::new("writer", events), |b| {
            b.iter(|| store.history(black_box(&id), 100).expect("history"));
        });
        group.bench_function(BenchmarkId::new("reader", events), |b| {
            b.iter(|| reader.history(black_box(&id), 100).expect("history"));
        });
        group.bench_function(BenchmarkId::new("reader_timer_row", events), |b| {
            b.iter(|| reader.timer(black_box(&id)).expect("timer"));
        });
        drop(reader);
        drop(store);
    }
    group.finish();
}

criterion_group!(benches, commit, history);
criterion_main!(benches);
