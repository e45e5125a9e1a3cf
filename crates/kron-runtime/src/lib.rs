//! Kron's embedded runtime: drives the pure [`kron_core::engine::Engine`] with a clock, makes its
//! decisions durable through [`kron_store::Store`] before acting on them, and hands due callbacks
//! to a bounded pool of worker threads.
//!
//! The runtime is generic over the callback type `C` and over a [`Host`] that knows how to invoke
//! callbacks and where to log: the Python binding is one host, tests are another.

mod batch;
mod clock;
mod committer;
mod config;
mod control;
pub mod control_client;
mod error;
mod host;
mod kron;
mod pool;
mod retention;
mod scheduler;
mod shared;
mod standby;

pub use batch::Claims;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{RuntimeConfig, RETENTION_EVERY_EVENTS};
pub use control::Admin;
pub use error::RuntimeError;
pub use host::{Host, Job, LogLevel};
pub use kron::{Kron, ShutdownReport};
pub use kron_core::admin::{RuntimeStatus, SOCKET_FILE, TOKEN_FILE};
pub use kron_store::{Durability, DEFAULT_HISTORY_LIMIT};
pub use standby::{Role, RuntimeInfo};
