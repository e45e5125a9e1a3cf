//! Re-registering a timer while runs of it are in flight: a changed definition never starts a
//! second chain of runs (`delay`, `skip`), whatever changed and whenever. Also jitter against
//! the interval and catch-up.

use super::*;
use crate::event::EventKind as K;
use crate::schedule::ScheduleSpec;
use crate::timer::{Catchup, Overlap, TimerDef};

const T0: EpochMs = 1_800_000_000_000;

fn every(ms: u64, overlap: Overlap) -> TimerDef {
    TimerDef {
        overlap,
        ..super::tests::def("x", ScheduleSpec::Every { ms })
    }
}

fn cron(expr: &str, overlap: Overlap) -> TimerDef {
    TimerDef {
        schedule: ScheduleSpec::Cron {
            expr: expr.into(),
            timezone: "UTC".into(),
        },
        ..every(1_000, overlap)
    }
}

/// Drives an engine with integer time: every attempt takes `duration` ms; attempts whose
/// scheduled time is in `failing` fail (so runs wait to retry). Records, per start of a scheduled
/// run, how many other scheduled runs of the timer were running.
struct Sim {
    e: Engine,
    now: EpochMs,
    duration: i64,
    failing: fn(EpochMs) -> bool,
    /// (end, run id, manual)
    running: Vec<(EpochMs, RunId, bool)>,
    starts: Vec<(EpochMs, EpochMs)>,
    /// Most scheduled runs running at once.
    max_concurrent: usize,
    /// Starts of a scheduled run while another scheduled run was running.
    overlapping_starts: usize,
    events: Vec<K>,
}

impl Sim {
    fn new(def: TimerDef, duration: i64) -> Sim {
        let mut e = Engine::new(EngineConfig::default(), 7);
        assert!(e.register(def, T0).is_ok());
        Sim {
            e,
            now: T0,
            duration,
            failing: |_| false,
            running: Vec::new(),
            starts: Vec::new(),
            max_concurrent: 0,
            overlapping_starts: 0,
            events: Vec::new(),
        }
    }

    /// Advances to `until` in `step` ms.
    fn run(&mut self, until: EpochMs, step: i64) {
        while self.now < until {
            self.now += step;
            let now = self.now;
            let (done, rest): (Vec<_>, Vec<_>) =
                self.running.drain(..).partition(|(end, _, _)| *end <= now);
            self.running = rest;
            for (_, run_id, _) in done {
                let scheduled = self.e.runs.get(&run_id).map(|r| r.scheduled_at);
                let outcome = if scheduled.is_some_and(self.failing) {
                    Outcome::Failed {
                        error: "boom".into(),
                        duration_ms: 1,
                    }
                } else {
                    Outcome::Succeeded { duration_ms: 1 }
                };
                self.e.finish(&run_id, outcome, now);
            }
            for d in self.e.poll(now, usize::MAX) {
                let manual = self.e.runs.get(&d.run_id).is_some_and(|r| r.manual);
                let others = self.running.iter().filter(|(_, _, m)| !m).count();
                if !manual {
                    self.starts.push((now, d.scheduled_at));
                    if others > 0 {
                        self.overlapping_starts += 1;
                    }
                }
                self.running.push((now + self.duration, d.run_id, manual));
            }
            let scheduled = self.running.iter().filter(|(_, _, m)| !m).count();
            self.max_concurrent = self.max_concurrent.max(scheduled);
            self.events
                .extend(self.e.take_changes().events.iter().map(|ev| ev.kind));
        }
    }

    fn register(&mut self, def: TimerDef) {
        assert!(self.e.register(def, self.now).is_ok());
    }
}

/// The definitions a timer is re-registered with in turn, each changing one thing.
fn changes(overlap: Overlap) -> Vec<TimerDef> {
    let base = every(300, overlap);
    let mut out = vec![every(301, overlap), every(290, overlap)];
    out.push(cron("* * * * * *", overlap));
    let mut zone = cron("* * * * * *", overlap);
    zone.timezone = "Europe/Berlin".into();
    out.push(zone);
    let mut jitter = base.clone();
    jitter.jitter_ms = 50;
    out.push(jitter);
    let mut attempts = base.clone();
    attempts.max_attempts = 5;
    out.push(attempts);
    let mut catchup = base.clone();
    catchup.catchup = Catchup::Skip;
    out.push(catchup);
    out.push(base);
    out
}

#[test]
fn a_changed_definition_mid_run_never_starts_a_second_chain() {
    for overlap in [Overlap::Delay, Overlap::Skip] {
        // Runs of 1 s on a 300 ms schedule; every kind of change at many points of a run's life
        // (running, waiting to retry, due but not started).
        for failing in [(|_| false) as fn(EpochMs) -> bool, |at| (at / 100) % 2 == 0] {
            let mut sim = Sim::new(every(300, overlap), 1_000);
            sim.failing = failing;
            let mut at = T0;
            for round in 0..6 {
                for def in changes(overlap) {
                    at += 137 + 61 * round;
                    sim.run(at, 10);
                    sim.register(def);
                }
            }
            sim.run(at + 20_000, 10);
            assert_eq!(sim.overlapping_starts, 0, "{overlap:?}");
            assert_eq!(sim.max_concurrent, 1, "{overlap:?}");
            assert!(sim.starts.len() > 10, "{overlap:?}: {}", sim.starts.len());
        }
    }
}

