//! The engine as a replicated state machine: the properties a log-replaying node and a
//! snapshot-installing node rely on.
//!
//! * Snapshot and go on: a random sequence of inputs, a snapshot at a random point restored into
//!   a fresh engine, and the rest applied to both: identical outputs, changes and final
//!   snapshots.
//! * Same inputs, same bytes: two engines fed the same inputs produce the same outputs, changes
//!   and snapshots, byte for byte (their hash tables iterate in different orders).
//!
//! Inputs are generated as abstract steps and made concrete against the reference engine (a
//! `Finish` names a run it actually started), then the same concrete input goes to every engine.

use kron_core::changes::Changes;
use kron_core::engine::{Engine, EngineConfig, Outcome};
use kron_core::input::{Input, Output, Rejected};
use kron_core::run::RunId;
use kron_core::schedule::ScheduleSpec;
use kron_core::time::EpochMs;
use kron_core::timer::{Catchup, Overlap, TimerDef};
use proptest::prelude::*;

const T0: EpochMs = 1_800_000_000_000;
const NAMES: [&str; 5] = ["alpha", "b", "c-1", "delta", "e"];

/// One abstract step; indices pick among names, running runs, and choices.
#[derive(Debug, Clone)]
enum Step {
    Register {
        name: usize,
        schedule: u8,
        jitter: u8,
        overlap: u8,
        catchup: u8,
        attempts: u8,
    },
    Pause(usize),
    Resume(usize),
    Trigger(usize),
    Remove(usize),
    Tick {
        advance_ms: u32,
        capacity: u8,
        batch: u8,
    },
    Finish {
        pick: usize,
        ok: bool,
    },
    NotStarted(usize),
    Recover {
        advance_ms: u32,
    },
    MarkOrphans(Vec<usize>),
}

fn step() -> impl Strategy<Value = Step> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (name.clone(), 0u8..6, 0u8..3, 0u8..3, 0u8..3, 1u8..4).prop_map(
            |(name, schedule, jitter, overlap, catchup, attempts)| Step::Register {
                name,
                schedule,
                jitter,
                overlap,
                catchup,
                attempts,
            }
        ),
        1 => name.clone().prop_map(Step::Pause),
        1 => name.clone().prop_map(Step::Resume),
        1 => name.clone().prop_map(Step::Trigger),
        1 => name.clone().prop_map(Step::Remove),
        6 => (0u32..2_500, 0u8..4, 1u8..4).prop_map(|(advance_ms, capacity, batch)| Step::Tick {
            advance_ms,
            capacity,
            batch,
        }),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, ok)| Step::Finish { pick, ok }),
        1 => any::<usize>().prop_map(Step::NotStarted),
        1 => (0u32..20_000).prop_map(|advance_ms| Step::Recover { advance_ms }),
        1 => proptest::collection::vec(name, 0..3).prop_map(Step::MarkOrphans),
    ]
}

fn definition(
    name: &str,
    schedule: u8,
    jitter: u8,
    overlap: u8,
    catchup: u8,
    attempts: u8,
) -> TimerDef {
    let schedule = match schedule {
        0 => ScheduleSpec::Every { ms: 1_000 },
        1 => ScheduleSpec::Every { ms: 3_000 },
        2 => ScheduleSpec::After { ms: 1_500 },
        3 => ScheduleSpec::at_ms(T0 + 4_000),
        4 => ScheduleSpec::Cron {
            expr: "*/2 * * * * *".into(),
            timezone: "UTC".into(),
        },
        _ => ScheduleSpec::Cron {
            expr: "* * * * *".into(),
            timezone: "Europe/Berlin".into(),
        },
    };
    // Jitter must stay below an `every` interval.
    let jitter_ms = [0, 400, 900][usize::from(jitter)];
    TimerDef {
        id: name.into(),
        schedule,
        timezone: "UTC".into(),
        max_attempts: u32::from(attempts),
        overlap: [Overlap::Delay, Overlap::Skip, Overlap::Allow][usize::from(overlap)],
        catchup: [Catchup::Once, Catchup::Skip, Catchup::All][usize::from(catchup)],
        jitter_ms,
        fn_name: format!("jobs.{name}").into(),
    }
}

