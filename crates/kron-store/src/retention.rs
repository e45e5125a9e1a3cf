//! Retention by runs: which events of a timer go when only its latest N runs are kept.
//!
//! Shared by [`Store::compact`](crate::Store::compact) (everything in one transaction, for the
//! command line and for start-up) and [`Store::compact_slice`](crate::Store::compact_slice) (a
//! few hundred timers per transaction, so a running runtime's commits never wait long for it).

use std::num::NonZeroUsize;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{sql, StoreError};

/// Events of runs in flight are never deleted.
pub(crate) const NOT_IN_FLIGHT: &str =
    "(run_id IS NULL OR run_id NOT IN (SELECT run_id FROM runs))";

/// Up to `limit` ids of timers that have events (removed timers included), in id order, after
/// `after` (`""`: from the first). Skips through the `(timer_id, seq)` index one id at a time
/// rather than reading all of it.
pub(crate) fn timers_with_events(
    conn: &Connection,
    path: &Path,
    after: &str,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let what = "listing timers with events";
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE t(id, n) AS ( \
                SELECT (SELECT min(timer_id) FROM events WHERE timer_id > ?1), 1 \
                UNION ALL \
                SELECT (SELECT min(timer_id) FROM events WHERE timer_id > t.id), t.n + 1 FROM t \
                WHERE t.id IS NOT NULL AND t.n < ?2) \
             SELECT id FROM t WHERE id IS NOT NULL",
        )
        .map_err(sql(path, what))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![after, limit], |row| row.get(0))
        .map_err(sql(path, what))?;
    rows.collect::<Result<_, _>>().map_err(sql(path, what))
}

/// Deletes, for each of `timer_ids`, every event before the `RUN_DUE` that began its
/// `keep`-th most recent run, except events of runs in flight. Returns how many went.
pub(crate) fn keep_latest_runs(
    conn: &Connection,
    path: &Path,
    keep: NonZeroUsize,
    timer_ids: &[String],
) -> Result<usize, StoreError> {
    // A run begins with its RUN_DUE, so the timer's keep-th most recent RUN_DUE is where the
    // history to keep starts; walking the index newest-first finds it reading only what is kept.
    let mut find_cutoff = conn
        .prepare_cached(
            "SELECT seq FROM events INDEXED BY events_timer_seq \
             WHERE timer_id = ?1 AND kind = 'RUN_DUE' ORDER BY seq DESC LIMIT 1 OFFSET ?2",
        )
        .map_err(sql(path, "finding runs to keep"))?;
    let mut delete = conn
        .prepare_cached(&format!(
            "DELETE FROM events WHERE timer_id = ?1 AND seq < ?2 AND {NOT_IN_FLIGHT}"
        ))
        .map_err(sql(path, "deleting run events"))?;
    let offset = i64::try_from(keep.get() - 1).unwrap_or(i64::MAX);
    let mut deleted = 0;
    for timer_id in timer_ids {
        let cutoff: Option<i64> = find_cutoff
            .query_row(params![timer_id, offset], |row| row.get(0))
            .optional()
            .map_err(sql(path, "finding runs to keep"))?;
        if let Some(cutoff) = cutoff {
            deleted += delete
                .execute(params![timer_id, cutoff])
                .map_err(sql(path, "deleting run events"))?;
        }
    }
    Ok(deleted)
}

/// Records the highest seq ever assigned, so deleting the newest events never lets a seq be
/// used twice.
pub(crate) fn keep_max_seq(conn: &Connection, path: &Path, max_seq: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('max_seq', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [max_seq.to_string()],
    )
    .map(|_| ())
    .map_err(sql(path, "compacting"))
}
