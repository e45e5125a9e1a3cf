//! The runtime's public face: register timers, start, shut down, observe, command.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::{deadline_in, Clock, SystemClock};

use kron_core::admin::{RuntimeStatus, TimerOp};
use kron_core::engine::{provisional_view, validate_def, Engine, TimerView};
use kron_core::event::StoredEvent;
use kron_core::input::{Input, Output};
use kron_core::run::RunId;
use kron_core::timer::TimerDef;
use kron_core::CommandError;
use kron_store::{DurableEngine, Reader};

use crate::config::RuntimeConfig;
use crate::control::{Admin, ControlServer};
use crate::error::RuntimeError;
use crate::host::{Host, LogLevel};
use crate::pool::Pool;
use crate::retention::RetentionPolicy;
use crate::scheduler::Scheduler;
use crate::shared::{Callbacks, SchedulerState, Shared};
use crate::standby::Standby;

/// Attempts in flight per worker: enough queued work to keep workers busy through a burst,
/// few enough that `RUN_STARTED` stays close to the callback's real start.
const IN_FLIGHT_PER_WORKER: usize = 256;
/// Longest `history()` waits for recent changes to become durable before reading.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// What `shutdown` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    pub was_running: bool,
    /// Attempts begun and still running when the timeout passed (recorded as interrupted at the
    /// next start).
    pub abandoned: usize,
}

pub(crate) struct Running<C> {
    shared: Arc<Shared<C>>,
    thread: Option<JoinHandle<()>>,
    /// Dropped before the store closes, so a stopped directory is left as a single file.
    reader: Mutex<Option<Reader>>,
    control: Option<ControlServer>,
    pub(crate) started_at: i64,
}

pub(crate) struct State<C> {
    /// Timers registered in this process that no runtime holds: their callback, and their
    /// definition unless the last engine keeps it. While running, registrations go straight to
    /// the runtime (engine and callbacks) and this is empty; after a shutdown the last runtime
    /// keeps the callbacks it had, and the next start takes them from there. Each timer is held
    /// in one place, so its id and callback are not stored twice.
    registry: BTreeMap<Arc<str>, Registration<C>>,
    pub(crate) running: Option<Running<C>>,
    /// The scheduler state of the last runtime, kept after shutdown so status still answers.
    last: Option<Arc<Shared<C>>>,
    pub(crate) data_dir: Option<PathBuf>,
    /// Shutdowns in progress (they release this state while waiting for active runs).
    stopping: usize,
    /// While this process waits to take the directory over from another (see `standby.rs`).
    pub(crate) standby: Option<Standby>,
    /// Why the last take-over failed, until the next start.
    pub(crate) takeover_error: Option<String>,
}

struct Registration<C> {
    /// Boxed: a definition is large, and the last engine may hold it instead (`None`).
    def: Option<Box<TimerDef>>,
    callback: C,
}

/// One embedded scheduler: a registry of timers and, between `start` and `shutdown`, a runtime.
///
/// A `Kron` owns the one clock everything it does is timed by: registrations and commands before
/// and after `start`, and the runtime's threads. [`Kron::new`] uses the [`SystemClock`];
/// [`Kron::with_clock`] takes another (tests pass a [`crate::ManualClock`] and move it).
///
/// ```
/// use std::sync::Arc;
/// use kron_runtime::{Clock, Kron, ManualClock};
///
/// let clock = Arc::new(ManualClock::new(1_000));
/// let kron: Kron<()> = Kron::with_clock(clock.clone());
/// clock.advance(500);
/// assert_eq!(kron.clock().now_ms(), 1_500);
/// ```
pub struct Kron<C> {
    state: Mutex<State<C>>,
    clock: Arc<dyn Clock>,
}