/// Makes the concrete inputs from abstract steps, against a reference engine kept in step.
struct Driver {
    now: EpochMs,
    /// Attempts handed out and not finished yet, oldest first.
    running: Vec<RunId>,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            now: T0,
            running: Vec::new(),
        }
    }

    fn input(&mut self, step: &Step) -> Input {
        let at = self.now;
        let timer = |i: usize| NAMES[i].to_string();
        match step {
            Step::Register {
                name,
                schedule,
                jitter,
                overlap,
                catchup,
                attempts,
            } => Input::Register {
                at,
                def: definition(
                    NAMES[*name],
                    *schedule,
                    *jitter,
                    *overlap,
                    *catchup,
                    *attempts,
                ),
            },
            Step::Pause(i) => Input::Pause {
                at,
                timer: timer(*i),
            },
            Step::Resume(i) => Input::Resume {
                at,
                timer: timer(*i),
            },
            Step::Trigger(i) => Input::Trigger {
                at,
                timer: timer(*i),
            },
            Step::Remove(i) => Input::Remove {
                at,
                timer: timer(*i),
            },
            Step::Tick {
                advance_ms,
                capacity,
                batch,
            } => {
                self.now += i64::from(*advance_ms);
                Input::Tick {
                    at: self.now,
                    capacity: u32::from(*capacity),
                    batch: u32::from(*batch),
                }
            }
            Step::Finish { pick, ok } => match self.take_running(*pick) {
                Some(run) => Input::Finish {
                    at,
                    run,
                    outcome: if *ok {
                        Outcome::Succeeded { duration_ms: 3 }
                    } else {
                        Outcome::Failed {
                            error: "ValueError: no".into(),
                            duration_ms: 3,
                        }
                    },
                },
                // Nothing running: a report for an unknown run (ignored by the engine).
                None => Input::Finish {
                    at,
                    run: RunId::from("run_00000000000000000000000000"),
                    outcome: Outcome::Succeeded { duration_ms: 1 },
                },
            },
            Step::NotStarted(pick) => match self.take_running(*pick) {
                Some(run) => Input::NotStarted { at, run },
                None => Input::Tick {
                    at,
                    capacity: 0,
                    batch: 1,
                },
            },
            Step::Recover { advance_ms } => {
                // A restart: what was handed out is lost with the process.
                self.running.clear();
                self.now += i64::from(*advance_ms);
                Input::Recover { at: self.now }
            }
            Step::MarkOrphans(names) => Input::MarkOrphans {
                at,
                timers: names.iter().map(|i| timer(*i)).collect(),
            },
        }
    }

    fn take_running(&mut self, pick: usize) -> Option<RunId> {
        if self.running.is_empty() {
            return None;
        }
        let i = pick % self.running.len();
        Some(self.running.remove(i))
    }

    /// Notes what the reference engine handed out.
    fn saw(&mut self, output: &Result<Output, Rejected>) {
        if let Ok(Output::Dispatched { runs }) = output {
            self.running.extend(runs.iter().map(|d| d.run_id.clone()));
        }
    }
}

/// What one input did, as bytes: its output (serialized: slots are not data) and the changes.
fn record(engine: &mut Engine, input: Input) -> (String, String, Result<Output, Rejected>) {
    let output = engine.apply(input);
    let shown = match &output {
        Ok(out) => serde_json::to_string(out).expect("outputs serialize"),
        Err(e) => format!("rejected: {e}"),
    };
    let changes: Changes = engine.take_changes();
    (shown, format!("{changes:?}"), output)
}

