//! Reads shared by the writer (`Store`) and the read-only `Reader`.

use std::path::Path;

use kron_core::event::{EventKind, StoredEvent};
use kron_core::run::RunRecord;
use kron_core::timer::TimerRecord;
use rusqlite::types::Value;
use rusqlite::{Connection, Row};

use crate::codec::{self, DecodeError, EVENT_COLUMNS, RUN_COLUMNS, TIMER_COLUMNS};
use crate::error::{sql, sql_error, StoreError};
use crate::reader::EventFilter;
use crate::schema::DEAD_EVENTS_INDEX;

/// Runs a prepared (cached) query and decodes every row with `decode`.
fn collect<T>(
    conn: &Connection,
    path: &Path,
    context: &'static str,
    query: &str,
    params: &[Value],
    decode: fn(&Row<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(query).map_err(sql(path, context))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params))
        .map_err(sql(path, context))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql(path, context))? {
        out.push(decode(row).map_err(|e| decode_error(path, context, e))?);
    }
    Ok(out)
}

pub(crate) fn decode_error(path: &Path, context: &'static str, e: DecodeError) -> StoreError {
    match e {
        DecodeError::Sql(e) => sql_error(path, context, e),
        DecodeError::Invalid(detail) => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("{context}: {detail}"),
        },
    }
}

fn limit_value(limit: usize) -> Value {
    Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX))
}

/// All timers sorted by id.
pub(crate) fn timers(conn: &Connection, path: &Path) -> Result<Vec<TimerRecord>, StoreError> {
    // Read in table order and sort here: `ORDER BY id` walks the id index and looks every row up
    // in the table, which took most of start-up's loading time at 100k timers.
    let query = format!("SELECT {TIMER_COLUMNS} FROM timers");
    let mut timers = collect(
        conn,
        path,
        "reading timers",
        &query,
        &[],
        codec::timer_from_row,
    )?;
    timers.sort_unstable_by(|a, b| a.def.id.cmp(&b.def.id));
    Ok(timers)
}

pub(crate) fn timer(
    conn: &Connection,
    path: &Path,
    id: &str,
) -> Result<Option<TimerRecord>, StoreError> {
    let query = format!("SELECT {TIMER_COLUMNS} FROM timers WHERE id = ?1");
    let params = [Value::Text(id.to_string())];
    Ok(collect(
        conn,
        path,
        "reading a timer",
        &query,
        &params,
        codec::timer_from_row,
    )?
    .into_iter()
    .next())
}

/// All runs in flight, sorted by run id (creation order).
pub(crate) fn runs(conn: &Connection, path: &Path) -> Result<Vec<RunRecord>, StoreError> {
    let query = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id");
    collect(conn, path, "reading runs", &query, &[], codec::run_from_row)
}

/// The latest `limit` events of a timer, oldest first.
pub(crate) fn history(
    conn: &Connection,
    path: &Path,
    timer_id: &str,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    events(
        conn,
        path,
        &EventFilter {
            timer_id: Some(timer_id.to_string()),
            limit: Some(limit),
            ..EventFilter::default()
        },
    )
}

/// Events matching `filter`, oldest first; with a limit, the newest `limit` of them.
pub(crate) fn events(
    conn: &Connection,
    path: &Path,
    filter: &EventFilter,
) -> Result<Vec<StoredEvent>, StoreError> {
    if filter.limit == Some(0) {
        return Ok(Vec::new());
    }
    let (query, params) = events_query(filter, dead_events_index(conn, path, filter)?);
    let mut events = collect(
        conn,
        path,
        "reading events",
        &query,
        &params,
        codec::event_from_row,
    )?;
    if filter.limit.is_some() {
        events.reverse();
    }
    Ok(events)
}

/// How many events match `filter`, its limit aside.
pub(crate) fn count_events(
    conn: &Connection,
    path: &Path,
    filter: &EventFilter,
) -> Result<u64, StoreError> {
    let (query, params) = count_query(filter, dead_events_index(conn, path, filter)?);
    let mut stmt = conn
        .prepare_cached(&query)
        .map_err(sql(path, "counting events"))?;
    let count: i64 = stmt
        .query_row(rusqlite::params_from_iter(params), |row| row.get(0))
        .map_err(sql(path, "counting events"))?;
    Ok(count.max(0) as u64)
}

