//! Raft timing and compaction settings of a node, tuned for a LAN, each overridable from the
//! environment (operators with a slower network; tests that want snapshots cheaply).
//!
//! Why these defaults: openraft 0.9 makes a follower wait for the leader's lease (the election
//! timeout's maximum) *plus* a random election timeout before it campaigns, so a dead leader is
//! replaced `max + [min, max)` after its last heartbeat: 1.2–1.6 s here, and the new leader
//! commits within a few round trips more. A heartbeat every 100 ms keeps a healthy follower's
//! timer far from firing even when an fsync or a busy machine delays one or two heartbeats.

/// Environment variables read by [`RaftTiming::from_env`].
pub const HEARTBEAT_ENV: &str = "KRON_RAFT_HEARTBEAT_MS";
pub const ELECTION_MIN_ENV: &str = "KRON_RAFT_ELECTION_TIMEOUT_MIN_MS";
pub const ELECTION_MAX_ENV: &str = "KRON_RAFT_ELECTION_TIMEOUT_MAX_MS";
pub const SNAPSHOT_EVERY_ENV: &str = "KRON_RAFT_SNAPSHOT_EVERY";
pub const LOGS_KEPT_ENV: &str = "KRON_RAFT_LOGS_KEPT";

/// A node's Raft timing and compaction settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// The leader sends a heartbeat this often, in ms.
    pub heartbeat_ms: u64,
    /// A follower's election timeout is drawn from `[election_min_ms, election_max_ms)`; the
    /// maximum is also the leader's lease (see the module documentation).
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// A snapshot every this many applied entries (compaction).
    pub snapshot_every: u64,
    /// Entries kept behind a snapshot, so a follower slightly behind catches up from the log
    /// rather than from a snapshot.
    pub logs_kept: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 100,
            election_min_ms: 400,
            election_max_ms: 800,
            snapshot_every: 10_000,
            logs_kept: 1_000,
        }
    }
}

impl RaftTiming {
    /// The defaults, overridden by whichever of the `KRON_RAFT_*` variables are set.
    pub fn from_env() -> Result<RaftTiming, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`RaftTiming::from_env`], reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<RaftTiming, String> {
        let d = RaftTiming::default();
        let read = |name: &str, default: u64, min: u64| -> Result<u64, String> {
            match var(name) {
                None => Ok(default),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(format!(
                        "invalid {name} {text:?}: must be a whole number, at least {min}"
                    )),
                },
            }
        };
        let timing = RaftTiming {
            heartbeat_ms: read(HEARTBEAT_ENV, d.heartbeat_ms, 10)?,
            election_min_ms: read(ELECTION_MIN_ENV, d.election_min_ms, 20)?,
            election_max_ms: read(ELECTION_MAX_ENV, d.election_max_ms, 21)?,
            snapshot_every: read(SNAPSHOT_EVERY_ENV, d.snapshot_every, 1)?,
            logs_kept: read(LOGS_KEPT_ENV, d.logs_kept, 0)?,
        };
        if timing.election_min_ms <= timing.heartbeat_ms
            || timing.election_max_ms <= timing.election_min_ms
        {
            return Err(format!(
                "invalid Raft timing: need {HEARTBEAT_ENV} ({}) < {ELECTION_MIN_ENV} ({}) < \
                 {ELECTION_MAX_ENV} ({})",
                timing.heartbeat_ms, timing.election_min_ms, timing.election_max_ms
            ));
        }
        Ok(timing)
    }

    /// How long a join waits for a learner to be within this many entries of the leader
    /// before promoting it: the entries kept behind a snapshot, at least 100.
    pub fn caught_up_within(&self) -> u64 {
        self.logs_kept.max(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            RaftTiming::from_vars(|_| None).unwrap(),
            RaftTiming::default()
        );
        let t =
            RaftTiming::from_vars(|name| (name == SNAPSHOT_EVERY_ENV).then(|| "50".to_string()))
                .unwrap();
        assert_eq!(t.snapshot_every, 50);
        let bad = RaftTiming::from_vars(|name| (name == HEARTBEAT_ENV).then(|| "x".to_string()));
        assert!(bad.unwrap_err().to_string().contains(HEARTBEAT_ENV));
        let inverted =
            RaftTiming::from_vars(|name| (name == ELECTION_MIN_ENV).then(|| "900".to_string()));
        assert!(inverted
            .unwrap_err()
            .to_string()
            .contains("invalid Raft timing"));
    }
}
