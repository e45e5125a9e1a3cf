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
use std::sync::Arc;

use kron_core::engine::{ClaimRequest, Engine, EngineConfig, LeaseError, Outcome, NEXT_TOKEN};
use kron_core::input::{Input, Output, Rejected};
use kron_core::run::RunId;
use kron_core::schedule::ScheduleSpec;
use kron_core::time::EpochMs;
use kron_core::timer::{Catchup, Overlap, TaskTarget, TimerDef};
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
        /// 0: a callback; 1: task "send" of no tenant; 2: task "send" of tenant "acme".
        target: u8,
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
    Claim {
        tasks: u8,
        tenant: bool,
        limit: u8,
        lease_ms: u32,
        /// 0: reuses the last token (refused).
        token_step: u8,
    },
    ExtendLease {
        pick: usize,
        right_token: bool,
        lease_ms: u32,
    },
    ExpireLeases {
        advance_ms: u32,
    },
    Complete {
        pick: usize,
        ok: bool,
        right_token: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (name.clone(), 0u8..6, 0u8..3, 0u8..3, 0u8..3, 1u8..4, 0u8..3).prop_map(
            |(name, schedule, jitter, overlap, catchup, attempts, target)| Step::Register {
                name,
                schedule,
                jitter,
                overlap,
                catchup,
                attempts,
                target,
            }
        ),
        2 => (0u8..3, any::<bool>(), 0u8..4, 1u32..5_000, 0u8..3).prop_map(
            |(tasks, tenant, limit, lease_ms, token_step)| Step::Claim {
                tasks,
                tenant,
                limit,
                lease_ms,
                token_step,
            }
        ),
        1 => (any::<usize>(), any::<bool>(), 0u32..5_000).prop_map(
            |(pick, right_token, lease_ms)| Step::ExtendLease { pick, right_token, lease_ms }
        ),
        1 => (0u32..6_000).prop_map(|advance_ms| Step::ExpireLeases { advance_ms }),
        2 => (any::<usize>(), any::<bool>(), any::<bool>()).prop_map(
            |(pick, ok, right_token)| Step::Complete { pick, ok, right_token }
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
    target: u8,
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
        task: (target > 0).then(|| {
            let payload = serde_json::json!({"to": name, "n": [1, 2]});
            let tenant = (target == 2).then_some("acme");
            Arc::new(TaskTarget::new("send", &payload, tenant).expect("valid task"))
        }),
    }
}

/// Makes the concrete inputs from abstract steps, against a reference engine kept in step.
struct Driver {
    now: EpochMs,
    /// Attempts handed out and not finished yet, oldest first.
    running: Vec<RunId>,
    /// Runs claimed by workers, with their tokens.
    claimed: Vec<(RunId, u64)>,
    last_token: u64,
}