/// The `AND ...` conditions of `filter` and their parameters, numbered from 1.
fn event_conditions(filter: &EventFilter) -> (String, Vec<Value>) {
    let mut query = String::new();
    let mut params = Vec::new();
    if let Some(timer_id) = &filter.timer_id {
        params.push(Value::Text(timer_id.clone()));
        query.push_str(&format!(" AND timer_id = ?{}", params.len()));
    }
    if let Some(ids) = &filter.timer_ids {
        // One JSON array, whatever its length: no limit on the number of parameters to meet.
        params.push(Value::Text(
            serde_json::Value::from(ids.clone()).to_string(),
        ));
        query.push_str(&format!(
            " AND timer_id IN (SELECT value FROM json_each(?{}))",
            params.len()
        ));
    }
    if filter.kinds == [EventKind::RunDead] {
        // Written out, not bound: only a literal proves the partial index's condition to SQLite.
        query.push_str(" AND kind = 'RUN_DEAD'");
    } else if !filter.kinds.is_empty() {
        let mut placeholders = Vec::new();
        for kind in &filter.kinds {
            params.push(Value::Text(kind.as_str().to_string()));
            placeholders.push(format!("?{}", params.len()));
        }
        query.push_str(&format!(" AND kind IN ({})", placeholders.join(", ")));
    }
    if let Some(since) = filter.since {
        params.push(Value::Integer(since));
        query.push_str(&format!(" AND ts >= ?{}", params.len()));
    }
    if let Some(until) = filter.until {
        params.push(Value::Integer(until));
        query.push_str(&format!(" AND ts < ?{}", params.len()));
    }
    (query, params)
}

/// Whether a query for `filter` should read the dead runs' partial index (schema version 3):
/// it asks for `RUN_DEAD` events only and not one timer's (whose own index is narrower), and
/// the database has the index (a reader may open a version 2 file, which has not).
fn dead_events_index(
    conn: &Connection,
    path: &Path,
    filter: &EventFilter,
) -> Result<bool, StoreError> {
    if filter.kinds != [EventKind::RunDead] || filter.timer_id.is_some() {
        return Ok(false);
    }
    let mut stmt = conn
        .prepare_cached("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1")
        .map_err(sql(path, "looking up an index"))?;
    let found: i64 = stmt
        .query_row([DEAD_EVENTS_INDEX], |row| row.get(0))
        .map_err(sql(path, "looking up an index"))?;
    Ok(found > 0)
}

/// The SQL and parameters of [`count_events`]; `dead_index` as for [`events_query`].
fn count_query(filter: &EventFilter, dead_index: bool) -> (String, Vec<Value>) {
    let (conditions, params) = event_conditions(filter);
    let index = if dead_index {
        format!(" INDEXED BY {DEAD_EVENTS_INDEX}")
    } else {
        String::new()
    };
    let query = format!("SELECT count(*) FROM events{index} WHERE 1{conditions}");
    (query, params)
}

/// The SQL and parameters of [`events`]. The index is chosen here, not left to the planner,
/// which (without statistics) prefers scanning the whole table in `seq` order to sorting a
/// range: with a timer, its `(timer_id, seq)` entries (newest first, so `LIMIT n` reads n);
/// dead runs only (`dead_index`), the partial index on their `ts` (then the few rows it gives
/// are sorted); otherwise the table in `seq` order (no other index: see `schema.rs`).
fn events_query(filter: &EventFilter, dead_index: bool) -> (String, Vec<Value>) {
    let index = if filter.timer_id.is_some() {
        " INDEXED BY events_timer_seq".to_string()
    } else if dead_index {
        format!(" INDEXED BY {DEAD_EVENTS_INDEX}")
    } else {
        String::new()
    };
    let (conditions, mut params) = event_conditions(filter);
    let mut query = format!("SELECT {EVENT_COLUMNS} FROM events{index} WHERE 1{conditions}");
    match filter.limit {
        Some(limit) => {
            params.push(limit_value(limit));
            query.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", params.len()));
        }
        None => query.push_str(" ORDER BY seq"),
    }
    (query, params)
}

/// The highest event sequence number ever assigned: the larger of the newest stored event and
/// the high-water mark compaction records before deleting (so seqs are never reused).
pub(crate) fn max_seq(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM events), 0), \
                    coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'max_seq'), 0))",
        [],
        |row| row.get(0),
    )
    .map_err(sql(path, "reading the last event number"))
}

pub(crate) fn event_count(conn: &Connection, path: &Path) -> Result<u64, StoreError> {
    let count: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
        .map_err(sql(path, "counting events"))?;
    Ok(count.max(0) as u64)
}

