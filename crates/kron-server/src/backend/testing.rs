//! [`LocalBackend`]: the engine in a mutex, applying inputs directly, with a manual clock. For
//! the HTTP layer's tests only (feature `test-support`): it is not a mode of the server, which
//! always replicates through Raft.

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use kron_core::engine::{Engine, EngineConfig};
use kron_core::event::StoredEvent;
use kron_core::input::{Input, Output, Rejected};
use kron_core::time::EpochMs;
use tokio::sync::watch;

use kron_store::EventFilter;

use super::{Backend, ClusterStatus, EventPage, Member, MemberStatus, WriteError};

/// One engine, one node, always the leader.
pub struct LocalBackend {
    engine: Mutex<Engine>,
    events: Mutex<Vec<StoredEvent>>,
    clock: AtomicI64,
    applied: watch::Sender<u64>,
    lease_expiries: AtomicU64,
}

impl LocalBackend {
    /// An empty engine at `now`.
    pub fn new(now: EpochMs) -> LocalBackend {
        LocalBackend {
            engine: Mutex::new(Engine::new(EngineConfig::default(), 7)),
            events: Mutex::new(Vec::new()),
            clock: AtomicI64::new(now),
            applied: watch::Sender::new(0),
            lease_expiries: AtomicU64::new(0),
        }
    }

    /// Applies `inputs` in order, as one committed entry.
    fn apply(&self, inputs: Vec<Input>) -> Vec<Result<Output, Rejected>> {
        let results: Vec<_> = {
            let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
            let results = inputs.into_iter().map(|i| engine.apply(i)).collect();
            let changes = engine.take_changes();
            let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
            for event in changes.events {
                let seq = events.len() as i64 + 1;
                events.push(StoredEvent { seq, event });
            }
            results
        };
        for result in &results {
            if let Ok(Output::Expired { runs }) = result {
                self.lease_expiries
                    .fetch_add(runs.len() as u64, Ordering::Relaxed);
            }
        }
        self.applied.send_modify(|index| *index += 1);
        results
    }

    /// Moves the clock.
    pub fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Backend for LocalBackend {
    fn now(&self) -> EpochMs {
        self.clock.load(Ordering::SeqCst)
    }

    fn propose(&self, input: Input) -> impl Future<Output = Result<Output, WriteError>> + Send {
        let result = self.apply(vec![input]).pop().unwrap_or(Ok(Output::Applied));
        std::future::ready(result.map_err(WriteError::from))
    }

    fn propose_many(
        &self,
        inputs: Vec<Input>,
    ) -> impl Future<Output = Result<Vec<Result<Output, Rejected>>, WriteError>> + Send {
        std::future::ready(Ok(self.apply(inputs)))
    }

    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send {
        let engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        std::future::ready(f(&engine))
    }

    fn history(
        &self,
        timer: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, String>> + Send {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let mine: Vec<StoredEvent> = events
            .iter()
            .filter(|e| e.event.timer_id == timer)
            .cloned()
            .collect();
        let skip = mine.len().saturating_sub(limit);
        std::future::ready(Ok(mine.into_iter().skip(skip).collect()))
    }

    fn events(
        &self,
        filter: EventFilter,
    ) -> impl Future<Output = Result<EventPage, String>> + Send {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let matching: Vec<StoredEvent> = events
            .iter()
            .filter(|stored| {
                let e = &stored.event;
                filter.timer_id.as_ref().map_or(true, |t| *t == e.timer_id)
                    && filter
                        .timer_ids
                        .as_ref()
                        .map_or(true, |ids| ids.contains(&e.timer_id))
                    && (filter.kinds.is_empty() || filter.kinds.contains(&e.kind))
                    && filter.since.map_or(true, |since| e.ts >= since)
                    && filter.until.map_or(true, |until| e.ts < until)
            })
            .cloned()
            .collect();
        let total = matching.len() as u64;
        let skip = filter
            .limit
            .map_or(0, |limit| matching.len().saturating_sub(limit));
        std::future::ready(Ok(EventPage {
            events: matching.into_iter().skip(skip).collect(),
            total,
        }))
    }

    fn lease_expiries(&self) -> u64 {
        self.lease_expiries.load(Ordering::Relaxed)
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn cluster_status(&self) -> ClusterStatus {
        let applied = *self.applied.borrow();
        ClusterStatus {
            node_id: "local".to_string(),
            role: "leader",
            leader_id: Some("local".to_string()),
            leader_http: None,
            term: 1,
            // The only member, holding the whole log.
            members: vec![MemberStatus {
                matched_index: Some(applied),
                matched_term: Some(1),
                lag: Some(0),
                ..MemberStatus::unmeasured(Member {
                    node_id: "local".to_string(),
                    http_addr: String::new(),
                    raft_addr: String::new(),
                    voter: true,
                })
            }
            .with_clock_offset(Some(0))],
            last_log_index: applied,
            commit_index: applied,
            applied_index: applied,
        }
    }

    fn join(&self, _member: Member) -> impl Future<Output = Result<(), WriteError>> + Send {
        std::future::ready(Err(WriteError::Unavailable(
            "a local backend has no cluster".to_string(),
        )))
    }

    fn leave(&self, _node_id: &str) -> impl Future<Output = Result<(), WriteError>> + Send {
        std::future::ready(Err(WriteError::Unavailable(
            "a local backend has no cluster".to_string(),
        )))
    }
}
