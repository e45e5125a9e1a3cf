//! Prometheus metrics: counters and histograms the HTTP layer records, and gauges read from the
//! engine and Raft when scraped. Rendered in the text exposition format by [`Metrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::backend::ClusterStatus;

/// Upper bounds of histogram buckets, in seconds: 0.5 ms to 60 s.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0,
];

/// A histogram of durations.
#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (count, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// How a run's attempt ended, as counted by `kron_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    LeaseExpired,
}

/// The server's metrics. Shared by the HTTP layer (and whoever else records: the Raft node may
/// count lease expiries it proposes with [`Metrics::lease_expired`]).
#[derive(Debug, Default)]
pub struct Metrics {
    succeeded: AtomicU64,
    failed: AtomicU64,
    lease_expired: AtomicU64,
    claimed: AtomicU64,
    due_to_claim: Mutex<Histogram>,
    /// (method, route, status) -> latency.
    http: Mutex<BTreeMap<(String, String, u16), Histogram>>,
}

/// What a scrape reads from the engine.
#[derive(Debug, Default, Clone)]
pub struct EngineGauges {
    /// Timers by state ("scheduled", "running", ...).
    pub timers: BTreeMap<&'static str, u64>,
    /// Runs parked for workers to claim.
    pub claimable: u64,
    /// Runs held by workers under leases.
    pub leased: u64,
    /// The last fencing token issued.
    pub last_token: u64,
}

