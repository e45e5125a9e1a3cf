//! The one error type of this crate. Every variant names the file or directory it is about, and
//! its message reads on its own (the underlying cause is part of it), so callers can show
//! `to_string()` to a person as is.

use std::io;
use std::path::{Path, PathBuf};

use kron_core::CoreError;
use rusqlite::ffi::ErrorCode;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// Another process (or another `Store` in this one) holds the data directory's writer lock.
    /// `pid` is the holder as written in `kron.lock`, when it could be read.
    #[error("data directory {} is in use by another Kron runtime{}", .data_dir.display(), pid_text(*.pid))]
    Locked { data_dir: PathBuf, pid: Option<u32> },

    /// The database was written by a newer Kron whose schema this build does not know.
    #[error(
        "{}: database schema version {found} is newer than this Kron supports (up to {supported}); upgrade Kron to open it",
        .path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The file is not a Kron database, or is damaged (not SQLite, truncated, malformed pages,
    /// a row that cannot be decoded).
    #[error("{}: not a usable Kron database: {detail}", .path.display())]
    Corrupt { path: PathBuf, detail: String },

    /// A `Reader` was pointed at a directory or database that does not exist (nothing is created).
    #[error("{}: not found (no Kron data here yet)", .path.display())]
    NotFound { path: PathBuf },

    /// Writing is not possible: read-only directory, file or file system.
    #[error("{}: cannot write here (read-only file, directory or file system): {detail}", .path.display())]
    ReadOnly { path: PathBuf, detail: String },

    /// The data directory is a file, or lies under one (`file` is that file), so it cannot be
    /// created or used.
    #[error(
        "invalid data_dir {:?}: {} is a file, not a directory",
        .data_dir.display().to_string(),
        .file.display()
    )]
    NotADirectory { data_dir: PathBuf, file: PathBuf },

    /// Any other file-system error.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Any other SQLite error; `context` says what was being done.
    #[error("{}: {context}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// A value cannot be stored (e.g. a counter above `i64::MAX`). Nothing was written.
    #[error("{}: cannot store {what}: {detail}", .path.display())]
    InvalidValue {
        path: PathBuf,
        what: String,
        detail: String,
    },
}

/// Why a [`DurableEngine`](crate::DurableEngine) could not open a data directory: storage, or
/// what is stored in it.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The store could not be opened or read (locked, damaged, not writable...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This build's engine refuses what is stored: a timer's definition it cannot read.
    #[error("a stored timer cannot be read: {0}")]
    Restore(#[source] CoreError),
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// The file that stops `data_dir` from being a directory: itself, or its nearest existing
/// ancestor when that is not a directory. `None` when nothing in the way is a file.
pub(crate) fn file_in_the_way(data_dir: &Path) -> Option<PathBuf> {
    let existing = data_dir
        .ancestors()
        .find(|p| p.symlink_metadata().is_ok())?;
    // Follows symbolic links: a link to a directory is a directory.
    let is_dir = std::fs::metadata(existing).is_ok_and(|m| m.is_dir());
    (!is_dir && !existing.as_os_str().is_empty()).then(|| existing.to_path_buf())
}

/// Maps a file-system error on `path`: permission and read-only-file-system errors become
/// [`StoreError::ReadOnly`], the rest [`StoreError::Io`].
pub(crate) fn io_error(path: &Path, source: io::Error) -> StoreError {
    if is_read_only_error(&source) {
        StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: source.to_string(),
        }
    } else {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn is_read_only_error(error: &io::Error) -> bool {
    // EROFS is 30 on Linux and the BSDs/macOS; `io::ErrorKind::ReadOnlyFilesystem` needs Rust 1.83
    // and the workspace supports 1.80.
    error.kind() == io::ErrorKind::PermissionDenied
        || (cfg!(unix) && error.raw_os_error() == Some(30))
}

/// Maps an SQLite error on the database at `path` while doing `context`.
pub(crate) fn sql_error(path: &Path, context: &'static str, source: rusqlite::Error) -> StoreError {
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{context}: {source}"),
        },
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => StoreError::ReadOnly {
            path: path.to_path_buf(),
            detail: format!("{context}: {source}"),
        },
        _ => StoreError::Sqlite {
            path: path.to_path_buf(),
            context,
            source,
        },
    }
}

/// `map_err` helper: `.map_err(sql(path, "loading timers"))`.
pub(crate) fn sql<'a>(
    path: &'a Path,
    context: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |source| sql_error(path, context, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path() {
        let locked = StoreError::Locked {
            data_dir: PathBuf::from("/data/kron"),
            pid: Some(42),
        };
        assert_eq!(
            locked.to_string(),
            "data directory /data/kron is in use by another Kron runtime (pid 42)"
        );
        let too_new = StoreError::SchemaTooNew {
            path: PathBuf::from("/d/kron.db"),
            found: 9,
            supported: 1,
        };
        assert!(too_new
            .to_string()
            .starts_with("/d/kron.db: database schema version 9"));
        let ro = io_error(
            Path::new("/ro"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(ro, StoreError::ReadOnly { .. }), "{ro:?}");
    }
}
