//! Kron's storage: one SQLite database per data directory, behind a narrow interface.
//!
//! * [`Store`] — the single writer, owned by the runtime. It holds the directory's writer lock
//!   (`kron.lock`, see [`lock`]) for its life, [`Store::load`]s the current state at start-up and
//!   [`Store::commit`]s each engine step ([`kron_core::changes::Changes`]) as one transaction:
//!   events are appended, timer and run rows replaced, in the same transaction.
//! * [`Reader`] — read-only access for status, history and the CLI; never locks, never creates.
//!
//! Files in the data directory: `kron.db` (SQLite; `kron.db-wal` and `kron.db-shm` beside it
//! while a runtime runs or after a crash) and `kron.lock`.
//!
//! Tables (schema version [`SCHEMA_VERSION`], `PRAGMA user_version`): `timers` (one row per
//! timer: definition as JSON plus status columns), `runs` (runs in flight), `events` (the
//! append-only history, numbered by `seq`), `meta` (creation info, the seq high-water mark).

mod codec;
mod db;
mod error;
pub mod lock;
mod query;
mod reader;
mod schema;
mod writer;

pub use db::DB_FILE;
pub use error::StoreError;
pub use lock::{is_locked, read_owner, LockOwner, LOCK_FILE};
pub use reader::{EventFilter, Reader};
pub use schema::SCHEMA_VERSION;
pub use writer::{CompactReport, Durability, Snapshot, Store};
