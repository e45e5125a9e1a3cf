//! The database schema: numbered migrations, `PRAGMA user_version` as the schema version and
//! `PRAGMA application_id` as the mark of a Kron database.
//!
//! Migration `n` (1-based) turns schema version `n - 1` into `n`, in one transaction that also sets
//! `user_version = n`. Only the [`Store`](crate::Store), holding the writer lock, migrates.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{sql, sql_error, StoreError};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 3;

/// `PRAGMA application_id` of a Kron database: "KRON" in ASCII. Lets us (and `file(1)`) tell a
/// Kron database from another program's SQLite file.
pub(crate) const APPLICATION_ID: i32 = 0x4B52_4F4E;

/// Version 1.
///
/// * `events.seq` is a plain `INTEGER PRIMARY KEY` (the rowid) and the writer assigns it
///   explicitly from its in-memory high-water mark (see `meta.max_seq` and `writer.rs`), which
///   is cheaper than `AUTOINCREMENT` (whose `sqlite_sequence` row is read and rewritten for
///   every inserted row).
/// * `events(timer_id, seq)` serves history and per-timer retention. That is the only index on
///   events: each one costs every insert (three events per run). Time-range queries (`--since`,
///   age-based retention) walk the table in `seq` order, which is nearly time order; there is
///   deliberately no index on `ts` or `run_id`.
/// * `timers` and `runs` are `WITHOUT ROWID` tables clustered on their text keys: one b-tree per
///   table instead of a rowid table plus a unique index, so the per-run row writes touch half
///   the pages.
/// * Not `STRICT` tables: they would make the file unreadable to `sqlite3` shells older than
///   3.37, which people use to inspect their data.
const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE timers (
    id                TEXT PRIMARY KEY,
    def               TEXT NOT NULL,
    lifecycle         TEXT NOT NULL,
    next_scheduled_at INTEGER,
    next_fire_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_run_at       INTEGER,
    last_status       TEXT,
    last_duration_ms  INTEGER,
    run_count         INTEGER NOT NULL,
    failure_count     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE runs (
    run_id       TEXT PRIMARY KEY,
    timer_id     TEXT NOT NULL,
    scheduled_at INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    phase        TEXT NOT NULL,
    fire_at      INTEGER NOT NULL,
    manual       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY,
    ts       INTEGER NOT NULL,
    timer_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    run_id   TEXT,
    attempt  INTEGER,
    detail   TEXT
);
CREATE INDEX events_timer_seq ON events(timer_id, seq);
";

/// Version 2: a timer's row is split in two, and `timers` becomes a view joining them, with the
/// same columns as version 1's table (so every read, and anyone's `SELECT * FROM timers` in the
/// `sqlite3` shell, is unchanged).
///
/// * `timer_defs`: the definition JSON, written when a timer is registered or its definition
///   changes.
/// * `timer_state`: what each run changes (a few dozen bytes). A burst updates one state row per
///   run; in version 1 each update rewrote a page of rows as wide as their definitions, four
///   times the pages per commit. Measured ~14% more runs/s in a burst of 50k.
const V2: &str = "
CREATE TABLE timer_defs (
    id         TEXT PRIMARY KEY,
    def        TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE timer_state (
    id                TEXT PRIMARY KEY,
    lifecycle         TEXT NOT NULL,
    next_scheduled_at INTEGER,
    next_fire_at      INTEGER,
    updated_at        INTEGER NOT NULL,
    last_run_at       INTEGER,
    last_status       TEXT,
    last_duration_ms  INTEGER,
    run_count         INTEGER NOT NULL,
    failure_count     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO timer_defs (id, def, created_at) SELECT id, def, created_at FROM timers;
INSERT INTO timer_state (id, lifecycle, next_scheduled_at, next_fire_at, updated_at, last_run_at,
                         last_status, last_duration_ms, run_count, failure_count)
    SELECT id, lifecycle, next_scheduled_at, next_fire_at, updated_at, last_run_at, last_status,
           last_duration_ms, run_count, failure_count FROM timers;
DROP TABLE timers;
CREATE VIEW timers AS
    SELECT d.id, d.def, s.lifecycle, s.next_scheduled_at, s.next_fire_at, d.created_at,
           s.updated_at, s.last_run_at, s.last_status, s.last_duration_ms, s.run_count,
           s.failure_count
    FROM timer_defs AS d JOIN timer_state AS s ON s.id = d.id;
";

/// The partial index of version 3, by name: queries name it (`INDEXED BY`) when it exists.
pub(crate) const DEAD_EVENTS_INDEX: &str = "events_dead_ts";

/// Version 3: `events_dead_ts`, the `ts` of `RUN_DEAD` events only.
///
/// "Dead runs of the last 24 hours" (the dashboard's runs page, polled every few seconds, and
/// `kron doctor`) would otherwise read the whole events table, which retention bounds per timer,
/// not in all: millions of rows with many timers. A partial index holds only the dead runs, so
/// the read costs what it returns, and only the insert of a `RUN_DEAD` event pays for it (the
/// other kinds, three per run, are not in it). A query uses it only when its `WHERE` says
/// `kind = 'RUN_DEAD'` literally (a bound parameter does not prove the index's condition).
/// Building it reads the events table once, at the first start of this version.
const V3: &str = "
CREATE INDEX events_dead_ts ON events(ts) WHERE kind = 'RUN_DEAD';
";

const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The columns every table of the current schema must have; checked at open by preparing a
/// `SELECT` of them.
const EXPECTED: &[(&str, &str)] = &[
    ("meta", "key, value"),
    (
        "timers",
        "id, def, lifecycle, next_scheduled_at, next_fire_at, created_at, updated_at, last_run_at, \
         last_status, last_duration_ms, run_count, failure_count",
    ),
    (
        "runs",
        "run_id, timer_id, scheduled_at, attempt, phase, fire_at, manual",
    ),
    ("events", "seq, ts, timer_id, kind, run_id, attempt, detail"),
];

/// Tables added after version 1, with the version that added them; checked only in a database
/// at that version or later (a reader may open an older one: it reads what [`EXPECTED`] lists).
const EXPECTED_SINCE: &[(u32, &str, &str)] = &[
    (2, "timer_defs", "id, def, created_at"),
    (
        2,
        "timer_state",
        "id, lifecycle, next_scheduled_at, next_fire_at, updated_at, last_run_at, last_status, \
         last_duration_ms, run_count, failure_count",
    ),
];

/// What an opened database file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbState {
    /// No schema at all: a new (or zero-length) file, to be initialized by the writer.
    Empty,
    /// A Kron database at this schema version (<= [`SCHEMA_VERSION`]).
    Version(u32),
}

/// Reads the header fields and schema size, and decides whether this build may use the file.
/// This is the first read of a connection, so a file that is not SQLite fails here.
pub(crate) fn inspect(conn: &Connection, path: &Path) -> Result<DbState, StoreError> {
    let read = |pragma: &str| -> Result<i64, StoreError> {
        conn.pragma_query_value(None, pragma, |row| row.get::<_, i64>(0))
            .map_err(sql(path, "reading the database header"))
    };
    let application_id = read("application_id")?;
    let user_version = read("user_version")?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(sql(path, "reading the schema"))?;
    if application_id != 0 && application_id != i64::from(APPLICATION_ID) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "application_id is {application_id:#x}, not Kron's: this SQLite file belongs to another program"
            ),
        });
    }
    let version = u32::try_from(user_version).map_err(|_| StoreError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("invalid schema version {user_version}"),
    })?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        if objects > 0 || application_id != 0 {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "an SQLite database without a Kron schema ({objects} tables/indexes, user_version 0); \
                     refusing to use it"
                ),
            });
        }
        return Ok(DbState::Empty);
    }
    Ok(DbState::Version(version))
}

