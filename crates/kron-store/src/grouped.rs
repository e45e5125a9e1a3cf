//! The hot writes of a commit, many rows per statement.
//!
//! A burst commits thousands of rows of the same shape (three events, a run row written and
//! deleted, a timer-state update per run). SQLite's fixed cost per statement execution
//! (bind, step, reset, open and close cursors) is a large part of a small row's cost, so rows go
//! in groups of [`ROWS_PER_STATEMENT`]; what is left over goes one row per statement. Either
//! way a kind of write uses two cached statements, whatever the count.
//!
//! The statements say `OR FAIL`: a statement that writes many rows and may stop half-way on a
//! constraint (`ABORT`, SQLite's default) keeps a statement journal, a copy of every page it
//! touches, to undo its own rows. `FAIL` keeps the rows written before the error; that is
//! enough here because any error rolls back the whole transaction. Measured: ~8% more runs/s
//! in a burst of 50k.

use std::borrow::Borrow;

use rusqlite::{CachedStatement, Transaction};

use kron_core::event::Event;
use kron_core::run::{RunId, RunRecord};
use kron_core::timer::TimerRecord;

use crate::codec;

/// Rows per multi-row statement.
pub(crate) const ROWS_PER_STATEMENT: usize = 32;

pub(crate) enum WriteError {
    Sql(rusqlite::Error),
    /// A value that cannot be encoded (it names what).
    Value(String),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

/// Splits `items` into full groups and single rows, prepares `sql(rows)` for each (cached),
/// lets `bind` bind each item (with its row's position in the group), and executes it. Returns
/// the rows changed, summed.
fn execute_grouped<T>(
    tx: &Transaction<'_>,
    items: &[T],
    sql: impl Fn(usize) -> String,
    mut bind: impl FnMut(&mut CachedStatement<'_>, usize, &T) -> Result<(), WriteError>,
) -> Result<usize, WriteError> {
    let full = items.len() - items.len() % ROWS_PER_STATEMENT;
    let (groups, rest) = items.split_at(full);
    let groups = groups.chunks(ROWS_PER_STATEMENT);
    let mut changed = 0;
    for group in groups.chain(rest.chunks(1)) {
        let mut stmt = tx.prepare_cached(&sql(group.len()))?;
        for (row, item) in group.iter().enumerate() {
            bind(&mut stmt, row, item)?;
        }
        changed += stmt.raw_execute()?;
    }
    Ok(changed)
}

/// `head` followed by `rows` copies of `row`, comma-separated.
fn repeated(head: &str, row: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 1) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

/// Appends `events`, numbered from `seq + 1`. Returns the last seq assigned.
pub(crate) fn append_events(
    tx: &Transaction<'_>,
    events: &[Event],
    mut seq: i64,
) -> Result<i64, WriteError> {
    let mut buf = Vec::with_capacity(256);
    let sql = |rows| {
        repeated(
            "INSERT OR FAIL INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) VALUES ",
            "(?,?,?,?,?,?,?)",
            rows,
            "",
        )
    };
    execute_grouped(tx, events, sql, |stmt, row, event| {
        seq += 1;
        let base = row * 7;
        let detail = codec::detail_json(&event.detail, &mut buf).map_err(WriteError::Value)?;
        stmt.raw_bind_parameter(base + 7, detail)?;
        stmt.raw_bind_parameter(base + 1, seq)?;
        stmt.raw_bind_parameter(base + 2, event.ts)?;
        stmt.raw_bind_parameter(base + 3, event.timer_id.as_str())?;
        stmt.raw_bind_parameter(base + 4, event.kind.as_str())?;
        stmt.raw_bind_parameter(base + 5, event.run_id.as_ref().map(|id| id.as_str()))?;
        stmt.raw_bind_parameter(base + 6, event.attempt)?;
        Ok(())
    })?;
    Ok(seq)
}

/// The head of a multi-row insert into `runs`, and one row of its `VALUES` (bound by [`bind_run`]).
const INSERT_RUNS: &str = "INSERT OR FAIL INTO runs \
                           (run_id, timer_id, scheduled_at, attempt, phase, fire_at, manual) VALUES ";
const RUN_ROW: &str = "(?,?,?,?,?,?,?)";

/// Inserts the rows of runs created since the last commit. Plain inserts, not upserts: an upsert
/// keeps a statement journal (its update half may fail half-way), which cost ~5% of a burst's
/// commit time.
pub(crate) fn insert_runs(tx: &Transaction<'_>, runs: &[RunRecord]) -> Result<(), WriteError> {
    let sql = |rows| repeated(INSERT_RUNS, RUN_ROW, rows, "");
    execute_grouped(tx, runs, sql, bind_run)?;
    Ok(())
}

/// Inserts or replaces the rows of runs in flight.
pub(crate) fn upsert_runs<T: Borrow<RunRecord>>(
    tx: &Transaction<'_>,
    runs: &[T],
) -> Result<(), WriteError> {
    let sql = |rows| {
        repeated(
            INSERT_RUNS,
            RUN_ROW,
            rows,
            " ON CONFLICT (run_id) DO UPDATE SET timer_id = excluded.timer_id, \
             scheduled_at = excluded.scheduled_at, attempt = excluded.attempt, \
             phase = excluded.phase, fire_at = excluded.fire_at, manual = excluded.manual",
        )
    };
    execute_grouped(tx, runs, sql, bind_run)?;
    Ok(())
}

/// Rewrites the rows of runs that have one (each run at most once). Returns the runs whose row
/// was missing: the caller writes them whole.
pub(crate) fn update_runs<'r>(
    tx: &Transaction<'_>,
    runs: &'r [RunRecord],
) -> Result<Vec<&'r RunRecord>, WriteError> {
    let sql = |rows| {
        repeated(
            "UPDATE OR FAIL runs SET timer_id = v.column2, scheduled_at = v.column3, \
             attempt = v.column4, phase = v.column5, fire_at = v.column6, manual = v.column7 \
             FROM (VALUES ",
            RUN_ROW,
            rows,
            ") AS v WHERE runs.run_id = v.column1",
        )
    };
    update_in_place(
        tx,
        runs,
        sql,
        bind_run,
        "SELECT 1 FROM runs WHERE run_id = ?1",
        |run| run.run_id.as_str(),
    )
}

