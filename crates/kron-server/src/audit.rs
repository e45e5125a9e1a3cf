//! The audit log: `DIR/kron.audit.jsonl`, one JSON record per line for every write and every
//! refusal, hash-chained.
//!
//! A record is the JSON object of an [`AuditEntry`] plus `seq` (1, 2, ...) and `prev` (the
//! previous record's hash; 64 zeros for the first), followed by `hash`: the SHA-256 of the
//! record's text up to `hash` (the line with `,"hash":"..."` cut out and `}` put back). So
//! [`verify`] finds any edited record (its hash), any deleted or reordered one (`seq` and `prev`
//! no longer follow). What it cannot see is the loss of the last records together: keep a copy
//! of the latest hash elsewhere (e.g. from `kron audit tail`) to detect a truncation.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kron_core::time::{format_utc, EpochMs};
use serde::Serialize;

use crate::auth::{hex, sha256};
use crate::setup::SetupError;

/// The audit log's file in the data directory.
pub const AUDIT_FILE: &str = "kron.audit.jsonl";

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest text kept in a record's free-form fields.
const MAX_FIELD: usize = 512;

/// What one record says: who did what, and what was decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When (ISO 8601 UTC).
    pub ts: String,
    /// The token's name; `None` when no valid token was given.
    pub actor: Option<String>,
    pub role: Option<String>,
    pub tenant: Option<String>,
    pub method: String,
    pub path: String,
    /// The timer, run, worker or node the request was about, when known.
    pub target: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// "allowed" (the write was carried out) or "refused".
    pub decision: &'static str,
    /// Why it was refused (the error answered, or the authentication failure).
    pub reason: Option<String>,
}

impl AuditEntry {
    pub fn at(ms: EpochMs) -> AuditEntry {
        AuditEntry {
            ts: format_utc(ms),
            ..AuditEntry::default()
        }
    }
}

#[derive(Serialize)]
struct Chained<'a> {
    seq: u64,
    #[serde(flatten)]
    entry: &'a AuditEntry,
    prev: &'a str,
}

struct Head {
    file: File,
    seq: u64,
    prev: String,
}

/// The open audit log, appended to by every request that writes or is refused.
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

fn clip(text: &mut Option<String>) {
    if let Some(t) = text {
        if t.len() > MAX_FIELD {
            let mut end = MAX_FIELD;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
            t.push_str("...");
        }
    }
}

/// The `,"hash":"<64 hex>"}` that ends every record.
const HASH_SUFFIX_LEN: usize = r#","hash":""}"#.len() + 64;

/// Splits a record's line into its hashed text and its stored hash.
fn split_line(line: &str) -> Option<(String, &str)> {
    let cut = line.len().checked_sub(HASH_SUFFIX_LEN)?;
    let (body, suffix) = (line.get(..cut)?, line.get(cut..)?);
    let hash = suffix.strip_prefix(r#","hash":""#)?.strip_suffix(r#""}"#)?;
    Some((format!("{body}}}"), hash))
}

/// The `seq` and hash of the last record of the file at `path`, read from its end.
fn last_record(file: &mut File) -> std::io::Result<(u64, String)> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = String::new();
    file.take(len - start).read_to_string(&mut tail)?;
    let Some(line) = tail.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok((0, GENESIS.to_string()));
    };
    // A torn last line (a crash mid-write) still chains: the next record points at its bytes,
    // and `verify` names it.
    let Some((body, hash)) = split_line(line) else {
        return Ok((0, hex(&sha256(line.as_bytes()))));
    };
    let seq = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("seq").and_then(|s| s.as_u64()))
        .unwrap_or(0);
    Ok((seq, hash.to_string()))
}