/// Brings a database at schema version `from` up to [`SCHEMA_VERSION`], one transaction per step.
/// `now` is recorded as `meta.created_at` when the schema is first created.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    from: u32,
    now: i64,
) -> Result<(), StoreError> {
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        let to = index as u32 + 1;
        let tx = conn
            .transaction()
            .map_err(sql(path, "starting a schema migration"))?;
        tx.execute_batch(migration)
            .map_err(sql(path, "migrating the schema"))?;
        if to == 1 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(sql(path, "setting application_id"))?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('created_by', ?1), ('created_at', ?2)",
                rusqlite::params![env!("CARGO_PKG_VERSION"), now.to_string()],
            )
            .map_err(sql(path, "recording creation"))?;
        }
        tx.pragma_update(None, "user_version", to)
            .map_err(sql(path, "setting the schema version"))?;
        tx.commit()
            .map_err(sql(path, "committing a schema migration"))?;
    }
    Ok(())
}

/// Checks that every table and column of a database at schema `version` is there.
pub(crate) fn verify(conn: &Connection, path: &Path, version: u32) -> Result<(), StoreError> {
    let since = EXPECTED_SINCE
        .iter()
        .filter(|(added, _, _)| *added <= version)
        .map(|(_, table, columns)| (*table, *columns));
    for (table, columns) in EXPECTED.iter().copied().chain(since) {
        if let Err(e) = conn.prepare(&format!("SELECT {columns} FROM {table} LIMIT 0")) {
            return Err(match e.sqlite_error_code() {
                // "no such table" / "no such column" come back as a generic SQL error.
                Some(rusqlite::ffi::ErrorCode::Unknown) | None => StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("schema does not match version {version}: {e}"),
                },
                _ => sql_error(path, "checking the schema", e),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_migrates_to_current_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        assert_eq!(inspect(&conn, path).unwrap(), DbState::Empty);
        migrate(&mut conn, path, 0, 1234).unwrap();
        assert_eq!(
            inspect(&conn, path).unwrap(),
            DbState::Version(SCHEMA_VERSION)
        );
        verify(&conn, path, SCHEMA_VERSION).unwrap();
        // Idempotent: nothing left to run.
        migrate(&mut conn, path, SCHEMA_VERSION, 1234).unwrap();
        let created_at: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'created_at'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(created_at, "1234");
    }

    #[test]
    fn version_1_timers_move_to_their_two_tables_and_read_the_same() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate_to(&mut conn, 1);
        conn.execute_batch(
            "INSERT INTO timers VALUES ('a', '{\"x\":1}', 'active', 10, 11, 1, 2, NULL, NULL, \
             NULL, 0, 0), ('b', '{\"x\":2}', 'completed', NULL, NULL, 3, 4, 5, '\"OK\"', 6, 7, 8);",
        )
        .unwrap();
        // A reader may open a version 1 database: it checks version 1's tables only.
        verify(&conn, path, 1).unwrap();
        let read = |conn: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let mut stmt = conn
                .prepare(&format!("SELECT {} FROM timers ORDER BY id", EXPECTED[1].1))
                .unwrap();
            let columns = stmt.column_count();
            stmt.query_map([], |row| {
                (0..columns).map(|i| row.get(i)).collect::<Result<_, _>>()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let before = read(&conn);
        assert_eq!(before.len(), 2);
        migrate(&mut conn, path, 1, 0).unwrap();
        assert_eq!(
            inspect(&conn, path).unwrap(),
            DbState::Version(SCHEMA_VERSION)
        );
        verify(&conn, path, SCHEMA_VERSION).unwrap();
        assert_eq!(read(&conn), before, "the view reads what the table held");
        let states: i64 = conn
            .query_row("SELECT count(*) FROM timer_state", [], |r| r.get(0))
            .unwrap();
        let def: String = conn
            .query_row("SELECT def FROM timer_defs WHERE id = 'b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!((states, def.as_str()), (2, "{\"x\":2}"));
    }

    #[test]
    fn version_2_dead_runs_are_indexed_by_the_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new(":memory:");
        migrate_to(&mut conn, 2);
        conn.execute_batch(
            "INSERT INTO events (seq, ts, timer_id, kind) VALUES (1, 10, 'a', 'RUN_DUE'), \
             (2, 20, 'a', 'RUN_DEAD'), (3, 30, 'b', 'RUN_DEAD'), (4, 40, 'b', 'RUN_SUCCEEDED');",
        )
        .unwrap();
        migrate(&mut conn, path, 2, 0).unwrap();
        assert_eq!(inspect(&conn, path).unwrap(), DbState::Version(3));
        let indexed: Vec<i64> = conn
            .prepare(&format!(
                "SELECT seq FROM events INDEXED BY {DEAD_EVENTS_INDEX} \
                 WHERE kind = 'RUN_DEAD' AND ts >= 0 ORDER BY ts"
            ))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexed, [2, 3]);
    }

    /// Runs the migrations up to `version` only.
    fn migrate_to(conn: &mut Connection, version: u32) {
        for (to, migration) in (1..=version).zip(MIGRATIONS) {
            conn.execute_batch(migration).unwrap();
            conn.pragma_update(None, "user_version", to).unwrap();
        }
    }

    #[test]
    fn foreign_and_newer_databases_are_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let path = Path::new("x.db");
        conn.execute_batch("CREATE TABLE other (x)").unwrap();
        assert!(matches!(
            inspect(&conn, path),
            Err(StoreError::Corrupt { .. })
        ));

        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        match inspect(&conn, path) {
            Err(StoreError::SchemaTooNew {
                found, supported, ..
            }) => {
                assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }

        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "application_id", 7).unwrap();
        assert!(matches!(
            inspect(&conn, path),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn missing_column_is_reported() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE meta (key, value); CREATE TABLE timers (id)")
            .unwrap();
        match verify(&conn, Path::new("x.db"), 1) {
            Err(StoreError::Corrupt { detail, .. }) => {
                assert!(detail.contains("no such column"), "{detail}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
