//! The bounded pool of worker threads that run callbacks and report their outcomes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use kron_core::engine::Outcome;

use crate::clock::Clock;
use crate::host::{Host, Job};
use crate::shared::Shared;

/// Most jobs one worker takes at once. Batches amortise the host's per-call cost in a burst; small
/// enough that a slow callback holds few others back.
const MAX_BATCH: usize = 32;

pub(crate) struct Pool<C> {
    tx: Option<Sender<Vec<Job<C>>>>,
    workers: usize,
    _threads: Vec<JoinHandle<()>>,
}

impl<C: Send + 'static> Pool<C> {
    pub fn start<H: Host<C>>(
        workers: usize,
        shared: Arc<Shared<C>>,
        host: Arc<H>,
        clock: Arc<dyn Clock>,
    ) -> std::io::Result<Pool<C>> {
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<Job<C>>>();
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

    /// Spreads jobs over the workers in batches.
    pub fn submit(&self, mut jobs: Vec<Job<C>>) {
        let Some(tx) = &self.tx else { return };
        let chunk = jobs.len().div_ceil(self.workers).clamp(1, MAX_BATCH);
        while !jobs.is_empty() {
            let rest = jobs.split_off(chunk.min(jobs.len()));
            // Workers only stop when the sender is dropped, so sending cannot fail here.
            let _ = tx.send(std::mem::replace(&mut jobs, rest));
        }
    }

    /// Closes the queue: idle workers exit; a worker stuck in a callback is left to finish on its
    /// own (threads cannot be killed), its outcome unrecorded.
    pub fn close(&mut self) {
        self.tx = None;
    }
}

fn work<C, H: Host<C>>(
    rx: Receiver<Vec<Job<C>>>,
    shared: Arc<Shared<C>>,
    host: Arc<H>,
    clock: Arc<dyn Clock>,
) {
    while let Ok(mut batch) = rx.recv() {
        // Attempts started ahead of their instant are invoked at it: wait for the first, then
        // invoke every attempt whose instant has come by then, and so on.
        while !batch.is_empty() {
            clock.wait_until_micros(batch[0].dispatch.not_before_us);
            let now = clock.now_micros();
            let ready = batch
                .iter()
                .position(|job| job.dispatch.not_before_us > now)
                .unwrap_or(batch.len())
                .max(1);
            let later = batch.split_off(ready);
            run_batch(batch, &shared, &*host, &*clock);
            batch = later;
        }
    }
}

/// Invokes a batch of attempts and records their outcomes.
fn run_batch<C, H: Host<C>>(batch: Vec<Job<C>>, shared: &Shared<C>, host: &H, clock: &dyn Clock) {
    let run_ids: Vec<_> = batch
        .iter()
        .map(|job| job.dispatch.run_id.clone())
        .collect();
    let outcomes = catch_unwind(AssertUnwindSafe(|| host.invoke(batch))).unwrap_or_default();
    let now = clock.now_ms();
    let mut core = shared.lock();
    core.in_flight = core.in_flight.saturating_sub(run_ids.len());
    if !core.closed {
        for (i, run_id) in run_ids.iter().enumerate() {
            let outcome = outcomes.get(i).cloned().unwrap_or_else(|| Outcome::Failed {
                error: "internal error: the callback host returned no outcome for this run"
                    .to_string(),
                duration_ms: 0,
            });
            core.engine.finish(run_id, outcome, now);
        }
    }
    drop(core);
    shared.notify();
}
