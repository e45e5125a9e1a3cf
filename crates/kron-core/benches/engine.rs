//! The engine's hot paths, with no I/O: registering timers, a burst of one-shots due at one
//! instant (poll -> dispatch -> finish, taking the changes after each step as the runtime does),
//! and the timer heap under steady `every` load.
//!
//! `cargo bench -p kron-core --bench engine` (add `-- --quick` for a fast, rough run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use kron_core::engine::{Engine, EngineConfig, Outcome};
use kron_core::input::Input;
use kron_core::schedule::ScheduleSpec;
use kron_core::time::EpochMs;
use kron_core::timer::{Catchup, Overlap, TimerDef};

const T0: EpochMs = 1_800_000_000_000;
/// What the embedded runtime allows in flight: 8 workers x 256.
const CAPACITY: usize = 2_048;

fn def(id: String, schedule: ScheduleSpec, overlap: Overlap) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule,
        timezone: "UTC".into(),
        max_attempts: 3,
        overlap,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: "bench.job".into(),
        task: None,
    }
}

fn one_shots(n: usize, at_ms: EpochMs) -> Vec<TimerDef> {
    (0..n)
        .map(|i| {
            def(
                format!("b{i:07}"),
                ScheduleSpec::at_ms(at_ms),
                Overlap::Delay,
            )
        })
        .collect()
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), 42)
}

/// Registering N new timers (one-shots days ahead), then taking the changes for the commit.
fn register(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_register");
    for n in [1_000usize, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || one_shots(n, T0 + 7 * 86_400_000),
                |defs| {
                    let mut e = engine();
                    for d in defs {
                        e.apply(Input::Register { at: T0, def: d })
                            .expect("valid timer");
                    }
                    black_box(e.take_changes());
                    e
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// N one-shots due at the same instant: the engine side of the burst workload. Each step polls
/// with the runtime's in-flight capacity, takes the changes (RUN_DUE / RUN_STARTED), finishes
/// every dispatched run and takes the changes again (RUN_SUCCEEDED), until all N have run.
fn burst(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_burst");
    group.sample_size(10);
    for n in [10_000usize, 50_000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched(
                || {
                    let mut e = engine();
                    for d in one_shots(n, T0 + 1_000) {
                        e.apply(Input::Register { at: T0, def: d })
                            .expect("valid timer");
                    }
                    e.take_changes();
                    e
                },
                |mut e| {
                    let now = T0 + 1_000;
                    let mut done = 0;
                    while done < n {
                        let dispatched = e
                            .apply_fact(Input::Tick {
                                at: now,
                                capacity: u32::try_from(CAPACITY).unwrap_or(u32::MAX),
                                batch: u32::MAX,
                            })
                            .into_dispatched();
                        black_box(e.take_changes());
                        for d in &dispatched {
                            e.apply_fact(Input::Finish {
                                at: now,
                                run: d.run_id.clone(),
                                outcome: Outcome::Succeeded { duration_ms: 0 },
                            });
                        }
                        black_box(e.take_changes());
                        done += dispatched.len();
                        assert!(
                            !dispatched.is_empty() || e.run_count() > 0,
                            "burst stalled at {done}"
                        );
                    }
                    e
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// The timer heap under load: N `every` timers (overlap=skip keeps the grid) with periods of
/// 1-10 s and spread phases; one iteration advances the clock by 10 ms and polls, finishing what
/// was dispatched. Over time every timer fires, so each iteration pops and pushes about
/// N x 10 ms / 5.5 s heap entries.
fn heap(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_every_tick_10ms");
    for n in [10_000usize, 100_000] {
        let mut e = engine();
        for i in 0..n {
            let period = 1_000 + (i as u64 % 10) * 1_000;
            let d = def(
                format!("e{i:07}"),
                ScheduleSpec::Every { ms: period },
                Overlap::Skip,
            );
            // Spread the phases: timers registered at different instants.
            e.apply(Input::Register {
                at: T0 + (i as i64 * 7919) % 10_000,
                def: d,
            })
            .expect("valid timer");
        }
        e.take_changes();
        let mut now = T0;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                now += 10;
                let dispatched = e
                    .apply_fact(Input::Tick {
                        at: now,
                        capacity: u32::MAX,
                        batch: u32::MAX,
                    })
                    .into_dispatched();
                for d in &dispatched {
                    e.apply_fact(Input::Finish {
                        at: now,
                        run: d.run_id.clone(),
                        outcome: Outcome::Succeeded { duration_ms: 0 },
                    });
                }
                black_box(e.take_changes());
                dispatched.len()
            });
        });
    }
    group.finish();
}

/// `next_wakeup` with 100k pending timers: what the scheduler thread asks before every sleep.
fn next_wakeup(c: &mut Criterion) {
    let mut e = engine();
    for d in one_shots(100_000, T0 + 7 * 86_400_000) {
        e.apply(Input::Register { at: T0, def: d })
            .expect("valid timer");
    }
    e.take_changes();
    c.bench_function("engine_next_wakeup_100k", |b| {
        b.iter(|| e.next_wakeup(black_box(true)));
    });
}

criterion_group!(benches, register, burst, heap, next_wakeup);
criterion_main!(benches);
