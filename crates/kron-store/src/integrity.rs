//! [`check_integrity`]: whether a database file is whole, before a server trusts it.
//!
//! SQLite notices a damaged page only when it reads it, which for a server may be long after
//! it started and joined its cluster; a node should rather refuse to start. `PRAGMA
//! quick_check` reads every page once (it skips the index-content comparison of the full
//! `integrity_check`), so its cost grows with the file.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{sql, StoreError};

/// How many of SQLite's complaints the error quotes.
const QUOTED: usize = 3;

/// `Ok` when `path` does not exist or is a whole SQLite database; [`StoreError::Corrupt`]
/// naming it otherwise (not a database, truncated, malformed pages).
pub fn check_integrity(path: &Path) -> Result<(), StoreError> {
    if !path.exists() {
        return Ok(());
    }
    let conn = Connection::open(path).map_err(sql(path, "opening for an integrity check"))?;
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(sql(path, "checking integrity"))?;
    let findings: Vec<String> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.take(QUOTED).collect())
        .map_err(sql(path, "checking integrity"))?;
    if findings.len() == 1 && findings[0] == "ok" {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("integrity check failed: {}", findings.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_missing_and_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        check_integrity(&path).unwrap();
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT i, printf('%0200d', i) FROM n;",
            )
            .unwrap();
        }
        check_integrity(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let err = check_integrity(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("x.db"), "{err}");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let err = check_integrity(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
}
