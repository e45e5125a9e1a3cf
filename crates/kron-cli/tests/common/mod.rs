//! Shared by the integration tests: data directories made with kron-store and driven by the
//! engine on a fake clock (the stopped case), and a runner for the `kron` binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kron_core::engine::{Dispatch, Engine, EngineConfig, Outcome};
use kron_core::input::{Input, Output};
use kron_core::schedule::ScheduleSpec;
use kron_core::time::EpochMs;
use kron_core::timer::{Catchup, Overlap, TimerDef};
use kron_store::{Durability, Store};

pub const MINUTE: i64 = 60_000;

/// A minute boundary two days ago: fixtures live in the past of the real clock the CLI reads.
/// Noon (UTC) two days ago: old enough that fixture events are outside "the last hour" and
/// inside "the last 3 days" (36 to 60 hours ago), and at a fixed time of day, so that a fixture
/// running for minutes never crosses a daily cron instant (03:00 in Berlin, say) by chance.
pub fn base_time() -> EpochMs {
    const DAY: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    (now - 2 * DAY) / DAY * DAY + DAY / 2
}

/// An ISO 8601 instant the CLI printed, as epoch milliseconds.
pub fn epoch_ms(v: &serde_json::Value) -> EpochMs {
    v.as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

pub fn every(id: &str, ms: u64) -> TimerDef {
    TimerDef {
        id: id.into(),
        schedule: ScheduleSpec::Every { ms },
        timezone: "UTC".into(),
        max_attempts: 3,
        overlap: Overlap::Delay,
        catchup: Catchup::Once,
        jitter_ms: 0,
        fn_name: format!("app.jobs.{}", id.replace('-', "_")).into(),
        task: None,
    }
}

pub fn cron(id: &str, expr: &str, tz: &str) -> TimerDef {
    TimerDef {
        schedule: ScheduleSpec::Cron {
            expr: expr.into(),
            timezone: tz.into(),
        },
        timezone: tz.into(),
        ..every(id, 1)
    }
}

/// What a callback does when dispatched.
#[derive(Debug, Clone)]
pub enum Act {
    /// Succeeds after this many ms.
    Ok(i64),
    /// Fails after this many ms with this error.
    Fail(i64, String),
}

/// A data directory written the way a runtime writes it: an engine on a fake clock, every step
/// committed through the `Store`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    store: Option<Store>,
    engine: Engine,
    pub now: EpochMs,
    defs: BTreeMap<String, TimerDef>,
    /// (finish time, run id, outcome) of attempts in progress.
    running: Vec<(EpochMs, Dispatch, Outcome)>,
}

impl Fixture {
    pub fn new(now: EpochMs) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Durability::Normal).unwrap();
        Fixture {
            dir,
            store: Some(store),
            engine: Engine::new(EngineConfig::default(), 7),
            now,
            defs: BTreeMap::new(),
            running: Vec::new(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn commit(&mut self) {
        let changes = self.engine.take_changes();
        self.store.as_mut().unwrap().commit(&changes).unwrap();
    }

    pub fn register(&mut self, def: TimerDef) {
        self.defs.insert(def.id.to_string(), def.clone());
        let at = self.now;
        self.engine.apply(Input::Register { at, def }).unwrap();
        self.commit();
    }

    pub fn pause(&mut self, id: &str) {
        let (at, timer) = (self.now, id.to_string());
        self.engine.apply(Input::Pause { at, timer }).unwrap();
        self.commit();
    }

    pub fn resume(&mut self, id: &str) {
        let (at, timer) = (self.now, id.to_string());
        self.engine.apply(Input::Resume { at, timer }).unwrap();
        self.commit();
    }

    pub fn trigger(&mut self, id: &str) -> String {
        let (at, timer) = (self.now, id.to_string());
        let Output::Triggered { run } = self.engine.apply(Input::Trigger { at, timer }).unwrap()
        else {
            panic!("a trigger makes a run")
        };
        self.commit();
        run.to_string()
    }

    /// Runs the clock forward to `to` in `step` ms; `act` decides each dispatched attempt.
    pub fn run_until(&mut self, to: EpochMs, step: i64, act: &dyn Fn(&Dispatch) -> Act) {
        while self.now <= to {
            let now = self.now;
            let mut done = Vec::new();
            self.running.retain(|(at, d, o)| {
                if *at <= now {
                    done.push((d.clone(), o.clone()));
                    false
                } else {
                    true
                }
            });
            for (d, outcome) in done {
                let run = d.run_id.clone();
                self.engine.apply_fact(Input::Finish {
                    at: now,
                    run,
                    outcome,
                });
            }
            let tick = Input::Tick {
                at: now,
                capacity: u32::MAX,
                batch: u32::MAX,
            };
            for d in self.engine.apply_fact(tick).into_dispatched() {
                let (after, outcome) = match act(&d) {
                    Act::Ok(ms) => (
                        ms,
                        Outcome::Succeeded {
                            duration_ms: ms as u64,
                        },
                    ),
                    Act::Fail(ms, error) => (
                        ms,
                        Outcome::Failed {
                            error,
                            duration_ms: ms as u64,
                        },
                    ),
                };
                self.running.push((now + after, d, outcome));
            }
            self.commit();
            self.now += step;
        }
        self.now = to;
    }

    /// The process ends (attempts in progress stay `Running` in storage) and a new runtime
    /// starts at `at` with only `registered` timers: orphans, recovery and catch-up.
    pub fn restart(&mut self, at: EpochMs, registered: &[&str]) {
        self.running.clear();
        self.store.take().unwrap().close().unwrap();
        self.now = at;
        let store = Store::open(&self.path(), Durability::Normal).unwrap();
        let snapshot = store.load().unwrap();
        self.store = Some(store);
        self.engine =
            Engine::restored(EngineConfig::default(), 11, snapshot.timers, snapshot.runs).unwrap();
        for id in registered {
            let def = self.defs[*id].clone();
            self.engine.apply(Input::Register { at, def }).unwrap();
        }
        let timers = self
            .engine
            .timer_ids()
            .filter(|id| !registered.contains(id))
            .map(str::to_string)
            .collect();
        self.engine.apply_fact(Input::MarkOrphans { at, timers });
        self.engine.apply_fact(Input::Recover { at });
        self.commit();
    }

    /// Stops the "runtime": the directory is left as a stopped one.
    pub fn stop(&mut self) -> PathBuf {
        if let Some(store) = self.store.take() {
            store.close().unwrap();
        }
        self.path()
    }
}

/// What a `kron` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kron")
}

/// Runs `kron --data-dir DIR ARGS...` with a fixed zone (UTC), no colour, no width limit.
pub fn kron(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["--data-dir".to_string(), dir.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    kron_raw(&all, &[("TZ", "UTC")])
}

pub fn kron_raw(args: &[String], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(bin());
    command
        .args(args)
        .env_remove("KRON_HOME")
        .env_remove("COLUMNS")
        .env_remove("NO_COLOR")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file of a directory with its size, modification time and content, to prove reads
/// change nothing.
pub fn fingerprint(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let content = if meta.is_file() {
                std::fs::read(entry.path()).unwrap()
            } else {
                Vec::new()
            };
            (
                entry.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().unwrap(), content),
            )
        })
        .collect()
}
