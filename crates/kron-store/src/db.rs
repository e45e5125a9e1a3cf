//! The database file: its name, the checks made before SQLite is let near it, and opening
//! connections with the settings every connection needs.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{io_error, sql, StoreError};

/// The database file's name inside the data directory (SQLite adds `-wal` and `-shm` beside it
/// while a writer runs).
pub const DB_FILE: &str = "kron.db";

/// How long a statement waits for a lock held by another connection.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER_LEN: usize = 100;

pub(crate) fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

pub(crate) fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

/// What is at the database path before SQLite opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileState {
    Missing,
    /// Zero bytes: a database SQLite created but never wrote (it would treat it as empty).
    Empty,
    /// A file with a plausible SQLite header.
    Present,
}

/// Checks the file at `path` without SQLite: it must be a regular file starting with a valid
/// SQLite header, and (when no write-ahead log is pending) at least as long as the header says
/// and a whole number of pages. This catches garbage and truncated files cheaply and for sure,
/// before anything could write to them; damage inside pages is left to `PRAGMA quick_check` /
/// `integrity_check`.
pub(crate) fn check_file(path: &Path) -> Result<FileState, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(read_error(path, e)),
    };
    if !meta.is_file() {
        return Err(corrupt("not a regular file".to_string()));
    }
    let len = meta.len();
    if len == 0 {
        return Ok(FileState::Empty);
    }
    if len < HEADER_LEN as u64 {
        return Err(corrupt(format!(
            "the file is only {len} bytes, shorter than an SQLite header (truncated?)"
        )));
    }
    let mut header = [0u8; HEADER_LEN];
    File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map_err(|e| read_error(path, e))?;
    if &header[..16] != SQLITE_MAGIC {
        return Err(corrupt(
            "not an SQLite database (the file does not start with the SQLite header)".to_string(),
        ));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(corrupt(format!(
                "invalid page size {n} in the SQLite header"
            )))
        }
    };
    let wal_pending = std::fs::metadata(wal_path(path))
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if !wal_pending {
        // Without a log to replay, the main file alone must hold every page.
        if len % page_size != 0 {
            return Err(corrupt(format!(
                "the file is {len} bytes, not a whole number of {page_size}-byte pages (truncated or damaged)"
            )));
        }
        let be32 = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let change_counter = be32(24);
        let page_count = u64::from(be32(28));
        let valid_for = be32(92);
        // The in-header page count is only meaningful when written by SQLite >= 3.7.0, which
        // marks it valid by copying the change counter to offset 92.
        if valid_for == change_counter && page_count * page_size > len {
            return Err(corrupt(format!(
                "truncated: the header says {page_count} pages of {page_size} bytes ({} bytes) but the file has {len}",
                page_count * page_size
            )));
        }
    }
    Ok(FileState::Present)
}

/// A read error is never about write permission: always `Io`.
pub(crate) fn read_error(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens the writer's connection (creating the file if missing).
pub(crate) fn open_read_write(path: &Path) -> Result<Connection, StoreError> {
    // NO_MUTEX: the connection is used by one thread at a time (the `Store` is `Send`, not
    // `Sync`). No URI flag: the path is taken literally.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql(path, "setting busy_timeout"))?;
    Ok(conn)
}

/// Opens a read-only connection: SQLite never creates or writes the main file through it.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql(path, "setting busy_timeout"))?;
    Ok(conn)
}

/// SQLite reports most open failures as the uninformative `SQLITE_CANTOPEN`; when the cause is a
/// permission problem we can see, say so.
fn open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ffi::ErrorCode::CannotOpen) {
        let probe = match std::fs::metadata(path) {
            Ok(_) => std::fs::OpenOptions::new().read(true).open(path).err(),
            Err(err) => Some(err),
        };
        if let Some(err) = probe {
            if err.kind() == io::ErrorKind::PermissionDenied {
                return io_error(path, err);
            }
        }
    }
    crate::error::sql_error(path, "opening the database", e)
}

/// The sizes of the database file and its write-ahead log, in bytes (missing files count 0).
pub(crate) fn file_bytes(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    size(db) + size(&wal_path(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        assert_eq!(check_file(&path).unwrap(), FileState::Missing);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(check_file(&path).unwrap(), FileState::Empty);
        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(check_file(&path), Err(StoreError::Corrupt { .. })));
        std::fs::write(&path, [7u8; 4096]).unwrap();
        assert!(matches!(check_file(&path), Err(StoreError::Corrupt { .. })));

        std::fs::remove_file(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(20000));")
            .unwrap();
        drop(conn);
        assert_eq!(check_file(&path).unwrap(), FileState::Present);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 4096]).unwrap();
        match check_file(&path) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.starts_with("truncated"), "{detail}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        std::fs::write(&path, &full[..full.len() - 100]).unwrap();
        assert!(matches!(check_file(&path), Err(StoreError::Corrupt { .. })));
        assert!(matches!(
            check_file(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