impl Driver {
    fn new() -> Driver {
        Driver {
            now: T0,
            running: Vec::new(),
            claimed: Vec::new(),
            last_token: 0,
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
                target,
            } => Input::Register {
                at,
                def: definition(
                    NAMES[*name],
                    *schedule,
                    *jitter,
                    *overlap,
                    *catchup,
                    *attempts,
                    *target,
                ),
            },
            Step::Claim {
                tasks,
                tenant,
                limit,
                lease_ms,
                token_step,
            } => {
                self.last_token += u64::from(*token_step);
                let tasks = match tasks {
                    0 => vec![],
                    1 => vec!["send".to_string()],
                    _ => vec!["other".to_string()],
                };
                Input::Claim {
                    at,
                    request: ClaimRequest {
                        worker: "w1".into(),
                        tasks,
                        tenant: tenant.then(|| "acme".to_string()),
                        limit: u32::from(*limit),
                        lease_until: at + i64::from(*lease_ms),
                        token: self.last_token,
                    },
                }
            }
            Step::ExtendLease {
                pick,
                right_token,
                lease_ms,
            } => {
                let (run, token) = self.pick_claimed(*pick, *right_token, false);
                Input::ExtendLease {
                    at,
                    run,
                    token,
                    lease_until: at + i64::from(*lease_ms),
                }
            }
            Step::ExpireLeases { advance_ms } => {
                self.now += i64::from(*advance_ms);
                Input::ExpireLeases { at: self.now }
            }
            Step::Complete {
                pick,
                ok,
                right_token,
            } => {
                let (run, token) = self.pick_claimed(*pick, *right_token, true);
                let outcome = if *ok {
                    Outcome::Succeeded { duration_ms: 5 }
                } else {
                    Outcome::Failed {
                        error: "boom".into(),
                        duration_ms: 5,
                    }
                };
                Input::Complete {
                    at,
                    run,
                    token,
                    outcome,
                }
            }
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

    /// A claimed run and a token for it (its own, or a wrong one); `take` forgets it.
    fn pick_claimed(&mut self, pick: usize, right_token: bool, take: bool) -> (RunId, u64) {
        if self.claimed.is_empty() {
            return (RunId::from("run_00000000000000000000000000"), 1);
        }
        let i = pick % self.claimed.len();
        let (run, token) = if take {
            self.claimed.remove(i)
        } else {
            self.claimed[i].clone()
        };
        (run, if right_token { token } else { token + 1_000 })
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
        match output {
            Ok(Output::Dispatched { runs }) => {
                self.running.extend(runs.iter().map(|d| d.run_id.clone()));
            }
            Ok(Output::Claimed { runs }) => {
                self.claimed
                    .extend(runs.iter().map(|r| (r.run_id.clone(), r.token)));
            }
            _ => {}
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

/// A snapshot as text, for readable failures.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
        prop_assert_eq!(text(&restored.snapshot()), text(&snapshot), "restoring changes nothing");
        for (i, input) in inputs[split..].iter().enumerate() {
            let (out_b, changes_b, _) = record(&mut before, input.clone());
            let (out_r, changes_r, _) = record(&mut restored, input.clone());
            let (out_e, changes_e) = &expected[split + i];
            prop_assert_eq!(&out_b, out_e);
            prop_assert_eq!(&changes_b, changes_e);
            prop_assert_eq!(&out_r, out_e, "output of input {} after the snapshot", i);
            prop_assert_eq!(&changes_r, changes_e, "changes of input {} after the snapshot", i);
            prop_assert_eq!(
                text(&restored.snapshot()),
                text(&before.snapshot()),
                "state after input {} after the snapshot: {:?}",
                i,
                input
            );
        }
        prop_assert_eq!(text(&restored.snapshot()), text(&reference.snapshot()));
        prop_assert_eq!(text(&before.snapshot()), text(&reference.snapshot()));
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
            prop_assert_eq!(text(&a.snapshot()), text(&b.snapshot()));
        }
    }
}

#[test]
fn occurrences_due_at_one_instant_start_in_name_order_whatever_the_load_order() {
    // Registered in reverse name order: slots follow registration, names do not.
    let mut a = engine();
    for name in ["e", "d", "c", "b", "a"] {
        let def = definition(name, 3, 0, 0, 0, 1, 0);
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

#[test]
fn workers_claim_task_runs_under_leases_and_stale_tokens_are_fenced() {
    let mut e = engine();
    let def = definition("delta", 0, 0, 0, 0, 2, 2);
    e.apply(Input::Register { at: T0, def })
        .expect("valid task timer");
    // A tick starts no task run in this process: it parks it for workers.
    let tick = Input::Tick {
        at: T0 + 1_000,
        capacity: 8,
        batch: 8,
    };
    assert!(e.apply(tick).expect("tick").into_dispatched().is_empty());
    // What a server asks before proposing a claim.
    let send = ["send".to_string()];
    assert!(e.has_claimable(&send, Some("acme"), T0 + 1_000));
    assert!(e.has_claimable(&[], Some("acme"), T0 + 1_000));
    assert!(!e.has_claimable(&send, None, T0 + 1_000));
    assert!(e
        .first_claimable(&send, Some("acme"))
        .is_some_and(|t| t <= T0 + 1_000));
    assert_eq!(e.first_claimable(&send, None), None);
    assert!(!e.has_claimable(&["other".to_string()], Some("acme"), T0 + 1_000));
    assert_eq!(
        (e.claimable_count(), e.last_token(), e.lease_count()),
        (1, 0, 0)
    );
    let claim = |token: u64, tenant: Option<&str>, at: EpochMs| Input::Claim {
        at,
        request: ClaimRequest {
            worker: "w1".into(),
            tasks: vec!["send".into()],
            tenant: tenant.map(str::to_string),
            limit: 10,
            lease_until: at + 30_000,
            token,
        },
    };
    // Another tenant's worker gets nothing.
    let none = e.apply(claim(1, None, T0 + 1_000)).expect("claim");
    assert_eq!(none, Output::Claimed { runs: vec![] });
    let Output::Claimed { runs } = e.apply(claim(2, Some("acme"), T0 + 1_000)).expect("claim")
    else {
        panic!("a claim answers with its runs")
    };
    assert_eq!(runs.len(), 1);
    let run = runs[0].clone();
    assert!(!e.has_claimable(&send, Some("acme"), T0 + 1_000));
    assert_eq!((e.last_token(), e.lease_count()), (2, 1));
    assert_eq!(e.lease(&run.run_id).map(|l| l.token), Some(2));
    assert_eq!(e.leases().count(), 1);
    assert_eq!(
        e.run(&run.run_id).map(|r| r.timer_id.as_str()),
        Some("delta")
    );
    let claimed: Vec<_> = e
        .take_changes()
        .events
        .into_iter()
        .filter(|ev| ev.kind == kron_core::event::EventKind::RunClaimed)
        .collect();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (
            claimed[0].detail.worker.as_deref(),
            claimed[0].detail.fencing_token
        ),
        (Some("w1"), Some(2))
    );
    assert_eq!(
        (run.task.as_str(), run.payload.as_str(), run.token),
        ("send", r#"{"n":[1,2],"to":"delta"}"#, 2)
    );
    // Tokens only grow.
    let stale = e.apply(claim(2, Some("acme"), T0 + 1_001));
    assert!(matches!(
        stale,
        Err(Rejected::Lease(LeaseError::StaleToken { .. }))
    ));
    // A report under another token changes nothing.
    e.take_changes();
    let fenced = e.apply(Input::Complete {
        at: T0 + 2_000,
        run: run.run_id.clone(),
        token: 1,
        outcome: Outcome::Succeeded { duration_ms: 1 },
    });
    assert!(matches!(
        fenced,
        Err(Rejected::Lease(LeaseError::Fenced { .. }))
    ));
    assert!(e.take_changes().is_empty());
    // The lease expires: the attempt is interrupted and the run waits to be claimed again.
    let expired = e
        .apply(Input::ExpireLeases { at: T0 + 31_001 })
        .expect("expiry");
    assert_eq!(
        expired,
        Output::Expired {
            runs: vec![run.run_id.clone()]
        }
    );
    let kinds: Vec<&str> = e
        .take_changes()
        .events
        .iter()
        .map(|ev| ev.kind.as_str())
        .collect();
    assert_eq!(kinds[..2], ["RUN_LEASE_EXPIRED", "RUN_INTERRUPTED"]);
    let late = e.apply(Input::Complete {
        at: T0 + 31_002,
        run: run.run_id.clone(),
        token: 2,
        outcome: Outcome::Succeeded { duration_ms: 1 },
    });
    assert!(matches!(
        late,
        Err(Rejected::Lease(LeaseError::NotLeased(_)))
    ));
    e.apply(Input::Tick {
        at: T0 + 31_002,
        capacity: 0,
        batch: 8,
    })
    .expect("tick");
    let Output::Claimed { runs } = e.apply(claim(3, Some("acme"), T0 + 31_002)).expect("claim")
    else {
        panic!("a claim answers with its runs")
    };
    let retry = runs
        .iter()
        .find(|r| r.run_id == run.run_id)
        .expect("the interrupted run is claimed again");
    assert_eq!((retry.attempt, retry.token), (2, 3));
    let done = e.apply(Input::Complete {
        at: T0 + 31_500,
        run: run.run_id.clone(),
        token: 3,
        outcome: Outcome::Succeeded { duration_ms: 400 },
    });
    assert_eq!(done, Ok(Output::Applied));
}

#[test]
fn a_replica_reads_the_next_lease_deadline_the_last_token_and_every_record() {
    let mut e = engine();
    let def = definition("delta", 0, 0, 0, 0, 2, 2);
    e.apply(Input::Register { at: T0, def })
        .expect("valid task timer");
    e.apply(Input::Tick {
        at: T0 + 1_000,
        capacity: 0,
        batch: 8,
    })
    .expect("tick");
    assert_eq!((e.next_lease_deadline(), e.last_token()), (None, 0));
    let claimed = e
        .apply(Input::Claim {
            at: T0 + 1_000,
            request: ClaimRequest {
                worker: "w1".into(),
                tasks: vec![],
                tenant: Some("acme".into()),
                limit: 10,
                lease_until: T0 + 5_000,
                token: 7,
            },
        })
        .expect("claim");
    assert!(matches!(claimed, Output::Claimed { runs } if runs.len() == 1));
    assert_eq!(
        (e.next_lease_deadline(), e.last_token()),
        (Some(T0 + 5_000), 7)
    );
    let (timers, runs) = e.records();
    assert_eq!(timers.len(), 1);
    assert_eq!(runs.len(), 1);
    // What a store must hold is what the snapshot restores.
    let copy = Engine::from_snapshot(&e.snapshot()).expect("snapshot");
    assert_eq!(copy.records(), (timers, runs));
    e.apply(Input::ExpireLeases { at: T0 + 5_001 })
        .expect("expiry");
    assert_eq!(e.next_lease_deadline(), None);
}

#[test]
fn claims_proposed_together_without_a_token_get_the_next_ones_in_order() {
    let mut e = engine();
    for name in ["a", "b", "c"] {
        let def = definition(name, 0, 0, 0, 0, 2, 2);
        e.apply(Input::Register { at: T0, def })
            .expect("valid task timer");
    }
    e.apply(Input::Tick {
        at: T0 + 1_000,
        capacity: 0,
        batch: 8,
    })
    .expect("tick");
    let claim = |token: u64| Input::Claim {
        at: T0 + 1_000,
        request: ClaimRequest {
            worker: "w1".into(),
            tasks: vec![],
            tenant: Some("acme".into()),
            limit: 1,
            lease_until: T0 + 5_000,
            token,
        },
    };
    let tokens: Vec<u64> = [claim(NEXT_TOKEN), claim(5), claim(NEXT_TOKEN)]
        .into_iter()
        .map(|input| match e.apply(input).expect("claim") {
            Output::Claimed { runs } if runs.len() == 1 => runs[0].token,
            other => panic!("one run claimed, not {other:?}"),
        })
        .collect();
    assert_eq!(tokens, vec![1, 5, 6]);
    assert_eq!(e.last_token(), 6);
    // An explicit token still must be above the last one.
    assert!(matches!(
        e.apply(claim(6)),
        Err(Rejected::Lease(LeaseError::StaleToken {
            token: 6,
            last: 6
        }))
    ));
}

#[test]
fn a_task_definition_reads_back_from_its_stored_form_with_a_canonical_payload() {
    let def = definition("delta", 0, 0, 0, 0, 1, 2);
    let json = serde_json::to_string(&def).expect("serializes");
    assert!(
        json.ends_with(r#""fn_name":"jobs.delta","task":{"task":"send","payload":{"n":[1,2],"to":"delta"},"tenant":"acme"}}"#),
        "{json}"
    );
    let back: TimerDef = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, def);
    // A callback timer's stored form has no task at all (as written by earlier releases).
    let callback = definition("b", 0, 0, 0, 0, 1, 0);
    let json = serde_json::to_string(&callback).expect("serializes");
    assert!(!json.contains("task"), "{json}");
    let big = serde_json::json!({ "blob": "x".repeat(70_000) });
    let err = TaskTarget::new("send", &big, None).expect_err("too large");
    assert!(err.to_string().contains("payload"), "{err}");
    let err = TaskTarget::new("bad task", &serde_json::json!(1), None).expect_err("bad name");
    assert!(err.to_string().starts_with("invalid task"), "{err}");
}
