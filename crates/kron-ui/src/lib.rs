//! Kron's web dashboard: timers, a timer, runs in progress and failures, and (in server mode)
//! workers and the cluster, in a browser.
//!
//! The pages are hand-written HTML, CSS and JavaScript embedded in the binary (no Node
//! toolchain, no copied libraries); they read the JSON routes of [`router`] and poll them for
//! updates. Everything the dashboard reads and does goes through one trait, [`Dashboard`], with
//! two implementations in the command line: a server node (`kron server` mounts the router at
//! `/ui`) and an embedded data directory with its live runtime's control channel (`kron ui`).
//!
//! * [`source`] — the [`Dashboard`] trait, who is looking ([`Viewer`]) and what may go wrong.
//! * [`model`] — the JSON shapes of the pages, built from the engine's views and events.
//! * [`session`] — the login cookie, the CSRF token and the Origin check.
//! * [`routes`] — the router: pages, assets, JSON reads and actions.

// Tests may unwrap; library code may not (workspace lint `clippy::unwrap_used`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod model;
pub mod routes;
pub mod session;
pub mod source;

pub use routes::router;
pub use source::{Action, Dashboard, Mode, UiAudit, UiError, Viewer};
