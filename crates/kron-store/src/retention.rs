//! Retention by runs: which events of a timer go when only its latest N runs are kept.
//!
//! The rule, per timer (removed timers included), never touching an event of a run in flight:
//!
//! * every event before the `RUN_DUE` that began its N-th most recent run goes: the runs
//!   themselves, and the events that belong to no run (`TIMER_CREATED`, `TIMER_UPDATED`,
//!   `TIMER_PAUSED`, ..., `RUN_MISSED`), which are kept with the run that follows them;
//! * of the events that belong to no run, only the latest N are kept in any case, so a timer that
//!   seldom runs but is registered again with changes at every start, or paused and resumed
//!   again and again, cannot grow its history without bound either.
//!
//! Shared by [`Store::compact`](crate::Store::compact) (everything in one transaction, for the
//! command line) and [`Retainer`](crate::Retainer) (short transactions beside a running
//! runtime's commits).

use std::num::NonZeroUsize;
use std::path::Path;

use rusqlite::{params, Connection};

use crate::error::{sql, StoreError};

/// The runtime's default history limit: the latest 1,000 runs of each timer. A debugging aid
/// that reaches back 1,000 runs (17 minutes of a timer firing every second, 3 years of a daily
/// one), and a bound: about 0.5 MB per timer at ~4 events of ~120 bytes per run.
pub const DEFAULT_HISTORY_LIMIT: usize = 1_000;

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

/// Where one timer's history to keep begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cutoffs {
    /// Every event below this seq goes (the `RUN_DUE` of the N-th most recent run; 0: none).
    pub runs: i64,
    /// Events of no run below this seq go (the N-th most recent of them; 0: none).
    pub no_run: i64,
}

impl Cutoffs {
    /// Nothing of the timer goes.
    pub fn is_empty(&self) -> bool {
        self.runs == 0 && self.no_run == 0
    }
}

/// Finds the timer's cutoffs by walking its events newest-first through the `(timer_id, seq)`
/// index, reading only what is kept (it stops at the N-th most recent `RUN_DUE`).
pub(crate) fn cutoffs(
    conn: &Connection,
    path: &Path,
    timer_id: &str,
    keep: NonZeroUsize,
) -> Result<Cutoffs, StoreError> {
    let what = "finding runs to keep";
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, kind = 'RUN_DUE', run_id IS NULL FROM events \
             INDEXED BY events_timer_seq WHERE timer_id = ?1 ORDER BY seq DESC",
        )
        .map_err(sql(path, what))?;
    let mut rows = stmt.query([timer_id]).map_err(sql(path, what))?;
    let keep = keep.get();
    let (mut runs_seen, mut no_run_seen) = (0usize, 0usize);
    let mut cut = Cutoffs { runs: 0, no_run: 0 };
    while let Some(row) = rows.next().map_err(sql(path, what))? {
        let seq: i64 = row.get(0).map_err(sql(path, what))?;
        let due: bool = row.get(1).map_err(sql(path, what))?;
        let no_run: bool = row.get(2).map_err(sql(path, what))?;
        if no_run {
            no_run_seen += 1;
            if no_run_seen == keep {
                cut.no_run = seq;
            }
        }
        if due {
            runs_seen += 1;
            if runs_seen == keep {
                cut.runs = seq;
                break;
            }
        }
    }
    // Below the runs' cutoff everything goes anyway.
    if cut.no_run <= cut.runs {
        cut.no_run = 0;
    }
    Ok(cut)
}

/// Deletes up to `limit` of the timer's events that its cutoffs let go, oldest first, from
/// seq `from` (exclusive) on. Returns how many went and the last seq looked at (the `from` of
/// the next chunk); fewer than `limit` means the timer is done.
pub(crate) fn delete_chunk(
    conn: &Connection,
    path: &Path,
    timer_id: &str,
    cut: Cutoffs,
    from: i64,
    limit: usize,
) -> Result<(usize, i64), StoreError> {
    let what = "deleting old events";
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT seq FROM events INDEXED BY events_timer_seq \
             WHERE timer_id = ?1 AND seq > ?2 AND seq < ?3 AND (seq < ?4 OR run_id IS NULL) \
             AND {NOT_IN_FLIGHT} ORDER BY seq LIMIT ?5"
        ))
        .map_err(sql(path, what))?;
    let upper = cut.runs.max(cut.no_run);
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let seqs: Vec<i64> = select
        .query_map(params![timer_id, from, upper, cut.runs, limit_sql], |row| {
            row.get(0)
        })
        .map_err(sql(path, what))?
        .collect::<Result<_, _>>()
        .map_err(sql(path, what))?;
    let mut delete = conn
        .prepare_cached("DELETE FROM events WHERE seq = ?1")
        .map_err(sql(path, what))?;
    for seq in &seqs {
        delete.execute([seq]).map_err(sql(path, what))?;
    }
    Ok((seqs.len(), seqs.last().copied().unwrap_or(from)))
}

/// Applies the rule to each of `timer_ids` in full. Returns how many events went.
pub(crate) fn keep_latest_runs(
    conn: &Connection,
    path: &Path,
    keep: NonZeroUsize,
    timer_ids: &[String],
) -> Result<usize, StoreError> {
    // One statement per timer: a whole history in one transaction is what this is for.
    let mut delete = conn
        .prepare_cached(&format!(
            "DELETE FROM events WHERE timer_id = ?1 AND seq < ?2 AND (seq < ?3 OR run_id IS NULL) \
             AND {NOT_IN_FLIGHT}"
        ))
        .map_err(sql(path, "deleting old events"))?;
    let mut deleted = 0;
    for timer_id in timer_ids {
        let cut = cutoffs(conn, path, timer_id, keep)?;
        if !cut.is_empty() {
            deleted += delete
                .execute(params![timer_id, cut.runs.max(cut.no_run), cut.runs])
                .map_err(sql(path, "deleting old events"))?;
        }
    }
    Ok(deleted)
}

/// Records the highest seq ever assigned (at least `max_seq`, and at least any seq stored), so
/// deleting the newest events never lets a seq be used twice.
pub(crate) fn keep_max_seq(conn: &Connection, path: &Path, max_seq: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) \
         VALUES ('max_seq', max(?1, coalesce((SELECT max(seq) FROM events), 0))) \
         ON CONFLICT (key) DO UPDATE SET value = \
             max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
        [max_seq],
    )
    .map(|_| ())
    .map_err(sql(path, "compacting"))
}