/// Executes the grouped `UPDATE`s `sql` (see [`execute_grouped`]) of rows that should exist, and
/// returns the items whose row was missing (rare: it was never written in full), found one by
/// one with `exists` (`?1`: the item's `key`).
fn update_in_place<'t, T>(
    tx: &Transaction<'_>,
    items: &'t [T],
    sql: impl Fn(usize) -> String,
    bind: impl FnMut(&mut CachedStatement<'_>, usize, &T) -> Result<(), WriteError>,
    exists: &str,
    key: impl Fn(&T) -> &str,
) -> Result<Vec<&'t T>, WriteError> {
    let updated = execute_grouped(tx, items, sql, bind)?;
    if updated == items.len() {
        return Ok(Vec::new());
    }
    let mut exists = tx.prepare_cached(exists)?;
    let mut missing = Vec::new();
    for item in items {
        if !exists.exists([key(item)])? {
            missing.push(item);
        }
    }
    Ok(missing)
}

fn bind_run<T: Borrow<RunRecord>>(
    stmt: &mut CachedStatement<'_>,
    row: usize,
    run: &T,
) -> Result<(), WriteError> {
    let run = run.borrow();
    let base = row * 7;
    stmt.raw_bind_parameter(base + 1, run.run_id.as_str())?;
    stmt.raw_bind_parameter(base + 2, run.timer_id.as_str())?;
    stmt.raw_bind_parameter(base + 3, run.scheduled_at)?;
    stmt.raw_bind_parameter(base + 4, run.attempt)?;
    stmt.raw_bind_parameter(base + 5, codec::phase_str(run.phase))?;
    stmt.raw_bind_parameter(base + 6, run.fire_at)?;
    stmt.raw_bind_parameter(base + 7, run.manual)?;
    Ok(())
}

/// Deletes the rows of finished runs.
pub(crate) fn delete_runs(tx: &Transaction<'_>, run_ids: &[RunId]) -> Result<(), WriteError> {
    let sql = |rows| repeated("DELETE FROM runs WHERE run_id IN (", "?", rows, ")");
    execute_grouped(tx, run_ids, sql, |stmt, row, id| {
        stmt.raw_bind_parameter(row + 1, id.as_str())?;
        Ok(())
    })?;
    Ok(())
}

