//! What one step of the engine changed: the unit of durable writing. The runtime hands a
//! `Changes` to storage, which applies it in one transaction (group commit).

use crate::event::Event;
use crate::run::{RunId, RunRecord};
use crate::timer::TimerRecord;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New history entries, in order.
    pub events: Vec<Event>,
    /// Timer rows to insert or replace (latest state of each touched timer, once).
    pub timers: Vec<TimerRecord>,
    /// Timer rows to delete (removed timers).
    pub removed_timers: Vec<String>,
    /// Run rows to insert or replace.
    pub runs: Vec<RunRecord>,
    /// Run rows to delete (runs that reached a final outcome or were skipped).
    pub finished_runs: Vec<RunId>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.timers.is_empty()
            && self.removed_timers.is_empty()
            && self.runs.is_empty()
            && self.finished_runs.is_empty()
    }
}

impl Changes {
    /// Appends a later batch to this one (used when a commit failed and is retried together with
    /// what happened since), keeping the store's apply order correct.
    pub fn merge(&mut self, newer: Changes) {
        self.removed_timers
            .retain(|id| !newer.timers.iter().any(|t| &t.def.id == id));
        self.timers
            .retain(|t| !newer.removed_timers.contains(&t.def.id));
        self.events.extend(newer.events);
        self.timers.extend(newer.timers);
        self.removed_timers.extend(newer.removed_timers);
        self.runs.extend(newer.runs);
        self.finished_runs.extend(newer.finished_runs);
    }
}