fn engine() -> Engine {
    Engine::new(EngineConfig::default(), 42)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_snapshot_goes_on_exactly_like_the_engine_it_was_taken_of(
        steps in proptest::collection::vec(step(), 1..120),
        split in any::<proptest::sample::Index>(),
    ) {
        let split = split.index(steps.len() + 1);
        let mut driver = Driver::new();
        let mut reference = engine();
        let mut inputs = Vec::new();
        let mut expected = Vec::new();
        for step in &steps {
            let input = driver.input(step);
            inputs.push(input.clone());
            let (out, changes, output) = record(&mut reference, input);
            driver.saw(&output);
            expected.push((out, changes));
        }

        let mut before = engine();
        for input in &inputs[..split] {
            let _ = record(&mut before, input.clone());
        }
        let snapshot = before.snapshot();
        let mut restored = Engine::from_snapshot(&snapshot).expect("snapshot restores");
        prop_assert_eq!(&restored.snapshot(), &snapshot, "restoring changes nothing");
        for (i, input) in inputs[split..].iter().enumerate() {
            let (out_b, changes_b, _) = record(&mut before, input.clone());
            let (out_r, changes_r, _) = record(&mut restored, input.clone());
            let (out_e, changes_e) = &expected[split + i];
            prop_assert_eq!(&out_b, out_e);
            prop_assert_eq!(&changes_b, changes_e);
            prop_assert_eq!(&out_r, out_e, "output of input {} after the snapshot", i);
            prop_assert_eq!(&changes_r, changes_e, "changes of input {} after the snapshot", i);
        }
        prop_assert_eq!(restored.snapshot(), reference.snapshot());
        prop_assert_eq!(before.snapshot(), reference.snapshot());
    }

    #[test]
    fn two_engines_fed_the_same_inputs_produce_the_same_bytes(
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut driver = Driver::new();
        let mut a = engine();
        let mut b = engine();
        for step in &steps {
            let input = driver.input(step);
            let encoded = input.encode();
            let (out_a, changes_a, output) = record(&mut a, input);
            // The second engine reads the input back from its logged form.
            let decoded = Input::decode(&encoded).expect("a logged input reads back");
            let (out_b, changes_b, _) = record(&mut b, decoded);
            driver.saw(&output);
            prop_assert_eq!(out_a, out_b);
            prop_assert_eq!(changes_a, changes_b);
            prop_assert_eq!(a.snapshot(), b.snapshot());
        }
    }
}

#[test]
fn occurrences_due_at_one_instant_start_in_name_order_whatever_the_load_order() {
    // Registered in reverse name order: slots follow registration, names do not.
    let mut a = engine();
    for name in ["e", "d", "c", "b", "a"] {
        let def = definition(name, 3, 0, 0, 0, 1);
        a.apply(Input::Register { at: T0, def })
            .expect("valid timer");
    }
    a.take_changes();
    let out = a
        .apply(Input::Tick {
            at: T0 + 4_000,
            capacity: 10,
            batch: 10,
        })
        .expect("tick")
        .into_dispatched();
    let order: Vec<&str> = out.iter().map(|d| d.timer_id.as_str()).collect();
    assert_eq!(order, ["a", "b", "c", "d", "e"]);
}

#[test]
fn inputs_read_back_from_their_logged_form_and_refuse_a_newer_version() {
    let input = Input::Tick {
        at: T0,
        capacity: 4,
        batch: 2,
    };
    let bytes = input.encode();
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        r#"{"v":1,"input":{"type":"tick","at":1800000000000,"capacity":4,"batch":2}}"#
    );
    assert_eq!(Input::decode(&bytes).expect("reads back"), input);
    let newer = br#"{"v":2,"input":{"type":"tick","at":1,"capacity":4,"batch":2}}"#;
    let err = Input::decode(newer).expect_err("a newer version is refused");
    assert!(err.to_string().contains("version 2"), "{err}");
    let garbage = Engine::from_snapshot(b"{}").expect_err("not a snapshot");
    assert!(garbage.to_string().contains("snapshot"), "{garbage}");
}