impl<C: Clone + Send + Sync + 'static> Default for Kron<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clone + Send + Sync + 'static> Kron<C> {
    /// A scheduler timed by the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A scheduler timed by `clock`, before and after `start`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Kron {
            clock,
            state: Mutex::new(State {
                registry: BTreeMap::new(),
                running: None,
                last: None,
                data_dir: None,
                stopping: 0,
                standby: None,
                takeover_error: None,
            }),
        }
    }

    /// The clock this scheduler and its runtime read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State<C>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True from `start` until a `shutdown` has finished (its final commit included), standby
    /// included.
    pub fn is_running(&self) -> bool {
        let state = self.state();
        state.running.is_some() || state.stopping > 0 || state.standby.is_some()
    }

    /// Registers or re-registers a timer. Validates completely first: bad input changes nothing.
    /// While running, the change is applied at once and committed with the next group commit.
    pub fn register(&self, def: TimerDef, callback: C) -> Result<(), RuntimeError> {
        let mut state = self.state();
        let now = self.now();
        if let Some(running) = &state.running {
            // The engine validates completely before it changes anything.
            let mut core = running.shared.lock();
            let had_changes = core.engine.has_changes();
            let id = def.id.clone();
            core.engine.apply(Input::Register { at: now, def })?;
            if let Some(key) = core.engine.key(&id) {
                core.callbacks.set(key, callback);
            }
            // The scheduler takes every pending change before it sleeps: it needs waking only by
            // the first change after it took the last ones (later ones join the same commit).
            let wake = !had_changes && core.engine.has_changes();
            drop(core);
            if wake {
                running.shared.wake.notify_one();
            }
            return Ok(());
        }
        validate_def(&def)?;
        let id = def.id.clone();
        let def = Some(Box::new(def));
        state.registry.insert(id, Registration { def, callback });
        Ok(())
    }

    /// Opens storage (taking the directory's writer lock), registers, recovers and commits through
    /// the [`DurableEngine`], and starts the scheduler and workers in background threads.
    ///
    /// With `admin`, a control socket in the data directory lets the `kron` command line reach
    /// this runtime; if it cannot be bound, the runtime runs without it and says so in the log.
    pub fn start<H: Host<C>>(
        &self,
        config: RuntimeConfig,
        host: Arc<H>,
        admin: Option<Arc<dyn Admin>>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.state();
        Self::check_can_start(&state, &config)?;
        let now = self.now();
        let durable = DurableEngine::open(
            &config.data_dir,
            config.durability,
            config.engine.clone(),
            now,
        )?;
        self.run(&mut state, durable, now, config, host, admin)
    }

    /// Refuses a second start and a runtime without workers.
    pub(crate) fn check_can_start(
        state: &State<C>,
        config: &RuntimeConfig,
    ) -> Result<(), RuntimeError> {
        if state.running.is_some() || state.standby.is_some() {
            return Err(RuntimeError::AlreadyStarted(
                state.data_dir.clone().unwrap_or_default(),
            ));
        }
        if config.max_workers == 0 {
            return Err(RuntimeError::InvalidWorkers(0));
        }
        Ok(())
    }

    /// Runs the directory opened as `durable` at `now`: this process's registrations, recovery,
    /// then the scheduler and workers. Shared by `start` and a standby's take-over.
    pub(crate) fn run<H: Host<C>>(
        &self,
        state: &mut State<C>,
        mut durable: DurableEngine,
        now: i64,
        config: RuntimeConfig,
        host: Arc<H>,
        admin: Option<Arc<dyn Admin>>,
    ) -> Result<(), RuntimeError> {
        let clock = self.clock.clone();
        // Definitions and callbacks move into the new runtime only once it runs (below): a failed
        // start keeps them. Registered: what the last runtime held, and the registry (which
        // wins: registered since).
        let last_core = state.last.as_ref().map(|shared| shared.lock());
        let mut callbacks = Callbacks::new();
        if let Some(core) = &last_core {
            for id in core.engine.timer_ids() {
                let Some(callback) = core.callback(id) else {
                    continue;
                };
                if !state.registry.contains_key(id) {
                    if let Some(def) = core.engine.definition(id) {
                        durable.apply(Input::Register { at: now, def })?;
                    }
                    if let Some(key) = durable.engine().key(id) {
                        callbacks.set(key, callback.clone());
                    }
                }
            }
        }
        for (id, registration) in &state.registry {
            let def = match &registration.def {
                Some(def) => Some(TimerDef::clone(def)),
                None => last_core
                    .as_ref()
                    .and_then(|core| core.engine.definition(id)),
            };
            if let Some(def) = def {
                durable.apply(Input::Register { at: now, def })?;
            }
            if let Some(key) = durable.engine().key(id) {
                callbacks.set(key, registration.callback.clone());
            }
        }
        drop(last_core);
        let engine = durable.engine();
        let orphans: Vec<String> = engine
            .timer_ids()
            .filter(|id| {
                engine
                    .key(id)
                    .is_none_or(|key| callbacks.get(key).is_none())
            })
            .map(str::to_string)
            .collect();
        durable.recover(now, orphans);
        // Recovery is durable before anything runs. History beyond the limit is trimmed by the
        // retention thread from here on, in the background (see `retention.rs`).
        let (store, engine) = durable.into_parts()?;
        let reader = Reader::open(&config.data_dir)?;

        let core = SchedulerState {
            engine,
            callbacks,
            accepting: true,
            stop: false,
            closed: false,
            in_flight: 0,
            dispatched: Default::default(),
            taken_gen: 0,
            committed_gen: 0,
            storage_error: None,
            commit_failing: false,
        };
        let shared = Arc::new(Shared::new(core));
        let control = admin.and_then(|admin| match ControlServer::start(&config.data_dir, admin) {
            Ok(server) => Some(server),
            Err(err) => {
                let message = format!(
                    "the control socket in {} is unavailable ({err}); the kron command line can read this directory but not reach the runtime",
                    config.data_dir.display()
                );
                host.log(LogLevel::Warning, &message);
                None
            }
        });
        let pool = Pool::start(
            config.max_workers,
            shared.clone(),
            host.clone(),
            clock.clone(),
        )
        .map_err(RuntimeError::Thread)?;
        let scheduler = Scheduler {
            shared: shared.clone(),
            store,
            pool,
            host,
            clock: clock.clone(),
            capacity: config.max_workers.saturating_mul(IN_FLIGHT_PER_WORKER),
            retention: config
                .history_limit
                .and_then(NonZeroUsize::new)
                .map(|keep_runs| RetentionPolicy {
                    keep_runs,
                    every_events: config.retention_every_events.max(1),
                }),
        };
        let thread = scheduler.spawn().map_err(RuntimeError::Thread)?;
        state.running = Some(Running {
            shared,
            thread: Some(thread),
            reader: Mutex::new(Some(reader)),
            control,
            started_at: now,
        });
        state.data_dir = Some(config.data_dir);
        state.takeover_error = None;
        if let Some(last) = state.last.take() {
            last.lock().callbacks = Callbacks::new();
        }
        state.registry = BTreeMap::new();
        Ok(())
    }

    /// Stops starting runs, records the attempts handed out that have not begun as not started,
    /// waits up to `timeout` for those that began, commits, releases the directory. Once it
    /// returns no callback of this runtime begins. Safe when not running.
    pub fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let mut state = self.state();
        if state.running.is_none() && state.stopping > 0 {
            // Another shutdown is in progress (one asked for from inside a callback, say): wait
            // for it, so that returning means the directory was released.
            let deadline = deadline_in(timeout);
            while state.stopping > 0 && Instant::now() < deadline {
                drop(state);
                std::thread::sleep(Duration::from_millis(5));
                state = self.state();
            }
        }
        if let Some(standby) = state.standby.take() {
            // It never takes over now; its mark goes with it.
            standby.cancel();
            return ShutdownReport {
                was_running: true,
                abandoned: 0,
            };
        }
        let Some(mut running) = state.running.take() else {
            return ShutdownReport {
                was_running: false,
                abandoned: 0,
            };
        };
        let deadline = deadline_in(timeout);
        if let Some(control) = running.control.take() {
            control.stop();
        }
        let shared = running.shared.clone();
        state.last = Some(shared.clone());
        state.stopping += 1;
        // Callbacks still running may call into kron (schedule, status): do not hold the state
        // while waiting for them.
        drop(state);
        let mut core = shared.lock();
        core.accepting = false;
        // From here no callback of this runtime begins: every attempt handed out that has not
        // begun (queued, or later in a batch whose earlier callback runs) is cancelled and
        // recorded as not started, due again at the next start without counting as an attempt.
        // Attempts the committer hands out from now on are treated the same (see `hand_out`).
        let now = self.now();
        let SchedulerState {
            engine, dispatched, ..
        } = &mut *core;
        let cancelled = dispatched.cancel_all(|job| {
            let run = job.dispatch.run_id.clone();
            engine.apply_fact(Input::NotStarted { at: now, run });
        });
        core.in_flight = core.in_flight.saturating_sub(cancelled);
        shared.wake.notify_one();
        // Then wait for the attempts that did begin.
        while core.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            core = shared.wait_progress(core, left);
        }
        let abandoned = core.in_flight;
        *running.reader.lock().unwrap_or_else(|p| p.into_inner()) = None;
        core.stop = true;
        drop(core);
        shared.wake.notify_one();
        if let Some(thread) = running.thread.take() {
            // The scheduler only panics on a bug; shutdown must still complete.
            let _ = thread.join();
        }
        let mut state = self.state();
        state.stopping = state.stopping.saturating_sub(1);
        drop(state);
        ShutdownReport {
            was_running: true,
            abandoned,
        }
    }

    fn with_engine<T>(&self, f: impl FnOnce(&Engine) -> T) -> Option<T> {
        let state = self.state();
        let shared = state
            .running
            .as_ref()
            .map(|r| &r.shared)
            .or(state.last.as_ref())?;
        let core = shared.lock();
        Some(f(&core.engine))
    }

    /// The timer's status: from the runtime while running (or the last one after shutdown);
    /// in a standby, from the store the active runtime writes; before the first start, what was
    /// registered.
    pub fn status(&self, id: &str) -> Result<Option<TimerView>, RuntimeError> {
        if let Some(views) = self.standby_views()? {
            return Ok(views.into_iter().find(|view| &*view.record.def.id == id));
        }
        if let Some(Some(view)) = self.with_engine(|engine| engine.view(id)) {
            return Ok(Some(view));
        }
        let state = self.state();
        let Some(def) = state.registry.get(id).and_then(|r| r.def.as_ref()) else {
            return Ok(None);
        };
        Ok(provisional_view(def, self.now()).ok())
    }

    /// All timers, sorted by id (in a standby, those of the store).
    pub fn list(&self) -> Result<Vec<TimerView>, RuntimeError> {
        if let Some(views) = self.standby_views()? {
            return Ok(views);
        }
        let now = self.now();
        let mut views: BTreeMap<Arc<str>, TimerView> = self
            .with_engine(|engine| engine.views())
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.record.def.id.clone(), v))
            .collect();
        let state = self.state();
        for (id, registration) in &state.registry {
            if let (false, Some(def)) = (views.contains_key(id), &registration.def) {
                if let Ok(view) = provisional_view(def, now) {
                    views.insert(id.clone(), view);
                }
            }
        }
        Ok(views.into_values().collect())
    }

    /// The timer's latest `limit` events, oldest first. While running, waits (briefly) until
    /// everything already decided is durable, so history agrees with status.
    pub fn history(&self, id: &str, limit: usize) -> Result<Vec<StoredEvent>, RuntimeError> {
        let state = self.state();
        if let Some(running) = &state.running {
            let shared = &running.shared;
            let mut core = shared.lock();
            let target = core.taken_gen + u64::from(core.engine.has_changes());
            shared.wake.notify_one();
            let deadline = Instant::now() + FLUSH_WAIT;
            while core.committed_gen < target && !core.closed {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                core = shared.wait_progress(core, left);
            }
            drop(core);
            let reader = running.reader.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(reader) = reader.as_ref() {
                return Ok(reader.history(id, limit)?);
            }
        }
        match &state.data_dir {
            Some(dir) => Ok(Reader::open(dir)?.history(id, limit)?),
            None => Err(RuntimeError::NotStarted(
                "history is read from the data directory; call start() first",
            )),
        }
    }

    fn command<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut SchedulerState<C>) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let state = self.state();
        let Some(running) = &state.running else {
            let held_by_last = state
                .last
                .as_ref()
                .is_some_and(|last| last.lock().callback(id).is_some());
            if state.registry.contains_key(id) || held_by_last {
                return Err(RuntimeError::NotStarted(
                    "commands act on the running scheduler; call start() first",
                ));
            }
            return Err(CommandError::UnknownTimer(id.to_string()).into());
        };
        let mut core = running.shared.lock();
        let out = f(&mut core)?;
        drop(core);
        running.shared.wake.notify_one();
        Ok(out)
    }

    /// Pauses the timer (in a standby: asks the active runtime to).
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        if let Some(forwarded) = self.forward(TimerOp::Pause, id) {
            return forwarded.map(|_| ());
        }
        let (at, timer) = (self.now(), id.to_string());
        self.command(id, |core| {
            core.engine.apply(Input::Pause { at, timer })?;
            Ok(())
        })
    }

    /// Resumes the timer (in a standby: asks the active runtime to).
    pub fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        if let Some(forwarded) = self.forward(TimerOp::Resume, id) {
            return forwarded.map(|_| ());
        }
        let (at, timer) = (self.now(), id.to_string());
        self.command(id, |core| {
            core.engine.apply(Input::Resume { at, timer })?;
            Ok(())
        })
    }

    /// Starts a run now (in a standby: asks the active runtime to); answers its id.
    pub fn trigger(&self, id: &str) -> Result<RunId, RuntimeError> {
        if let Some(forwarded) = self.forward(TimerOp::Trigger, id) {
            return forwarded?.ok_or_else(|| {
                RuntimeError::Internal("the active runtime answered a trigger without a run".into())
            });
        }
        let (at, timer) = (self.now(), id.to_string());
        self.command(id, |core| {
            match core.engine.apply(Input::Trigger { at, timer })? {
                Output::Triggered { run } => Ok(run),
                other => Err(RuntimeError::Internal(format!(
                    "a trigger answered {other:?}"
                ))),
            }
        })
    }

    /// Removes the timer from storage and from this process's registrations (in a standby: asks
    /// the active runtime to, and forgets it here, so a take-over does not bring it back).
    pub fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        if let Some(forwarded) = self.forward(TimerOp::Remove, id) {
            forwarded?;
            self.state().registry.remove(id);
            return Ok(());
        }
        let now = self.now();
        // The callback goes with the timer, under the same lock: its slot may be reused by the
        // next registration as soon as the lock is released.
        self.command(id, |core| {
            let key = core.engine.key(id);
            let timer = id.to_string();
            core.engine.apply(Input::Remove { at: now, timer })?;
            if let Some(key) = key {
                core.callbacks.clear(key);
            }
            Ok(())
        })?;
        self.state().registry.remove(id);
        Ok(())
    }

    /// The last storage error while it persists (writes are being retried), for status.
    pub fn storage_error(&self) -> Option<String> {
        let state = self.state();
        let running = state.running.as_ref()?;
        let error = running.shared.lock().storage_error.clone();
        error
    }

    /// Wakes the scheduler (after moving a manual clock). The core is locked first: the
    /// scheduler reads the clock and goes to sleep under that lock, so it either sees the new
    /// time or is asleep and woken, never between the two.
    pub fn poke(&self) {
        if let Some(running) = &self.state().running {
            let core = running.shared.lock();
            running.shared.wake.notify_one();
            drop(core);
        }
    }

    /// What the control socket reports: pid, start time, version, activity.
    pub fn runtime_status(&self) -> Option<RuntimeStatus> {
        let state = self.state();
        let running = state.running.as_ref()?;
        let core = running.shared.lock();
        Some(RuntimeStatus {
            pid: std::process::id(),
            started_at: running.started_at,
            version: env!("CARGO_PKG_VERSION").to_string(),
            active_runs: core.in_flight,
            timers: core.engine.timer_ids().count(),
            data_dir: state
                .data_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        })
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        self.state().data_dir.clone()
    }
}

/// The control socket's view of a process-wide runtime.
impl<C: Clone + Send + Sync + 'static> Admin for &'static Kron<C> {
    fn command(&self, op: TimerOp, id: &str) -> Result<Option<RunId>, RuntimeError> {
        match op {
            TimerOp::Pause => Kron::pause(self, id).map(|()| None),
            TimerOp::Resume => Kron::resume(self, id).map(|()| None),
            TimerOp::Trigger => Kron::trigger(self, id).map(Some),
            TimerOp::Remove => Kron::remove(self, id).map(|()| None),
        }
    }
    fn begin_shutdown(&self, timeout: Duration) {
        let kron: &'static Kron<C> = self;
        // Shutdown stops the control server, so it runs on a thread of its own.
        let _ = std::thread::Builder::new()
            .name("kron-shutdown".to_string())
            .spawn(move || {
                kron.shutdown(timeout);
            });
    }
    fn runtime_status(&self) -> Option<RuntimeStatus> {
        Kron::runtime_status(self)
    }
}
