//! Kron's server mode: timers that target named tasks with JSON payloads, claimed by workers
//! under leases with fencing tokens, replicated with Raft (openraft).
//!
//! The scheduling state is the embedded engine's ([`kron_core::engine::Engine`]), driven by the
//! same [`kron_core::input::Input`]s: the Raft leader stamps every proposal with its clock's
//! instant and applying an entry never reads a clock, so every node reaches the same state.
//!
//! * [`backend`] — the seam between the HTTP layer and the replicated engine.

// Tests may unwrap; library code may not (workspace lint `clippy::unwrap_used`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backend;
