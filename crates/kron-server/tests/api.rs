//! The HTTP API driven in-process through its router, against `LocalBackend`.

#![allow(clippy::unwrap_used)]

#[path = "api/harness.rs"]
mod harness;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/misc.rs"]
mod misc;
#[path = "api/tenants.rs"]
mod tenants;
#[path = "api/timers.rs"]
mod timers;
#[path = "api/workers.rs"]
mod workers;
