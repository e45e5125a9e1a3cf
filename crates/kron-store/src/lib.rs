//! Kron's storage: one SQLite database per data directory, behind a narrow interface.
//!
//! * [`Store`] — the single writer, owned by the runtime. It holds the directory's writer lock
//!   (`kron.lock`, see [`lock`]) for its life, [`Store::load`]s the current state at start-up
//!   (timers and runs in flight; history is never replayed) and [`Store::commit`]s each engine
//!   step ([`kron_core::changes::Changes`]) as one transaction: events appended, timer and run
//!   rows replaced, together.
//! * [`DurableEngine`] — a [`Store`] with the engine restored from it: how a process opens a
//!   directory to act on it (the embedded runtime's start, the command line's offline admin).
//! * [`Reader`] — read-only access for status, history and the CLI; never locks, never creates.
//!
//! # Files in the data directory
//!
//! `kron.db` (SQLite; `kron.db-wal` and `kron.db-shm` beside it while a runtime runs, or after a
//! crash), `kron.lock`, and `standbys/` (one mark per process waiting to take over, see
//! [`StandbyMark`]). Tables (schema version [`SCHEMA_VERSION`] = `PRAGMA user_version`,
//! `PRAGMA application_id` = "KRON"): `timer_defs` (each timer's definition as JSON) and
//! `timer_state` (its status columns), joined by the view `timers`; `runs` (runs in flight),
//! `events` (the append-only history, numbered by `seq`, indexed by `(timer_id, seq)`), `meta`
//! (creation info, seq high-water mark).
//!
//! # Decisions
//!
//! * **Event numbering.** `events.seq` is a plain `INTEGER PRIMARY KEY` and the writer assigns
//!   it from its in-memory high-water mark. Compaction may delete the newest events, so before
//!   deleting it records the mark in `meta.max_seq` (same transaction); start-up takes the larger
//!   of that and `max(seq)`. Seqs are therefore never reused. `AUTOINCREMENT` would guarantee the
//!   same, but rewrites its `sqlite_sequence` row for every insert: measured 7–18% fewer
//!   events/s for commits of 100–5,000 events (no difference for one huge commit).
//! * **Checks at open.** Before SQLite touches an existing file: it must start with the SQLite
//!   header, have a valid page size, and (with no WAL pending) be a whole number of pages and at
//!   least as long as the header's page count — this catches garbage and truncated files for
//!   sure and costs one 100-byte read. Then SQLite reads `application_id`, `user_version` and the
//!   schema (a damaged first page fails here), and every expected column is checked. A full
//!   `PRAGMA quick_check` is not run at open: it reads the whole file (measured ~30 ms at 150k
//!   events / 27 MB and ~200–430 ms at 1M events / 142 MB, release build), which status and
//!   start-up should not pay. [`Reader::integrity_check`] runs the full check on demand.
//!   Nothing is ever created over a file that fails these checks, and a file that is not
//!   writable is reported, never replaced.
//! * **WAL and read-only readers.** The writer runs in WAL mode and switches the database back
//!   to `journal_mode=DELETE` when it closes, so a stopped directory is a single file that a
//!   [`Reader`] opens with no write access and without SQLite creating `-wal`/`-shm` (which a
//!   read-only connection otherwise does for a WAL database). After a crash the WAL files stay
//!   and hold committed data: readers use them as they are (SQLite >= 3.22 reads them even
//!   when it may not write `-shm`), the next `Store::open` recovers them. `immutable=1` was
//!   rejected: it would ignore the WAL. See `reader.rs`.
//! * **Reclaiming space.** New databases use `auto_vacuum=INCREMENTAL` (no measurable cost on
//!   inserts); [`Store::compact`] deletes, then runs `PRAGMA incremental_vacuum` and a
//!   truncating checkpoint. Its cost follows what was freed, where `VACUUM` would rewrite the
//!   whole file (and need twice its size) every time.
//! * **Throughput** (release build, `cargo test -p kron-store --release -- --ignored
//!   --nocapture`, 2-core machine): one 150k-event commit (with 50k run rows written and
//!   deleted, 1,000 timer rows) ~250–350k events/s; commits of 5k events ~100–120k events/s;
//!   commits of 10 events ~7,000 commits/s (`Durability::Normal`), ~1,700 commits/s
//!   (`Durability::Full`, fsync per commit). `history(timer, 100)` on 1M events ~130–210 µs.

// Tests may unwrap; library code may not (workspace lint `clippy::unwrap_used`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod checkpoint;
mod codec;
mod db;
mod durable;
mod error;
pub mod fork_fds;
mod grouped;
mod history_copy;
mod integrity;
pub mod lock;
mod query;
pub mod raft_log;
mod reader;
mod retainer;
mod retention;
mod schema;
mod standby;
mod views;
mod writer;

pub use checkpoint::{CheckpointReport, Checkpointer};
pub use db::DB_FILE;
pub use durable::{engine_seed, DurableEngine};
pub use error::{OpenError, StoreError};
pub use history_copy::{EventRow, HistoryCopy};
pub use integrity::check_integrity;
pub use lock::{is_locked, read_owner, DirLock, LockOwner, LOCK_FILE};
pub use raft_log::RaftLog;
pub use reader::{EventFilter, Pinned, Reader};
pub use retainer::{PageCounts, Retainer, RetentionStep};
pub use retention::DEFAULT_HISTORY_LIMIT;
pub use schema::SCHEMA_VERSION;
pub use standby::{list_standbys, StandbyMark, STANDBY_DIR};
pub use views::StoredViews;
pub use writer::{CompactReport, Durability, Store, StoredState};
