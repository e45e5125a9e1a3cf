//! Runs: one due occurrence of a timer, from `RUN_DUE` to its final outcome, with all its attempts.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::time::EpochMs;

/// A run id: `run_` + 26 characters of Crockford base32 (48-bit millisecond time, then 80 bits
/// that are random per millisecond and increase within one), so ids sort by creation time.
/// Shared, not copied: one run's id is held by its record, the queue, the pending changes and
/// each of its events, so a clone is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(Arc<str>);

impl From<String> for RunId {
    fn from(id: String) -> Self {
        RunId(id.into())
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        RunId(id.into())
    }
}

impl RunId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's 128-bit value: orders like the id for every id [`RunIdGen`] makes, and compares
    /// as two integers rather than 30 bytes (queues of thousands of runs due at the same
    /// millisecond compare ids at every step). Characters outside the alphabet count as 0.
    pub fn sort_key(&self) -> u128 {
        let digits = self.0.strip_prefix("run_").unwrap_or(&self.0);
        digits.bytes().take(26).fold(0u128, |key, b| {
            (key << 5) | u128::from(CROCKFORD_VALUE[usize::from(b)])
        })
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes monotonic run ids from the engine's clock input and rng.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdGen {
    last_ms: u64,
    last_rand: u128,
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RAND_MASK: u128 = (1u128 << 80) - 1;

/// Each byte's value as a digit of [`CROCKFORD`] (0 for bytes outside it).
const CROCKFORD_VALUE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < CROCKFORD.len() {
        table[CROCKFORD[i] as usize] = i as u8;
        i += 1;
    }
    table
};

impl RunIdGen {
    pub fn next(&mut self, now: EpochMs, rng: &mut Rng) -> RunId {
        let ms = (now.max(0) as u64).max(self.last_ms) & ((1u64 << 48) - 1);
        let rand = if ms == self.last_ms {
            (self.last_rand + 1) & RAND_MASK
        } else {
            ((u128::from(rng.next_u64()) << 16) | u128::from(rng.next_u64() & 0xFFFF))
                & (RAND_MASK >> 1)
        };
        self.last_ms = ms;
        self.last_rand = rand;
        let value = (u128::from(ms) << 80) | rand;
        let mut out = String::with_capacity(30);
        out.push_str("run_");
        for i in (0..26).rev() {
            let idx = ((value >> (i * 5)) & 0x1F) as usize;
            out.push(CROCKFORD[idx] as char);
        }
        RunId(out.into())
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// `RUN_DUE` is durable; it starts at `fire_at` (or when a worker is free). Leaves by starting
    /// (`RUN_STARTED`) or by being skipped for overlap.
    Due,
    /// `RUN_STARTED` is durable and the callback was handed to a worker. Leaves by an outcome:
    /// `RUN_SUCCEEDED`, `RUN_FAILED` (then `RUN_RETRYING` or `RUN_DEAD`), or, after a crash,
    /// `RUN_INTERRUPTED` at the next start. A crash after the callback returned and before its
    /// outcome committed runs it again: the at-least-once window.
    Running,
    /// An attempt failed; the next starts at `fire_at`.
    RetryWait,
}

/// One run in flight, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
    pub timer_id: String,
    /// The occurrence this run is for (nominal, before jitter); identifies it across retries.
    pub scheduled_at: EpochMs,
    /// The current (or next, when waiting to retry) attempt, starting at 1.
    pub attempt: u32,
    pub phase: RunPhase,
    /// When it starts (Due, RetryWait) or started (Running).
    pub fire_at: EpochMs,
    /// Started by `trigger` rather than by the schedule.
    pub manual: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_are_unique() {
        let mut rng = Rng::new(3);
        let mut gen = RunIdGen::default();
        let mut ids = Vec::new();
        for now in [1_000, 1_000, 1_000, 1_001, 5_000, 5_000] {
            ids.push(gen.next(now, &mut rng));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        assert!(ids
            .iter()
            .all(|id| id.as_str().len() == 30 && id.as_str().starts_with("run_")));
        let keys: Vec<u128> = ids.iter().map(RunId::sort_key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(
            ids[0].sort_key() >> 80,
            1_000,
            "the time is the top 48 bits"
        );
    }
}