#[test]
fn allow_takes_a_changed_schedule_at_once_and_runs_concurrently() {
    let mut sim = Sim::new(every(300, Overlap::Allow), 1_000);
    sim.run(T0 + 500, 10);
    sim.register(every(301, Overlap::Allow));
    assert_eq!(
        sim.e.view("x").and_then(|v| v.record.next_fire_at),
        Some(T0 + 801)
    );
    sim.run(T0 + 5_000, 10);
    assert!(sim.max_concurrent >= 3);
}

#[test]
fn delay_counts_the_next_run_from_the_finish_with_the_new_schedule() {
    let mut sim = Sim::new(every(300, Overlap::Delay), 1_000);
    sim.run(T0 + 500, 10); // the first run started at T0+300 and ends at T0+1300
    sim.register(every(700, Overlap::Delay));
    let c = sim.e.take_changes();
    assert!(c.events.iter().any(|ev| ev.kind == K::TimerUpdated));
    assert_eq!(sim.e.view("x").and_then(|v| v.record.next_fire_at), None);
    sim.run(T0 + 3_000, 10);
    let starts: Vec<_> = sim.starts.iter().map(|(at, _)| at - T0).collect();
    assert_eq!(starts, vec![300, 2_000]);
    // A cron: the first match after the finish.
    let mut sim = Sim::new(every(300, Overlap::Delay), 1_500);
    sim.run(T0 + 500, 10);
    sim.register(cron("*/2 * * * * *", Overlap::Delay));
    sim.run(T0 + 5_000, 10);
    let starts: Vec<_> = sim.starts.iter().map(|(at, _)| at - T0).collect();
    assert_eq!(starts, vec![300, 2_000, 4_000]);
}

#[test]
fn skip_keeps_the_new_grid_and_skips_while_the_run_is_in_flight() {
    let mut sim = Sim::new(every(300, Overlap::Skip), 1_000);
    sim.run(T0 + 500, 10);
    sim.register(every(250, Overlap::Skip));
    // The new grid from the change: T0+750, T0+1000, T0+1250 find the run in flight.
    sim.run(T0 + 1_600, 10);
    let skipped = sim
        .events
        .iter()
        .filter(|k| **k == K::RunSkippedOverlap)
        .count();
    assert_eq!(skipped, 3);
    let starts: Vec<_> = sim.starts.iter().map(|(at, s)| (at - T0, s - T0)).collect();
    assert_eq!(starts, vec![(300, 300), (1_500, 1_500)]);
}

#[test]
fn a_change_of_overlap_policy_with_runs_in_flight_ends_in_one_chain() {
    // allow -> delay with several runs in flight (some waiting to retry, one due): no new run
    // starts while one is running, and once they are over a single chain goes on.
    let mut sim = Sim::new(every(300, Overlap::Allow), 1_000);
    sim.failing = |at| at % 600 == 0 && at < T0 + 2_000;
    sim.run(T0 + 1_260, 10);
    assert!(sim.max_concurrent >= 3);
    sim.register(every(300, Overlap::Delay));
    let switched = sim.starts.len();
    sim.max_concurrent = sim.running.iter().filter(|(_, _, m)| !m).count();
    sim.overlapping_starts = 0;
    sim.run(T0 + 60_000, 10);
    assert_eq!(sim.overlapping_starts, 0);
    let after: Vec<_> = sim.starts[switched..].to_vec();
    assert!(after.len() > 10, "{after:?}");
    // Later on, strictly one run at a time, 300 ms after the previous finish.
    let late: Vec<_> = after.iter().filter(|(at, _)| *at > T0 + 20_000).collect();
    for pair in late.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 1_300, "{late:?}");
    }

    // delay -> allow mid-run: the grid comes back at once; skip -> delay: one chain; and back.
    for (from, to) in [
        (Overlap::Delay, Overlap::Allow),
        (Overlap::Skip, Overlap::Delay),
        (Overlap::Delay, Overlap::Skip),
        (Overlap::Allow, Overlap::Skip),
    ] {
        let mut sim = Sim::new(every(300, from), 1_000);
        sim.run(T0 + 500, 10);
        sim.register(every(300, to));
        sim.overlapping_starts = 0;
        let switched = sim.starts.len();
        sim.run(T0 + 30_000, 10);
        let started = sim.starts.len() - switched;
        assert!(started > 5, "{from:?} -> {to:?}: {started}");
        if to == Overlap::Allow {
            assert!(sim.overlapping_starts > 0);
        } else {
            assert_eq!(sim.overlapping_starts, 0, "{from:?} -> {to:?}");
        }
    }
}

