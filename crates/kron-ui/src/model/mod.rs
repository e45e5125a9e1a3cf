//! The JSON shapes of the pages, and how they are built from the engine's views, runs and
//! events, so that both implementations of [`crate::Dashboard`] answer the same thing.
//! Instants are milliseconds since the epoch; the page formats them (relative and absolute).

mod activity;
mod chart;
mod fires;
mod timers;

pub use activity::{
    Activity, ClusterView, DeadRun, MemberRow, RunRow, TenantRow, WorkerRow, DEAD_SHOWN,
    DEAD_WINDOW_MS,
};
pub use chart::{run_points, RunPoint};
pub use fires::{next_fires, Fire};
pub use timers::{
    Definition, EventRow, Explanation, TimerDetail, TimerPage, TimerQuery, TimerRow, MAX_PER_PAGE,
};
