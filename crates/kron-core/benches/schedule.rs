//! Next-fire computation: cron expressions in several zones (with and without DST), `every`, and
//! compiling a cron expression.
//!
//! `cargo bench -p kron-core --bench schedule` (add `-- --quick` for a fast, rough run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kron_core::schedule::{Schedule, ScheduleSpec};

/// 2027-03-01T00:00:00Z: a month before the European spring-forward, so walks cross DST rules.
const T0: i64 = 1_803_859_200_000;

/// (label, expression, zone)
const CRONS: &[(&str, &str, &str)] = &[
    ("every_5_min_utc", "*/5 * * * *", "UTC"),
    ("daily_0230_berlin", "30 2 * * *", "Europe/Berlin"),
    (
        "weekdays_0800_new_york",
        "0 8 * * MON-FRI",
        "America/New_York",
    ),
    ("seconds_every_10s_utc", "*/10 * * * * *", "UTC"),
    ("last_day_of_month_tokyo", "0 0 L * *", "Asia/Tokyo"),
    ("yearly_feb29_utc", "0 0 29 2 *", "UTC"),
];

fn cron(spec: (&str, &str, &str)) -> Schedule {
    let (_, expr, tz) = spec;
    Schedule::from_spec(ScheduleSpec::Cron {
        expr: expr.into(),
        timezone: tz.into(),
    })
    .expect("valid cron expression")
}

fn cron_next_after(c: &mut Criterion) {
    let mut group = c.benchmark_group("cron_next_after");
    for &spec in CRONS {
        let schedule = cron(spec);
        group.bench_function(BenchmarkId::from_parameter(spec.0), |b| {
            // Walk forward occurrence by occurrence, as a running timer does; restart from T0
            // before years run out.
            let mut t = T0;
            b.iter(|| {
                t = match schedule.next_after(black_box(t)) {
                    Some(next) if next < T0 + 20 * 365 * 86_400_000 => next,
                    _ => T0,
                };
                t
            });
        });
    }
    group.finish();
}

fn cron_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("cron_compile");
    for &spec in &CRONS[..3] {
        group.bench_function(BenchmarkId::from_parameter(spec.0), |b| {
            b.iter(|| cron(black_box(spec)));
        });
    }
    group.finish();
}

fn every_next_after(c: &mut Criterion) {
    let schedule = Schedule::from_spec(ScheduleSpec::Every { ms: 30_000 }).expect("valid interval");
    c.bench_function("every_next_after", |b| {
        let mut t = T0;
        b.iter(|| {
            t = schedule.next_after(black_box(t)).unwrap_or(T0);
            t
        });
    });
    c.bench_function("every_count_between_1y", |b| {
        b.iter(|| schedule.count_between(black_box(T0), T0 + 365 * 86_400_000, 100_000));
    });
}

criterion_group!(benches, cron_next_after, cron_parse, every_next_after);
criterion_main!(benches);
