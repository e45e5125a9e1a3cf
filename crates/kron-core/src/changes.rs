//! What one step of the engine changed: the unit of durable writing. The runtime hands a
//! `Changes` to storage, which applies it in one transaction (group commit).

use std::sync::Arc;

use crate::event::Event;
use crate::run::{RunId, RunRecord};
use crate::timer::TimerRecord;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// New history entries, in order.
    pub events: Vec<Event>,
    /// Timer rows to insert or replace (new or changed definitions; latest state, once).
    pub timers: Vec<TimerRecord>,
    /// Timer rows whose definition is unchanged: only their state columns are rewritten (the hot
    /// path: no re-encoding of the definition per run).
    pub timer_states: Vec<TimerRecord>,
    /// Timer rows to delete (removed timers).
    pub removed_timers: Vec<String>,
    /// Run rows to insert: runs created since the last commit.
    pub new_runs: Vec<RunRecord>,
    /// Run rows to update (runs that already have a row), at most once each.
    pub runs: Vec<RunRecord>,
    /// Run rows to delete (runs that reached a final outcome or were skipped).
    pub finished_runs: Vec<RunId>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.timers.is_empty()
            && self.timer_states.is_empty()
            && self.removed_timers.is_empty()
            && self.new_runs.is_empty()
            && self.runs.is_empty()
            && self.finished_runs.is_empty()
    }
}

impl Changes {
    /// Appends a later batch to this one (used when a commit failed and is retried together with
    /// what happened since), keeping the store's apply order correct.
    pub fn merge(&mut self, newer: Changes) {
        use std::collections::HashSet;
        if self.is_empty() {
            *self = newer;
            return;
        }
        let newer_ids: HashSet<&str> = newer
            .timers
            .iter()
            .chain(&newer.timer_states)
            .map(|t| &*t.def.id)
            .chain(newer.removed_timers.iter().map(String::as_str))
            .collect();
        // A timer written by both batches keeps its newest record; it stays a full write if
        // either batch changed its definition.
        let older_full: HashSet<Arc<str>> = self
            .timers
            .iter()
            .map(|t| t.def.id.clone())
            .filter(|id| newer_ids.contains(&**id))
            .collect();
        self.timers.retain(|t| !newer_ids.contains(&*t.def.id));
        self.timer_states
            .retain(|t| !newer_ids.contains(&*t.def.id));
        self.removed_timers
            .retain(|id| !newer_ids.contains(id.as_str()));
        self.events.extend(newer.events);
        for record in newer.timer_states {
            if older_full.contains(&record.def.id) {
                self.timers.push(record);
            } else {
                self.timer_states.push(record);
            }
        }
        self.timers.extend(newer.timers);
        self.removed_timers.extend(newer.removed_timers);
        // A run updated by both batches keeps its newest row; runs created by the older batch
        // are inserted before any update (see the store's apply order).
        let newer_runs: HashSet<&RunId> = newer.runs.iter().map(|r| &r.run_id).collect();
        self.runs.retain(|r| !newer_runs.contains(&r.run_id));
        self.new_runs.extend(newer.new_runs);
        self.runs.extend(newer.runs);
        self.finished_runs.extend(newer.finished_runs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::ScheduleSpec;
    use crate::timer::{Catchup, Lifecycle, Overlap, TimerDef};

    fn record(id: &str, run_count: u64) -> TimerRecord {
        TimerRecord {
            def: TimerDef {
                id: id.into(),
                schedule: ScheduleSpec::Every { ms: 1_000 },
                timezone: "UTC".into(),
                max_attempts: 1,
                overlap: Overlap::Delay,
                catchup: Catchup::Once,
                jitter_ms: 0,
                fn_name: "f".into(),
                task: None,
            },
            lifecycle: Lifecycle::Active,
            next_scheduled_at: None,
            next_fire_at: None,
            created_at: 0,
            updated_at: 0,
            last_run_at: None,
            last_status: None,
            last_duration_ms: None,
            run_count,
            failure_count: 0,
        }
    }

    #[test]
    fn merge_keeps_the_newest_record_and_full_writes() {
        let mut older = Changes {
            timers: vec![record("a", 1)],
            timer_states: vec![record("b", 1)],
            ..Default::default()
        };
        let newer = Changes {
            timer_states: vec![record("a", 2), record("b", 2)],
            removed_timers: vec![],
            ..Default::default()
        };
        older.merge(newer);
        assert_eq!(older.timers, vec![record("a", 2)]);
        assert_eq!(older.timer_states, vec![record("b", 2)]);
        let removal = Changes {
            removed_timers: vec!["a".into()],
            ..Default::default()
        };
        older.merge(removal);
        assert!(older.timers.is_empty());
        assert_eq!(older.removed_timers, vec!["a".to_string()]);
    }

    fn run(n: u32, attempt: u32) -> RunRecord {
        RunRecord {
            run_id: RunId::from(format!("r{n}")),
            timer_id: "a".into(),
            scheduled_at: 0,
            attempt,
            phase: crate::run::RunPhase::Due,
            fire_at: 0,
            manual: false,
        }
    }

    #[test]
    fn merge_keeps_each_runs_newest_update_and_every_insert() {
        let mut older = Changes {
            new_runs: vec![run(1, 1)],
            runs: vec![run(2, 1), run(3, 1)],
            ..Default::default()
        };
        older.merge(Changes {
            new_runs: vec![run(4, 1)],
            runs: vec![run(1, 2), run(2, 2)],
            ..Default::default()
        });
        assert_eq!(older.new_runs, vec![run(1, 1), run(4, 1)]);
        assert_eq!(older.runs, vec![run(3, 1), run(1, 2), run(2, 2)]);
    }
}