impl AuditLog {
    /// Opens (creates) `DIR/kron.audit.jsonl`, continuing its chain.
    pub fn open(dir: &Path) -> Result<AuditLog, SetupError> {
        let path = dir.join(AUDIT_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| SetupError::io(&path, e))?;
        let (seq, prev) = last_record(&mut file).map_err(|e| SetupError::io(&path, e))?;
        Ok(AuditLog {
            path,
            head: Mutex::new(Head { file, seq, prev }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. An error means the record is not written (the caller decides
    /// whether to answer anyway).
    pub fn append(&self, entry: &AuditEntry) -> Result<(), String> {
        let mut entry = entry.clone();
        clip(&mut entry.reason);
        clip(&mut entry.target);
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let seq = head.seq + 1;
        let body = serde_json::to_string(&Chained {
            seq,
            entry: &entry,
            prev: &head.prev,
        })
        .map_err(|e| e.to_string())?;
        let hash = hex(&sha256(body.as_bytes()));
        let mut line = body;
        line.pop();
        line.push_str(&format!(",\"hash\":\"{hash}\"}}\n"));
        head.file
            .write_all(line.as_bytes())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        head.seq = seq;
        head.prev = hash;
        Ok(())
    }
}

/// The first record [`verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {line} is bad: {reason}")]
pub struct BadRecord {
    /// 1-based line number (= the `seq` it should have).
    pub line: u64,
    pub reason: String,
}

/// Checks the whole chain of the audit log at `path`; the number of records when it holds.
pub fn verify(path: &Path) -> Result<u64, VerifyError> {
    let file = File::open(path).map_err(|e| VerifyError::Io(format!("{}: {e}", path.display())))?;
    let mut prev = GENESIS.to_string();
    let mut count = 0u64;
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| VerifyError::Io(format!("{}: {e}", path.display())))?;
        let number = index as u64 + 1;
        let bad = |reason: String| {
            VerifyError::Bad(BadRecord {
                line: number,
                reason,
            })
        };
        let (body, hash) =
            split_line(&line).ok_or_else(|| bad("not a record: no hash at its end".to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| bad(format!("not a JSON record: {e}")))?;
        let seq = value.get("seq").and_then(|s| s.as_u64());
        if seq != Some(number) {
            return Err(bad(format!(
                "seq is {} where {number} was expected (a record was deleted, inserted or moved)",
                seq.map_or("missing".to_string(), |s| s.to_string())
            )));
        }
        let stated_prev = value.get("prev").and_then(|p| p.as_str()).unwrap_or("");
        if stated_prev != prev {
            return Err(bad(
                "prev does not match the previous record's hash (a record was deleted, \
                 inserted or moved)"
                    .to_string(),
            ));
        }
        if hex(&sha256(body.as_bytes())) != hash {
            return Err(bad(
                "its hash does not match its content (the record was edited)".to_string(),
            ));
        }
        prev = hash.to_string();
        count = number;
    }
    Ok(count)
}

/// Why [`verify`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Bad(#[from] BadRecord),
}

/// Every record of the log at `path` as JSON (lines that do not parse are skipped: `verify`
/// is the place to look for them).
pub fn read_records(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut records = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) {
            records.push(value);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u16) -> AuditEntry {
        AuditEntry {
            method: "POST".to_string(),
            path: format!("/v1/timers/t{n}/pause"),
            status: 200,
            decision: "allowed",
            ..AuditEntry::at(1_000 + i64::from(n))
        }
    }

    fn log_of(n: u16) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for i in 0..n {
            log.append(&entry(i)).unwrap();
        }
        let path = log.path().to_path_buf();
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn bad_line(path: &Path) -> u64 {
        match verify(path) {
            Err(VerifyError::Bad(bad)) => bad.line,
            other => panic!("expected a bad record, got {other:?}"),
        }
    }

    #[test]
    fn chain_survives_reopen() {
        let (dir, path) = log_of(3);
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(&entry(9)).unwrap();
        assert_eq!(verify(&path), Ok(4));
    }

    #[test]
    fn edit_delete_and_reorder_are_named() {
        let (_dir, path) = log_of(5);
        let original = lines(&path);

        let mut edited = original.clone();
        edited[2] = edited[2].replace("/t2/", "/t7/");
        write(&path, &edited);
        assert_eq!(bad_line(&path), 3);

        let mut deleted = original.clone();
        deleted.remove(1);
        write(&path, &deleted);
        assert_eq!(bad_line(&path), 2);

        let mut swapped = original.clone();
        swapped.swap(3, 4);
        write(&path, &swapped);
        assert_eq!(bad_line(&path), 4);

        write(&path, &original);
        assert_eq!(verify(&path), Ok(5));
    }
}
