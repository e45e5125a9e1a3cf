//! The leader's view of its members' clocks: every few seconds it asks each member's
//! `/healthz` for `now_ms` and takes the offset against the midpoint of the round trip (the
//! error is at most half the round trip: well under a millisecond on a LAN). Only the leader
//! measures; other nodes report no offsets.
//!
//! Why it matters: the leader stamps its clock into every entry, so a member far off does no
//! harm while it follows, but once it leads, every schedule moves by its error. Status and
//! metrics show it before that happens.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use super::clock::Clock;
use super::Shared;
use crate::raft::NodeId;

/// How often the leader measures.
const MEASURE_EVERY: Duration = Duration::from_secs(2);
/// A member that has not answered by then is left unmeasured this round.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The offsets (member's clock minus the leader's, in ms) measured last, by member.
#[derive(Debug, Default)]
pub struct ClockOffsets {
    by_node: Mutex<BTreeMap<NodeId, i64>>,
}

impl ClockOffsets {
    /// The last offset measured for `id`, if it answered the last round.
    pub fn get(&self, id: NodeId) -> Option<i64> {
        self.lock().get(&id).copied()
    }

    /// Every offset, by member.
    pub fn all(&self) -> BTreeMap<NodeId, i64> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, i64>> {
        self.by_node.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// While this node leads: measures every other member's clock each [`MEASURE_EVERY`]; the
/// leader's own offset is 0. On any other node: no offsets.
pub(super) async fn measure_loop(shared: Arc<Shared>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(ANSWER_WITHIN)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new());
    let mut stop = shared.shutdown.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        if shared.is_leader() {
            let members: Vec<(NodeId, String)> = {
                let metrics = shared.raft.metrics();
                let m = metrics.borrow();
                m.membership_config
                    .membership()
                    .nodes()
                    .filter(|(id, node)| **id != shared.id && !node.http_addr.is_empty())
                    .map(|(id, node)| (*id, node.http_addr.clone()))
                    .collect()
            };
            let rounds = members.iter().map(|(id, addr)| {
                let http = &http;
                let clock = &shared.clock;
                async move { (*id, measure(http, clock, addr).await) }
            });
            let measured = join_all(rounds).await;
            let mut offsets = BTreeMap::from([(shared.id, 0)]);
            offsets.extend(
                measured
                    .into_iter()
                    .filter_map(|(id, offset)| offset.map(|o| (id, o))),
            );
            *shared.offsets.lock() = offsets;
        } else {
            shared.offsets.lock().clear();
        }
        tokio::select! {
            _ = tokio::time::sleep(MEASURE_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// `addr`'s clock minus `clock`, from one `/healthz` round trip.
async fn measure(http: &reqwest::Client, clock: &Clock, addr: &str) -> Option<i64> {
    let sent = clock.now();
    let answer: serde_json::Value = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let received = clock.now();
    let remote = answer.get("now_ms")?.as_i64()?;
    Some(remote - sent / 2 - received / 2)
}
