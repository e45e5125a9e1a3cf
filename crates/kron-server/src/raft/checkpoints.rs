//! WAL checkpoints of `kron.db` and `raft.db` on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its threshold: that commit
//! copies megabytes of log into the database and syncs it, tens of milliseconds during which
//! the entry being appended (`raft.db`) or applied (`kron.db`) waits, and with it every run a
//! worker is waiting for. Here both files hand checkpointing to a second connection that copies
//! in `PASSIVE` mode (it never blocks a writer or a reader) every [`INTERVAL`].
//!
//! SQLite starts a log over when a write begins with the log fully copied. Between bursts that
//! happens by itself; under a steady stream of commits each background copy can end just after
//! a new commit, and the log keeps growing. Once it holds [`BOUND_PAGES`], the copy is finished
//! with the writer held (between two commits: what landed during the copy, a few pages), so the
//! next commit starts the log over.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kron_store::{CheckpointReport, Checkpointer, StoreError};

use super::log_store::LogStore;
use super::state_machine::Applied;

/// How often each log is copied into its database.
const INTERVAL: Duration = Duration::from_millis(200);
/// A log this long (4 KiB pages: 16 MiB) is finished with its writer held.
const BOUND_PAGES: i64 = 4_096;

/// One file: the background connection, and how to finish a copy with its writer held.
struct WalFile {
    name: &'static str,
    checkpointer: Checkpointer,
    finish: Box<dyn Fn() -> Result<CheckpointReport, StoreError> + Send>,
}

impl WalFile {
    fn checkpoint(&self) {
        let report = match self.checkpointer.checkpoint() {
            Ok(report) => report,
            Err(e) => {
                eprintln!("kron: checkpoint of {} failed (will retry): {e}", self.name);
                return;
            }
        };
        if report.wal_pages >= BOUND_PAGES {
            if let Err(e) = (self.finish)() {
                eprintln!("kron: checkpoint of {} failed (will retry): {e}", self.name);
            }
        }
    }
}

/// The checkpoint thread. Dropping it ends the thread and closes its
/// connections, which must happen before `kron.db` closes (closing leaves WAL mode only when no
/// other connection is open).
pub(crate) struct Checkpoints {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// Takes checkpointing of both files away from their writers and starts the thread. A file
    /// whose second connection cannot be opened keeps SQLite's automatic checkpoints (said on
    /// standard error): slower commits now and then, nothing lost. Fails when the thread cannot
    /// be started.
    pub(crate) fn start(applied: Arc<Applied>, log: LogStore) -> std::io::Result<Checkpoints> {
        let mut files = Vec::new();
        match applied.checkpointer() {
            Ok(checkpointer) => files.push(WalFile {
                name: kron_store::DB_FILE,
                checkpointer,
                finish: Box::new(move || applied.finish_checkpoint()),
            }),
            Err(e) => eprintln!("kron: checkpoints of kron.db stay in its commits: {e}"),
        }
        match log.checkpointer() {
            Ok(checkpointer) => files.push(WalFile {
                name: crate::node::RAFT_DB_FILE,
                checkpointer,
                finish: Box::new(move || log.finish_checkpoint()),
            }),
            Err(e) => eprintln!("kron: checkpoints of raft.db stay in its appends: {e}"),
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kron-checkpoint".to_string())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    for file in &files {
                        file.checkpoint();
                    }
                }
            })
            // The writers no longer checkpoint: without the thread their logs would only grow,
            // so the node does not start.
            ?;
        Ok(Checkpoints {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    /// Ends the thread and waits for it (at most one checkpoint round).
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
