//! The leader-local worker registry: who registered, which tasks they serve, their lease, when
//! they were last heard from and which runs they hold. Not replicated: a new leader learns its
//! workers from their next heartbeat or poll (a poll registers an unknown worker). The
//! replicated truth about runs is the engine's leases; this is for status, metrics and
//! heartbeats (runs held are the engine's leases, counted when listed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use kron_core::time::EpochMs;
use serde::Serialize;

/// One worker as the leader knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub tasks: Vec<String>,
    pub lease_seconds: u64,
    /// The tenant of the token it registered with.
    pub tenant: Option<String>,
    pub registered_at: EpochMs,
    pub last_seen: EpochMs,
}

/// The registry. See the module documentation.
#[derive(Debug, Default)]
pub struct Workers {
    workers: Mutex<BTreeMap<String, WorkerInfo>>,
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WorkerInfo>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or registers again) a worker; runs it holds are kept.
    pub fn register(
        &self,
        worker_id: &str,
        tasks: Vec<String>,
        lease_seconds: u64,
        tenant: Option<String>,
        now: EpochMs,
    ) -> WorkerInfo {
        let mut workers = self.lock();
        let info = workers
            .entry(worker_id.to_string())
            .or_insert_with(|| WorkerInfo {
                worker_id: worker_id.to_string(),
                tasks: Vec::new(),
                lease_seconds,
                tenant: tenant.clone(),
                registered_at: now,
                last_seen: now,
            });
        info.tasks = tasks;
        info.lease_seconds = lease_seconds;
        info.tenant = tenant;
        info.last_seen = now;
        info.clone()
    }

    /// The worker, marked seen at `now`.
    pub fn touch(&self, worker_id: &str, now: EpochMs) -> Option<WorkerInfo> {
        let mut workers = self.lock();
        let info = workers.get_mut(worker_id)?;
        info.last_seen = now;
        Some(info.clone())
    }

    pub fn get(&self, worker_id: &str) -> Option<WorkerInfo> {
        self.lock().get(worker_id).cloned()
    }

    /// Every worker, by id.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.lock().values().cloned().collect()
    }

    /// Task names some worker serves (a worker of no tasks serves any).
    pub fn served_tasks(&self) -> (BTreeSet<String>, bool) {
        let workers = self.lock();
        let any = workers.values().any(|w| w.tasks.is_empty());
        let tasks = workers.values().flat_map(|w| w.tasks.clone()).collect();
        (tasks, any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_and_touches() {
        let workers = Workers::default();
        workers.register("w1", vec!["a".into()], 30, None, 5);
        assert_eq!(workers.touch("w1", 9).map(|w| w.last_seen), Some(9));
        assert_eq!(workers.touch("nobody", 9), None);
        let again = workers.register("w1", vec!["b".into()], 10, None, 12);
        assert_eq!(
            (again.tasks, again.lease_seconds, again.registered_at),
            (vec!["b".to_string()], 10, 5)
        );
        assert_eq!(workers.served_tasks(), (["b".to_string()].into(), false));
    }
}