/// `PRAGMA integrity_check` (the full check, indexes against tables included): `["ok"]` or the
/// problems found.
pub(crate) fn integrity_check(conn: &Connection, path: &Path) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let result = conn.pragma_query(None, "integrity_check", |row| {
        out.push(row.get::<_, String>(0)?);
        Ok(())
    });
    match result {
        Ok(()) => Ok(out),
        // A badly damaged file can make the check itself fail: that is its answer.
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(
                    rusqlite::ffi::ErrorCode::DatabaseCorrupt
                        | rusqlite::ffi::ErrorCode::NotADatabase
                )
            ) =>
        {
            out.push(e.to_string());
            Ok(out)
        }
        Err(e) => Err(sql_error(path, "checking integrity", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kron_core::event::EventKind;

    /// The plan SQLite chooses for [`events`] (`count: false`) or [`count_events`] of `filter`.
    fn plan(conn: &Connection, filter: &EventFilter, count: bool) -> String {
        let path = Path::new(":memory:");
        let dead_index = dead_events_index(conn, path, filter).unwrap();
        let (query, params) = if count {
            count_query(filter, dead_index)
        } else {
            events_query(filter, dead_index)
        };
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::migrate(&mut conn, Path::new(":memory:"), 0, 0).unwrap();
        conn
    }

    #[test]
    fn event_queries_use_the_intended_index() {
        let conn = migrated();
        let history = plan(
            &conn,
            &EventFilter {
                timer_id: Some("a".into()),
                limit: Some(100),
                ..EventFilter::default()
            },
            false,
        );
        assert!(
            history.contains("USING INDEX events_timer_seq (timer_id=?)"),
            "{history}"
        );
        assert!(!history.contains("TEMP B-TREE"), "{history}");
        let since = plan(
            &conn,
            &EventFilter {
                since: Some(5),
                kinds: vec![EventKind::RunDue],
                ..EventFilter::default()
            },
            false,
        );
        assert!(since.starts_with("SCAN events"), "{since}");
        let tail = plan(
            &conn,
            &EventFilter {
                limit: Some(10),
                ..EventFilter::default()
            },
            false,
        );
        assert!(tail.starts_with("SCAN events"), "{tail}");
        assert!(!tail.contains("TEMP B-TREE"), "{tail}");
    }

    #[test]
    fn dead_runs_of_a_period_read_their_partial_index() {
        let conn = migrated();
        let everyone = EventFilter {
            kinds: vec![EventKind::RunDead],
            since: Some(5),
            limit: Some(100),
            ..EventFilter::default()
        };
        let tenant = EventFilter {
            timer_ids: Some(vec!["a".into(), "b".into()]),
            ..everyone.clone()
        };
        for filter in [&everyone, &tenant] {
            for count in [false, true] {
                let plan = plan(&conn, filter, count);
                assert!(
                    plan.contains("USING INDEX events_dead_ts (ts>?)")
                        || plan.contains("USING COVERING INDEX events_dead_ts (ts>?)"),
                    "{plan}"
                );
            }
        }
        // One timer's dead runs: its own index is the narrower one.
        let one = plan(
            &conn,
            &EventFilter {
                timer_id: Some("a".into()),
                ..everyone.clone()
            },
            false,
        );
        assert!(one.contains("events_timer_seq"), "{one}");
        // A version 2 file has no such index: the same filter scans, and does not fail.
        conn.execute_batch("DROP INDEX events_dead_ts").unwrap();
        let older = plan(&conn, &everyone, false);
        assert!(older.starts_with("SCAN events"), "{older}");
    }

    #[test]
    fn dead_runs_read_through_the_index_are_the_ones_a_scan_finds() {
        let conn = migrated();
        let path = Path::new(":memory:");
        let kinds = ["RUN_DUE", "RUN_STARTED", "RUN_FAILED", "RUN_DEAD"];
        for seq in 1..=400_i64 {
            conn.execute(
                "INSERT INTO events (seq, ts, timer_id, kind) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    seq,
                    // Mostly increasing, with a step back now and then (a clock set back).
                    seq * 10 - if seq % 7 == 0 { 95 } else { 0 },
                    format!("t{}", seq % 5),
                    kinds[(seq % 4) as usize],
                ],
            )
            .unwrap();
        }
        let filters = [
            EventFilter {
                kinds: vec![EventKind::RunDead],
                since: Some(1_500),
                limit: Some(30),
                ..EventFilter::default()
            },
            EventFilter {
                kinds: vec![EventKind::RunDead],
                timer_ids: Some(vec!["t1".into(), "t3".into()]),
                since: Some(700),
                until: Some(3_000),
                ..EventFilter::default()
            },
        ];
        for filter in &filters {
            let through_index = (
                events(&conn, path, filter).unwrap(),
                count_events(&conn, path, filter).unwrap(),
            );
            conn.execute_batch("DROP INDEX events_dead_ts").unwrap();
            let scanned = (
                events(&conn, path, filter).unwrap(),
                count_events(&conn, path, filter).unwrap(),
            );
            conn.execute_batch("CREATE INDEX events_dead_ts ON events(ts) WHERE kind = 'RUN_DEAD'")
                .unwrap();
            assert!(through_index.1 > 0);
            assert_eq!(through_index, scanned);
        }
    }
}
