//! A copy of the history up to an event number, as the rows stored: what a replicated server
//! sends with a snapshot, so that a replica brought up by one serves the same history as the
//! node that sent it (the snapshot's timers and runs alone would leave it without the events
//! of every entry it skipped).
//!
//! Rows travel as stored (kind and detail as text), so nothing is parsed and re-encoded on the
//! way: the receiver's table ends up byte for byte the sender's, event numbers included.

use std::path::Path;

use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::{sql, StoreError};

/// Every event with `seq <= upto_seq`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCopy {
    /// The event number the copy reaches: the next event written after it is `upto_seq + 1`.
    pub upto_seq: i64,
    pub rows: Vec<EventRow>,
}

/// One row of the `events` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub seq: i64,
    pub ts: i64,
    pub timer_id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Reads every event with `seq <= upto_seq`.
pub(crate) fn read(
    conn: &Connection,
    path: &Path,
    upto_seq: i64,
) -> Result<HistoryCopy, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT seq, ts, timer_id, kind, run_id, attempt, detail FROM events \
             WHERE seq <= ?1 ORDER BY seq",
        )
        .map_err(sql(path, "reading the history"))?;
    let rows = stmt
        .query_map([upto_seq], |row| {
            Ok(EventRow {
                seq: row.get(0)?,
                ts: row.get(1)?,
                timer_id: row.get(2)?,
                kind: row.get(3)?,
                run_id: row.get(4)?,
                attempt: row.get(5)?,
                detail: row.get(6)?,
            })
        })
        .map_err(sql(path, "reading the history"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql(path, "reading the history"))?;
    Ok(HistoryCopy { upto_seq, rows })
}

/// Replaces the whole `events` table with `copy`, and the event high-water mark with its
/// `upto_seq`, inside the caller's transaction.
pub(crate) fn replace(
    tx: &Transaction<'_>,
    path: &Path,
    copy: &HistoryCopy,
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM events", [])
        .map_err(sql(path, "clearing the history"))?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(sql(path, "writing the history"))?;
        for row in &copy.rows {
            insert
                .execute(rusqlite::params![
                    row.seq,
                    row.ts,
                    row.timer_id,
                    row.kind,
                    row.run_id,
                    row.attempt,
                    row.detail
                ])
                .map_err(sql(path, "writing the history"))?;
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('max_seq', ?1) \
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [copy.upto_seq.to_string()],
    )
    .map_err(sql(path, "writing the history"))?;
    Ok(())
}
