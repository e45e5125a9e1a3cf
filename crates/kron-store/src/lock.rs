//! The data directory's writer lock: `kron.lock`.
//!
//! The [`Store`](crate::Store) takes an exclusive advisory lock on this file (`fs4`: `flock` on
//! Unix, `LockFileEx` on Windows) before it touches the database, and holds it for its whole life;
//! the operating system releases it if the process dies, so there is no stale-lock cleanup. Once
//! it holds the lock, the owner writes who it is into the file:
//!
//! ```text
//! pid=12345
//! started_at=1764196705123
//! version=0.1.0
//! ```
//!
//! and empties it again on a clean close. The content is information for people and for
//! [`StoreError::Locked`]; the lock itself is the only authority. (On Windows the locked file
//! cannot be read by other processes, so the pid is not available there while the lock is held.)

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fs4::{FileExt, TryLockError};
use kron_core::time::EpochMs;

use crate::error::{io_error, StoreError};
use crate::fork_fds;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "kron.lock";

/// How long `acquire` keeps trying when the lock is busy before reporting `Locked`. Covers the
/// instant during which [`is_locked`] holds a shared lock to probe, so that a probe (e.g.
/// `kron status`) never makes a starting runtime fail. A real owner holds the lock for its life,
/// so waiting longer would change nothing.
const ACQUIRE_RETRIES: u32 = 10;
const ACQUIRE_RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Who holds (or last held, if it died) the writer lock, as written in `kron.lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    pub pid: u32,
    /// When the owner took the lock, ms since the epoch (absent if the file lacks the line).
    pub started_at: Option<EpochMs>,
    /// The owner's `kron-store` version (absent if the file lacks the line).
    pub version: Option<String>,
}

/// The held writer lock. Dropping it empties the file and releases the lock.
#[derive(Debug)]
pub struct DirLock {
    file: File,
}

impl DirLock {
    /// Waits, blocked in the kernel (no polling, no CPU), until the writer lock of `data_dir`
    /// (which must exist) is free, then takes it and records the owner. The lock frees the
    /// moment its owner closes the directory or dies, however it dies (`SIGKILL` included): the
    /// operating system releases it with the process.
    ///
    /// There is no way to stop waiting short of the process exiting: a caller that no longer
    /// wants the lock drops it once granted.
    pub fn wait(data_dir: &Path) -> Result<DirLock, StoreError> {
        let path = lock_path(data_dir);
        let file = open_lock_file(&path)?;
        // Listed while waiting too: a child forked meanwhile would share the lock once granted.
        let fd = file.as_raw_fd();
        fork_fds::remember(fd);
        loop {
            match FileExt::lock(&file) {
                Ok(()) => break,
                // A signal handled by this thread interrupts the wait; it goes on waiting.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    fork_fds::forget(fd);
                    return Err(io_error(&path, e));
                }
            }
        }
        let lock = DirLock { file };
        lock.write_owner(&path)?;
        Ok(lock)
    }

    /// Takes the writer lock of `data_dir` (which must exist) without blocking, then records the
    /// owner. If another holds it, returns `StoreError::Locked` having changed nothing.
    pub(crate) fn acquire(data_dir: &Path) -> Result<DirLock, StoreError> {
        let path = lock_path(data_dir);
        let file = open_lock_file(&path)?;
        let mut attempt = 0;
        loop {
            // `FileExt::try_lock` spelled out: since Rust 1.89 `File` has an inherent `try_lock`
            // of its own, and the workspace supports 1.80.
            match FileExt::try_lock(&file) {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if attempt < ACQUIRE_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(ACQUIRE_RETRY_PAUSE);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Locked {
                        data_dir: data_dir.to_path_buf(),
                        pid: read_owner(data_dir).map(|owner| owner.pid),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_error(&path, e)),
            }
        }
        fork_fds::remember(file.as_raw_fd());
        let lock = DirLock { file };
        lock.write_owner(&path)?;
        Ok(lock)
    }

    fn write_owner(&self, path: &Path) -> Result<(), StoreError> {
        self.file.set_len(0).map_err(|e| io_error(path, e))?;
        // The file was opened without append and never read or written, so we are at offset 0.
        (&self.file)
            .write_all(owner_lines().as_bytes())
            .map_err(|e| io_error(path, e))
    }
}

/// This process as the lines of `kron.lock` (also the content of a standby's mark).
pub(crate) fn owner_lines() -> String {
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as EpochMs)
        .unwrap_or(0);
    format!(
        "pid={}\nstarted_at={}\nversion={}\n",
        std::process::id(),
        started_at,
        env!("CARGO_PKG_VERSION")
    )
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Best effort: an emptied file says "nobody"; closing the file releases the lock anyway.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
        fork_fds::forget(self.file.as_raw_fd());
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    // No truncate here: the content belongs to the current owner until we hold the lock.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error(path, e))
}

pub(crate) fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCK_FILE)
}

/// The owner recorded in `data_dir/kron.lock`, if the file exists and names a pid. This is what
/// the file says, not proof that the process is alive: combine with [`is_locked`].
pub fn read_owner(data_dir: &Path) -> Option<LockOwner> {
    let mut text = String::new();
    File::open(lock_path(data_dir))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    parse_owner(&text)
}

pub(crate) fn parse_owner(text: &str) -> Option<LockOwner> {
    let mut pid = None;
    let mut started_at = None;
    let mut version = None;
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", value)) => pid = value.trim().parse().ok(),
            Some(("started_at", value)) => started_at = value.trim().parse().ok(),
            Some(("version", value)) => version = Some(value.trim().to_string()),
            _ => {}
        }
    }
    Some(LockOwner {
        pid: pid?,
        started_at,
        version,
    })
}

/// Whether a live process holds the writer lock of `data_dir`. Probes by taking a shared lock
/// without blocking and releasing it at once; creates nothing (a missing lock file means
/// "not locked"). Returns `false` when the lock file cannot be opened at all.
pub fn is_locked(data_dir: &Path) -> bool {
    let Ok(file) = File::open(lock_path(data_dir)) else {
        return false;
    };
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_lines() {
        let owner = parse_owner("pid=12\nstarted_at=1700000000000\nversion=0.1.0\n");
        assert_eq!(
            owner,
            Some(LockOwner {
                pid: 12,
                started_at: Some(1_700_000_000_000),
                version: Some("0.1.0".to_string()),
            })
        );
        assert_eq!(parse_owner(""), None);
        assert_eq!(parse_owner("started_at=5\n"), None);
        assert_eq!(
            parse_owner("pid=7").map(|o| (o.pid, o.started_at)),
            Some((7, None))
        );
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_locked(dir.path()));
        assert_eq!(read_owner(dir.path()), None);
        let lock = DirLock::acquire(dir.path()).unwrap();
        assert!(is_locked(dir.path()));
        let owner = read_owner(dir.path()).unwrap();
        assert_eq!(owner.pid, std::process::id());
        assert_eq!(owner.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        match DirLock::acquire(dir.path()) {
            Err(StoreError::Locked { pid, data_dir }) => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(data_dir, dir.path());
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(lock);
        assert!(!is_locked(dir.path()));
        assert_eq!(read_owner(dir.path()), None);
        let _again = DirLock::acquire(dir.path()).unwrap();
    }
}
