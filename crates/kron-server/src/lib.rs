//! Kron's server mode: timers that target named tasks with JSON payloads, claimed by workers
//! under leases with fencing tokens, replicated with Raft (openraft).
//!
//! The scheduling state is the embedded engine's ([`kron_core::engine::Engine`]), driven by the
//! same [`kron_core::input::Input`]s: the Raft leader stamps every proposal with its clock's
//! instant and applying an entry never reads a clock, so every node reaches the same state.
//!
//! * [`backend`] — the seam between the HTTP layer and the replicated engine.
//! * [`raft`] — the Raft types, the SQLite log store, the state machine over the engine, and
//!   Raft RPC over HTTP.
//! * [`node`] — a server node: start (bootstrap, join, resume), the leader's clock, and the
//!   [`backend::Backend`] the HTTP layer serves.
//! * [`http`] — the HTTP API (one router per resource) and [`http::serve`];
//!   [`auth`] (tokens, roles, tenants), [`audit`] (the hash-chained audit log),
//!   [`workers`] (the leader-local worker registry), [`metrics`], [`openapi`], [`setup`].

// Tests may unwrap; library code may not (workspace lint `clippy::unwrap_used`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod audit;
pub mod auth;
pub mod backend;
pub mod error;
pub mod http;
pub mod metrics;
pub mod node;
pub mod openapi;
pub mod raft;
pub mod setup;
pub mod workers;