#[test]
fn resume_and_revival_with_a_run_in_flight_start_no_second_chain() {
    // Paused mid-run, its schedule changed while paused, resumed after the grid passed.
    let mut sim = Sim::new(every(300, Overlap::Delay), 2_000);
    sim.run(T0 + 500, 10);
    assert!(sim.e.pause("x", sim.now).is_ok());
    sim.register(every(200, Overlap::Delay));
    sim.run(T0 + 1_500, 10);
    assert!(sim.e.resume("x", sim.now).is_ok());
    sim.run(T0 + 10_000, 10);
    assert_eq!(sim.overlapping_starts, 0);
    assert_eq!(sim.max_concurrent, 1);

    // Revival of an orphan whose run was interrupted, with a changed schedule: the retry runs,
    // and the next occurrence is planned from its finish.
    let mut sim = Sim::new(every(300, Overlap::Delay), 2_000);
    sim.run(T0 + 500, 10);
    // What storage holds (the process ends here).
    let timers: Vec<_> = sim.e.timers.iter().map(|(_, t)| t.record()).collect();
    let runs: Vec<_> = sim.e.runs.values().cloned().collect();
    let mut e = Engine::new(EngineConfig::default(), 7);
    assert!(e.restore(timers, runs).is_ok());
    e.mark_orphans_where(|_, _| false, T0 + 600);
    e.recover(T0 + 600);
    assert!(e.register(every(200, Overlap::Delay), T0 + 700).is_ok());
    sim.e = e;
    sim.running.clear();
    sim.now = T0 + 700;
    sim.starts.clear();
    sim.run(T0 + 10_000, 10);
    assert_eq!(sim.overlapping_starts, 0);
    let starts: Vec<_> = sim
        .starts
        .iter()
        .take(2)
        .map(|(at, s)| (at - T0, s - T0))
        .collect();
    // The interrupted run's retry (scheduled at T0+300), then 200 ms after it finished.
    assert_eq!(starts, vec![(710, 300), (2_910, 2_910)]);
}

#[test]
fn a_one_shot_moved_while_its_run_is_in_flight_runs_again_after_it() {
    let at = |ms| TimerDef {
        schedule: ScheduleSpec::at_ms(T0 + ms),
        ..every(1_000, Overlap::Delay)
    };
    let mut sim = Sim::new(at(100), 1_000);
    sim.run(T0 + 500, 10);
    sim.register(at(600));
    sim.run(T0 + 5_000, 10);
    assert_eq!(sim.overlapping_starts, 0);
    let starts: Vec<_> = sim.starts.iter().map(|(at, s)| (at - T0, s - T0)).collect();
    // Held until the first run was over, then run.
    assert_eq!(starts, vec![(100, 100), (1_100, 600)]);
    assert_eq!(
        sim.e.view("x").map(|v| v.state),
        Some(crate::timer::TimerState::Completed)
    );
}

#[test]
fn jitter_as_long_as_the_interval_is_rejected_for_every() {
    let mut e = Engine::new(EngineConfig::default(), 7);
    for (interval, jitter) in [(1_000, 1_000), (1_000, 5_000)] {
        let mut d = every(interval, Overlap::Delay);
        d.jitter_ms = jitter;
        let err = e.register(d, T0).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(err.contains("jitter"), "{err}");
        assert!(err.contains("every"), "{err}");
        assert!(
            err.contains(&crate::duration::format_duration(jitter)),
            "{err}"
        );
        assert!(
            err.contains(&crate::duration::format_duration(interval)),
            "{err}"
        );
    }
    assert!(!e.has_changes());
    let mut d = every(1_000, Overlap::Delay);
    d.jitter_ms = 999;
    assert!(e.register(d, T0).is_ok());
}

#[test]
fn an_occurrence_delayed_by_its_own_jitter_is_never_taken_for_missed() {
    // A cron every second with up to 5 s of jitter: an occurrence planned when the previous one
    // fires could otherwise be due before it, and look missed.
    for overlap in [Overlap::Skip, Overlap::Allow] {
        for catchup in [Catchup::Skip, Catchup::Once] {
            let mut d = cron("* * * * * *", overlap);
            d.jitter_ms = 5_000;
            d.catchup = catchup;
            let mut sim = Sim::new(d, 1);
            sim.run(T0 + 600_000, 10);
            let missed = sim.events.iter().filter(|k| **k == K::RunMissed).count();
            assert_eq!(missed, 0, "{overlap:?} {catchup:?}");
            let due = sim.events.iter().filter(|k| **k == K::RunDue).count();
            // Every occurrence is due once (none coalesced): the fire times only trail the grid.
            assert!(due >= 590, "{overlap:?} {catchup:?}: {due}");
            let scheduled: Vec<_> = sim.starts.iter().map(|(_, s)| *s).collect();
            if overlap == Overlap::Allow {
                assert!(scheduled.windows(2).all(|w| w[1] - w[0] == 1_000));
            }
            for (at, s) in &sim.starts {
                assert!(*at >= *s, "started before its time");
            }
        }
    }
}