/// Writes timers whole: their `timer_defs` and `timer_state` rows, inserted or replaced.
/// Generic over owned and borrowed records: a commit's timers are bound where they are.
pub(crate) fn upsert_timers<T: Borrow<TimerRecord>>(
    tx: &Transaction<'_>,
    timers: &[T],
) -> Result<(), WriteError> {
    let defs = |rows| {
        repeated(
            "INSERT OR FAIL INTO timer_defs (id, def, created_at) VALUES ",
            "(?,?,?)",
            rows,
            " ON CONFLICT (id) DO UPDATE SET def = excluded.def, created_at = excluded.created_at",
        )
    };
    execute_grouped(tx, timers, defs, |stmt, row, timer| {
        let values = codec::timer_def_values(timer.borrow()).map_err(WriteError::Value)?;
        bind_row(stmt, row, &values)
    })?;
    let states = |rows| {
        repeated(
            "INSERT OR FAIL INTO timer_state (id, lifecycle, next_scheduled_at, next_fire_at, \
             updated_at, last_run_at, last_status, last_duration_ms, run_count, failure_count) \
             VALUES ",
            "(?,?,?,?,?,?,?,?,?,?)",
            rows,
            " ON CONFLICT (id) DO UPDATE SET lifecycle = excluded.lifecycle, \
             next_scheduled_at = excluded.next_scheduled_at, \
             next_fire_at = excluded.next_fire_at, updated_at = excluded.updated_at, \
             last_run_at = excluded.last_run_at, last_status = excluded.last_status, \
             last_duration_ms = excluded.last_duration_ms, run_count = excluded.run_count, \
             failure_count = excluded.failure_count",
        )
    };
    execute_grouped(tx, timers, states, bind_state)?;
    Ok(())
}

fn bind_state<T: Borrow<TimerRecord>>(
    stmt: &mut CachedStatement<'_>,
    row: usize,
    timer: &T,
) -> Result<(), WriteError> {
    let values = codec::timer_state_values(timer.borrow()).map_err(WriteError::Value)?;
    bind_row(stmt, row, &values)
}

/// Binds one row's values as the `row`-th group of a multi-row statement whose rows all have
/// `values.len()` columns.
fn bind_row(
    stmt: &mut CachedStatement<'_>,
    row: usize,
    values: &[rusqlite::types::Value],
) -> Result<(), WriteError> {
    let base = row * values.len();
    for (i, value) in values.iter().enumerate() {
        stmt.raw_bind_parameter(base + i + 1, value)?;
    }
    Ok(())
}

/// Rewrites the `timer_state` rows of existing timers (the definition is left alone). Returns
/// the timers whose row was missing: the caller writes them whole.
pub(crate) fn update_timer_states<'t>(
    tx: &Transaction<'_>,
    timers: &'t [TimerRecord],
) -> Result<Vec<&'t TimerRecord>, WriteError> {
    // SQLite names the columns of a VALUES list column1, column2, ...; the plan scans the list
    // and finds each timer by primary key.
    let sql = |rows| {
        repeated(
            "UPDATE OR FAIL timer_state SET lifecycle = v.column2, \
             next_scheduled_at = v.column3, next_fire_at = v.column4, updated_at = v.column5, \
             last_run_at = v.column6, last_status = v.column7, last_duration_ms = v.column8, \
             run_count = v.column9, failure_count = v.column10 FROM (VALUES ",
            "(?,?,?,?,?,?,?,?,?,?)",
            rows,
            ") AS v WHERE timer_state.id = v.column1",
        )
    };
    update_in_place(
        tx,
        timers,
        sql,
        bind_state,
        "SELECT 1 FROM timer_state WHERE id = ?1",
        |timer| &timer.def.id,
    )
}

/// Deletes timers: both their rows.
pub(crate) fn delete_timers(tx: &Transaction<'_>, ids: &[String]) -> Result<(), WriteError> {
    for table in ["timer_defs", "timer_state"] {
        let sql = |rows| {
            repeated(
                &format!("DELETE FROM {table} WHERE id IN ("),
                "?",
                rows,
                ")",
            )
        };
        execute_grouped(tx, ids, sql, |stmt, row, id| {
            stmt.raw_bind_parameter(row + 1, id.as_str())?;
            Ok(())
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::repeated;

    #[test]
    fn repeated_rows_are_comma_separated() {
        assert_eq!(repeated("IN (", "?", 3, ")"), "IN (?,?,?)");
        assert_eq!(repeated("V ", "(?,?)", 1, ""), "V (?,?)");
    }
}