/// What the leader measures of each member: clock offset and replication lag (nothing on
/// other nodes).
fn render_members(out: &mut String, cluster: &ClusterStatus) {
    out.push_str(
        "# HELP kron_cluster_clock_offset_seconds A member's clock minus the leader's, as the \
         leader measured it (leader only).\n\
         # TYPE kron_cluster_clock_offset_seconds gauge\n",
    );
    for member in &cluster.members {
        if let Some(offset) = member.clock_offset_ms {
            let _ = writeln!(
                out,
                "kron_cluster_clock_offset_seconds{{node=\"{}\"}} {}",
                escape(&member.member.node_id),
                offset as f64 / 1000.0
            );
        }
    }
    out.push_str(
        "# HELP kron_cluster_replication_lag_entries The leader's last log index minus what a \
         member holds (leader only).\n\
         # TYPE kron_cluster_replication_lag_entries gauge\n",
    );
    for member in &cluster.members {
        if let Some(lag) = member.lag {
            let _ = writeln!(
                out,
                "kron_cluster_replication_lag_entries{{node=\"{}\"}} {lag}",
                escape(&member.member.node_id)
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn run_finished(&self, outcome: RunOutcome, n: u64) {
        let counter = match outcome {
            RunOutcome::Succeeded => &self.succeeded,
            RunOutcome::Failed => &self.failed,
            RunOutcome::LeaseExpired => &self.lease_expired,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` leases expired.
    pub fn lease_expired(&self, n: u64) {
        self.run_finished(RunOutcome::LeaseExpired, n);
    }

    /// The node counts the leases its clock expires ([`crate::backend::Backend::lease_expiries`]):
    /// brings this counter up to that count.
    pub fn observe_lease_expiries(&self, total: u64) {
        self.lease_expired.fetch_max(total, Ordering::Relaxed);
    }

    /// A run was claimed `latency_ms` after it was due.
    pub fn claimed(&self, latency_ms: i64) {
        self.claimed.fetch_add(1, Ordering::Relaxed);
        let seconds = latency_ms.max(0) as f64 / 1000.0;
        self.due_to_claim
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(seconds);
    }

    /// An HTTP request was answered.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        http.entry((method.to_string(), route.to_string(), status))
            .or_default()
            .observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self, engine: &EngineGauges, cluster: &ClusterStatus, workers: u64) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP kron_timers Timers by state.\n# TYPE kron_timers gauge\n");
        for state in [
            "scheduled",
            "running",
            "retrying",
            "paused",
            "orphaned",
            "completed",
            "dead",
        ] {
            let n = engine.timers.get(state).copied().unwrap_or(0);
            let _ = writeln!(out, "kron_timers{{state=\"{state}\"}} {n}");
        }
        out.push_str(
            "# HELP kron_runs_total Attempts of claimed runs by outcome, as reported to this node.\n\
             # TYPE kron_runs_total counter\n",
        );
        for (outcome, counter) in [
            ("succeeded", &self.succeeded),
            ("failed", &self.failed),
            ("lease_expired", &self.lease_expired),
        ] {
            let n = counter.load(Ordering::Relaxed);
            let _ = writeln!(out, "kron_runs_total{{outcome=\"{outcome}\"}} {n}");
        }
        let _ = write!(
            out,
            "# HELP kron_lease_expiries_total Leases that expired before their worker reported.\n\
             # TYPE kron_lease_expiries_total counter\nkron_lease_expiries_total {}\n",
            self.lease_expired.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP kron_runs_claimed_total Runs claimed by workers through this node.\n\
             # TYPE kron_runs_claimed_total counter\nkron_runs_claimed_total {}\n",
            self.claimed.load(Ordering::Relaxed)
        );
        let _ = write!(
            out,
            "# HELP kron_runs_claimable Runs parked for a worker to claim.\n\
             # TYPE kron_runs_claimable gauge\nkron_runs_claimable {}\n\
             # HELP kron_runs_leased Runs held by workers under a lease.\n\
             # TYPE kron_runs_leased gauge\nkron_runs_leased {}\n\
             # HELP kron_fencing_token The last fencing token issued.\n\
             # TYPE kron_fencing_token gauge\nkron_fencing_token {}\n\
             # HELP kron_workers Workers registered with this node.\n\
             # TYPE kron_workers gauge\nkron_workers {workers}\n",
            engine.claimable, engine.leased, engine.last_token
        );
        out.push_str(
            "# HELP kron_due_to_claim_seconds From a run's scheduled instant to its claim.\n\
             # TYPE kron_due_to_claim_seconds histogram\n",
        );
        self.due_to_claim
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(&mut out, "kron_due_to_claim_seconds", "");
        out.push_str(
            "# HELP kron_http_requests_total HTTP requests by method, route and status.\n\
             # TYPE kron_http_requests_total counter\n",
        );
        let http = self.http.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((method, route, status), histogram) in &http {
            let _ = writeln!(
                out,
                "kron_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                histogram.count
            );
        }
        out.push_str(
            "# HELP kron_http_request_duration_seconds HTTP latency by method, route and status.\n\
             # TYPE kron_http_request_duration_seconds histogram\n",
        );
        for ((method, route, status), histogram) in &http {
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                escape(route)
            );
            histogram.render(&mut out, "kron_http_request_duration_seconds", &labels);
        }
        let leader = u8::from(cluster.role == "leader");
        let _ = write!(
            out,
            "# HELP kron_raft_term The current Raft term.\n# TYPE kron_raft_term gauge\n\
             kron_raft_term {}\n\
             # HELP kron_raft_leader 1 on the leader; the leader's id as a label.\n\
             # TYPE kron_raft_leader gauge\n\
             kron_raft_leader{{node_id=\"{}\",leader_id=\"{}\"}} {leader}\n\
             # HELP kron_raft_commit_index The last committed log index.\n\
             # TYPE kron_raft_commit_index gauge\nkron_raft_commit_index {}\n\
             # HELP kron_raft_applied_index The last applied log index.\n\
             # TYPE kron_raft_applied_index gauge\nkron_raft_applied_index {}\n",
            cluster.term,
            escape(&cluster.node_id),
            escape(cluster.leader_id.as_deref().unwrap_or("")),
            cluster.commit_index,
            cluster.applied_index
        );
        render_members(&mut out, cluster);
        out
    }
}
