//! The descriptors that hold a data directory's locks, for a process that forks.
//!
//! `flock` locks belong to the open file, and a forked child shares its parent's open files: a
//! child that kept them would keep the directory locked after its parent died, so no standby
//! could take over while the child lives. Every descriptor that holds (or waits for) one of the
//! directory's locks is listed here while it is open; the embedding (the Python binding's
//! `os.register_at_fork` hook) reads the list before a fork and closes those numbers in the
//! child. Closing a shared descriptor in the child releases nothing in the parent.

use std::os::fd::RawFd;
use std::sync::Mutex;

static OPEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn open_fds() -> std::sync::MutexGuard<'static, Vec<RawFd>> {
    OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lists `fd` until [`forget`]: it holds or waits for a lock a forked child must not keep.
pub fn remember(fd: RawFd) {
    open_fds().push(fd);
}

/// Unlists `fd`. Call before the descriptor is closed, so that its number, once reused, is not
/// taken for a lock.
pub fn forget(fd: RawFd) {
    let mut fds = open_fds();
    if let Some(at) = fds.iter().position(|&held| held == fd) {
        fds.swap_remove(at);
    }
}

/// The descriptors a child forked now must close.
pub fn lock_fds() -> Vec<RawFd> {
    open_fds().clone()
}
