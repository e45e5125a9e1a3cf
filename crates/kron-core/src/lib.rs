//! Kron's pure scheduling core.
//!
//! Everything here is deterministic: no I/O, no wall clock, no global randomness. Time is passed in
//! as milliseconds since the Unix epoch (UTC), and randomness (jitter, run ids) comes from a seeded
//! [`rng::Rng`]. The runtime (embedded or, later, replicated) feeds the [`engine::Engine`] with
//! registrations, commands and the current time, and executes what it decides.

pub mod admin;
pub mod changes;
pub mod duration;
pub mod engine;
pub mod error;
pub mod event;
pub mod explain;
pub mod input;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod time;
pub mod timer;

mod cron;
mod cron_fields;

pub use error::{CommandError, CoreError};
