//! Event detail JSON: what the store writes for every event (encode into a reused buffer, as the
//! store does) and reads back for history (decode). Also a timer record, written in full when a
//! definition changes.
//!
//! `cargo bench -p kron-core --bench event_codec` (add `-- --quick` for a fast, rough run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kron_core::event::EventDetail;
use kron_core::schedule::ScheduleSpec;
use kron_core::timer::{Catchup, Lifecycle, Overlap, TimerDef, TimerRecord};

const T0: i64 = 1_800_000_000_000;

fn details() -> Vec<(&'static str, EventDetail)> {
    let traceback = format!(
        "ValueError: upstream returned 503\nTraceback (most recent call last):\n{}",
        "  File \"/srv/app/jobs.py\", line 42, in sync\n    client.fetch(url)\n".repeat(12)
    );
    vec![
        (
            "run_due",
            EventDetail {
                scheduled_at: Some(T0),
                ..Default::default()
            },
        ),
        (
            "run_succeeded",
            EventDetail {
                scheduled_at: Some(T0),
                duration_ms: Some(12),
                ..Default::default()
            },
        ),
        (
            "run_failed_traceback",
            EventDetail {
                scheduled_at: Some(T0),
                error: Some(traceback),
                duration_ms: Some(830),
                next_attempt_at: Some(T0 + 2_000),
                ..Default::default()
            },
        ),
        (
            "timer_created",
            EventDetail {
                schedule: Some("cron 0 8 * * MON-FRI (America/New_York)".to_string()),
                next_run_at: Some(T0 + 3_600_000),
                ..Default::default()
            },
        ),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_detail_encode");
    for (name, detail) in details() {
        let mut buf = Vec::with_capacity(256);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                buf.clear();
                serde_json::to_writer(&mut buf, black_box(&detail)).expect("serializable");
                buf.len()
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_detail_decode");
    for (name, detail) in details() {
        let json = serde_json::to_string(&detail).expect("serializable");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| serde_json::from_str::<EventDetail>(black_box(&json)).expect("valid detail"));
        });
    }
    group.finish();
}

fn timer_record(c: &mut Criterion) {
    let record = TimerRecord {
        def: TimerDef {
            id: "nightly-report".into(),
            schedule: ScheduleSpec::Cron {
                expr: "0 2 * * *".into(),
                timezone: "Europe/Berlin".into(),
            },
            timezone: "Europe/Berlin".into(),
            max_attempts: 3,
            overlap: Overlap::Delay,
            catchup: Catchup::Once,
            jitter_ms: 0,
            fn_name: "app.reports.nightly_report".into(),
            task: None,
        },
        lifecycle: Lifecycle::Active,
        next_scheduled_at: Some(T0),
        next_fire_at: Some(T0),
        created_at: T0 - 86_400_000,
        updated_at: T0 - 1_000,
        last_run_at: Some(T0 - 86_400_000),
        last_status: None,
        last_duration_ms: Some(1_234),
        run_count: 17,
        failure_count: 1,
    };
    let mut buf = Vec::with_capacity(512);
    c.bench_function("timer_def_encode", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&record.def)).expect("serializable");
            buf.len()
        });
    });
    let json = serde_json::to_string(&record.def).expect("serializable");
    c.bench_function("timer_def_decode", |b| {
        b.iter(|| serde_json::from_str::<TimerDef>(black_box(&json)).expect("valid def"));
    });
}

criterion_group!(benches, encode, decode, timer_record);
criterion_main!(benches);
