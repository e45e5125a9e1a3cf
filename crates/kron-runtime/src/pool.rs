//! The bounded pool of worker threads that run callbacks and report their outcomes.

use kron_core::input::Input;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use kron_core::engine::Outcome;

use crate::batch::{Batch, Dispatched};
use crate::clock::Clock;
use crate::host::{Host, Job};
use crate::shared::Shared;

/// Most jobs one worker takes at once. Batches amortise the host's per-call cost in a burst; small
/// enough that a slow callback holds few others back.
const MAX_BATCH: usize = 32;

pub(crate) struct Pool<C> {
    tx: Option<Sender<Arc<Batch<C>>>>,
    workers: usize,
    _threads: Vec<JoinHandle<()>>,
}

impl<C: Send + Sync + 'static> Pool<C> {
    pub fn start<H: Host<C>>(
        workers: usize,
        shared: Arc<Shared<C>>,
        host: Arc<H>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Pool<C>> {
        let (tx, rx) = crossbeam_channel::unbounded::<Arc<Batch<C>>>();
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (rx, shared, host, clock) =
                (rx.clone(), shared.clone(), host.clone(), clock.clone());
            let handle = std::thread::Builder::new()
                .name(format!("kron-worker-{i}"))
                .spawn(move || work(rx, shared, host, clock))?;
            threads.push(handle);
        }
        Ok(Pool {
            tx: Some(tx),
            workers,
            _threads: threads,
        })
    }

    /// Splits jobs into batches spread over the workers and registers them in `dispatched` (so
    /// that shutdown can cancel what has not begun); [`Pool::submit`] queues them.
    pub fn batches(
        &self,
        dispatched: &mut Dispatched<C>,
        mut jobs: Vec<Job<C>>,
    ) -> Vec<Arc<Batch<C>>> {
        let chunk = jobs.len().div_ceil(self.workers).clamp(1, MAX_BATCH);
        let mut out = Vec::with_capacity(jobs.len().div_ceil(chunk));
        while !jobs.is_empty() {
            let rest = jobs.split_off(chunk.min(jobs.len()));
            out.push(dispatched.add(std::mem::replace(&mut jobs, rest)));
        }
        out
    }

    /// Queues batches for the workers.
    pub fn submit(&self, batches: Vec<Arc<Batch<C>>>) {
        let Some(tx) = &self.tx else { return };
        for batch in batches {
            // Workers only stop when the sender is dropped, so sending cannot fail here.
            let _ = tx.send(batch);
        }
    }

    /// Closes the queue: idle workers exit; a worker stuck in a callback is left to finish on its
    /// own (threads cannot be killed), its outcome unrecorded.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

fn work<C, H: Host<C>>(
    rx: Receiver<Arc<Batch<C>>>,
    shared: Arc<Shared<C>>,
    host: Arc<H>,
    clock: Arc<dyn Clock>,
) {
    while let Ok(batch) = rx.recv() {
        // Attempts started ahead of their instant are invoked at it: wait for the first, then
        // invoke every attempt whose instant has come by then, and so on. A cancelled batch
        // (shutdown) is dropped: shutdown recorded its attempts that had not begun.
        let len = batch.jobs.len();
        let mut start = 0;
        while start < len && !batch.claims.is_cancelled() {
            clock.wait_until_micros(batch.jobs[start].dispatch.not_before_us);
            let now = clock.now_micros();
            let ready = batch.jobs[start..]
                .iter()
                .position(|job| job.dispatch.not_before_us > now)
                .unwrap_or(len - start)
                .max(1);
            run_round(&batch, start..start + ready, &shared, &*host, &*clock);
            start += ready;
        }
    }
}

/// Invokes `range` of a batch and records the outcomes of the attempts that began.
fn run_round<C, H: Host<C>>(
    batch: &Arc<Batch<C>>,
    range: Range<usize>,
    shared: &Shared<C>,
    host: &H,
    clock: &dyn Clock,
) {
    let jobs = &batch.jobs[range.clone()];
    let outcomes =
        catch_unwind(AssertUnwindSafe(|| host.invoke(jobs, &batch.claims))).unwrap_or_default();
    let now = clock.now_ms();
    let mut core = shared.lock();
    let mut began = 0;
    for (i, job) in jobs.iter().enumerate() {
        // The host claimed each attempt it invoked. One it neither invoked nor was refused (it
        // failed before reaching it) is claimed here and gets the host's failure; one refused
        // was recorded as not started by shutdown.
        if range.start + i >= batch.claims.begun() && !batch.claims.begin() {
            break;
        }
        began += 1;
        if !core.closed {
            let outcome = outcomes.get(i).cloned().unwrap_or_else(|| Outcome::Failed {
                error: "internal error: the callback host returned no outcome for this run"
                    .to_string(),
                duration_ms: 0,
            });
            let run = job.dispatch.run_id.clone();
            core.engine.apply_fact(Input::Finish {
                at: now,
                run,
                outcome,
            });
        }
    }
    core.in_flight = core.in_flight.saturating_sub(began);
    if range.end == batch.jobs.len() {
        core.dispatched.remove(batch);
    }
    drop(core);
    shared.notify();
}
