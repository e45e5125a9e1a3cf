//! Standby marks: how the processes waiting to take a data directory over make themselves known.
//!
//! A standby (a process that wants the directory while another owns it) creates
//! `standbys/<pid>` in the data directory, holds an exclusive lock on it for as long as it
//! waits, and removes it when it takes over or stops. The file holds the same lines as
//! `kron.lock` (pid, when it started waiting, version). A mark whose lock nobody holds belongs
//! to a process that died: readers skip it, and the next standby to arrive removes it.
//!
//! The marks are information (for `kron runtime status` and `runtime_info()`); they decide
//! nothing: which process takes over is decided by the writer lock alone.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use crate::error::{io_error, StoreError};
use crate::fork_fds;
use crate::lock::{owner_lines, parse_owner, LockOwner};

/// The folder of standby marks inside the data directory.
pub const STANDBY_DIR: &str = "standbys";

/// This process's mark, held while it waits. Dropping it removes the file.
#[derive(Debug)]
pub struct StandbyMark {
    file: File,
    path: PathBuf,
}

impl StandbyMark {
    /// Announces this process as a standby of `data_dir` (which must exist), removing the marks
    /// of standbys that died.
    pub fn announce(data_dir: &Path) -> Result<StandbyMark, StoreError> {
        let dir = data_dir.join(STANDBY_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        remove_dead_marks(&dir);
        // Written and locked under a hidden name, then renamed into place: a mark is never
        // visible unlocked, so no other standby mistakes a new one for a dead one.
        let pid = std::process::id();
        let temporary = dir.join(format!(".{pid}.new"));
        let path = dir.join(pid.to_string());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(|e| io_error(&temporary, e))?;
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(io_error(
                    &temporary,
                    std::io::Error::other("another runtime of this process holds it"),
                ))
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&temporary, e)),
        }
        fork_fds::remember(file.as_raw_fd());
        let mut mark = StandbyMark {
            file,
            path: temporary.clone(),
        };
        (&mark.file)
            .write_all(owner_lines().as_bytes())
            .map_err(|e| io_error(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| io_error(&path, e))?;
        mark.path = path;
        Ok(mark)
    }
}

impl Drop for StandbyMark {
    fn drop(&mut self) {
        // Removed first: a mark must not be seen unlocked while its process lives.
        let _ = std::fs::remove_file(&self.path);
        let _ = FileExt::unlock(&self.file);
        fork_fds::forget(self.file.as_raw_fd());
    }
}

/// The standbys of `data_dir` that are alive now, by pid. Reads only: creates and removes
/// nothing. A missing folder means none.
pub fn list_standbys(data_dir: &Path) -> Vec<LockOwner> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(STANDBY_DIR)) else {
        return Vec::new();
    };
    let mut standbys: Vec<LockOwner> = entries
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|entry| live_mark(&entry.path()))
        .collect();
    standbys.sort_by_key(|owner| (owner.started_at, owner.pid));
    standbys
}

/// The mark's content if a live process holds it.
fn live_mark(path: &Path) -> Option<LockOwner> {
    let mut file = File::open(path).ok()?;
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            // Nobody holds it: its process died.
            let _ = FileExt::unlock(&file);
            None
        }
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            file.read_to_string(&mut text).ok()?;
            parse_owner(&text)
        }
        Err(TryLockError::Error(_)) => None,
    }
}

fn remove_dead_marks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        // An exclusive probe: a live standby's lock refuses it. Hidden files are marks being
        // written; one left by a process that died while writing it is unlocked, so it goes too.
        if FileExt::try_lock(&file).is_ok() {
            let _ = std::fs::remove_file(&path);
            let _ = FileExt::unlock(&file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_listed_while_held_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_standbys(dir.path()).is_empty());
        let mark = StandbyMark::announce(dir.path()).unwrap();
        let listed = list_standbys(dir.path());
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].pid, std::process::id());
        assert!(listed[0].started_at.is_some());
        assert!(fork_fds::lock_fds().contains(&mark.file.as_raw_fd()));
        let fd = mark.file.as_raw_fd();
        drop(mark);
        assert!(list_standbys(dir.path()).is_empty());
        assert!(!fork_fds::lock_fds().contains(&fd));
        assert!(!dir
            .path()
            .join(STANDBY_DIR)
            .join(std::process::id().to_string())
            .exists());
    }

    #[test]
    fn a_dead_standbys_mark_is_skipped_and_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let marks = dir.path().join(STANDBY_DIR);
        std::fs::create_dir_all(&marks).unwrap();
        // What a killed standby leaves: the file, with nobody holding its lock.
        std::fs::write(
            marks.join("999999"),
            "pid=999999\nstarted_at=5\nversion=0\n",
        )
        .unwrap();
        std::fs::write(marks.join(".999998.new"), "").unwrap();
        assert!(list_standbys(dir.path()).is_empty());
        let _mark = StandbyMark::announce(dir.path()).unwrap();
        assert!(!marks.join("999999").exists());
        assert!(!marks.join(".999998.new").exists());
        assert_eq!(list_standbys(dir.path()).len(), 1);
    }
}
