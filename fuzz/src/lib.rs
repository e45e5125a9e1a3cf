//! The checks behind each fuzz target. Every function takes arbitrary bytes and panics only when
//! Kron misbehaves: a parser panics, accepts something it cannot give back, or a decoder turns a
//! stored row into a value that does not round-trip. Errors are fine; panics are bugs.
//!
//! `cargo fuzz run TARGET` drives them with libFuzzer; `cargo test --no-default-features` runs
//! them on the seeds in `seeds/` plus random mutations (`tests/smoke.rs`), on stable Rust.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use kron_core::duration::{format_duration, parse_duration, MAX_DURATION_MS};
use kron_core::event::{EventDetail, EventKind};
use kron_core::run::RunRecord;
use kron_core::schedule::{explain_cron, Schedule, ScheduleSpec};
use kron_core::time::{format_utc, parse_datetime, validate_timezone, MAX_EPOCH_MS, MIN_EPOCH_MS};
use kron_core::timer::{LastStatus, TimerDef};
use kron_store::{EventFilter, Reader, Store};
use rusqlite::types::Value;

/// Zones with and without DST, half-hour and 45-minute offsets, a southern-hemisphere rule.
pub const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Asia/Kathmandu",
];

fn zone(byte: u8) -> &'static str {
    ZONES[usize::from(byte) % ZONES.len()]
}

fn i64_at(data: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    let n = data.len().min(8);
    buf[..n].copy_from_slice(&data[..n]);
    i64::from_le_bytes(buf)
}

/// A start instant in Kron's range, biased toward the present.
fn instant(data: &[u8]) -> i64 {
    let raw = i64_at(data);
    if raw & 1 == 0 {
        // 2000..2100
        946_684_800_000 + (raw >> 1).rem_euclid(3_155_760_000_000)
    } else {
        MIN_EPOCH_MS + (raw >> 1).rem_euclid(MAX_EPOCH_MS - MIN_EPOCH_MS)
    }
}

/// Cron parser and evaluator: `[zone][8 bytes start][expression]`.
///
/// A compiled expression's fire times are whole seconds, strictly increasing and after the
/// instant asked; `count_between` agrees with iterating `next_after`.
pub fn cron(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let tz = zone(data[0]);
    let start = instant(&data[1..9]);
    let Ok(expr) = std::str::from_utf8(&data[9..]) else {
        return;
    };
    let _ = explain_cron(expr);
    let spec = ScheduleSpec::Cron {
        expr: expr.into(),
        timezone: tz.into(),
    };
    let schedule = match Schedule::from_spec(spec) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let _ = schedule.describe();
    let _ = schedule.first(start);
    let mut t = start;
    let mut fires = Vec::new();
    for _ in 0..16 {
        match schedule.next_after(t) {
            Some(next) => {
                assert!(next > t, "{expr:?} in {tz}: {next} not after {t}");
                assert_eq!(
                    next.rem_euclid(1000),
                    0,
                    "{expr:?}: fire {next} not a whole second"
                );
                assert!(next <= MAX_EPOCH_MS, "{expr:?}: fire {next} out of range");
                fires.push(next);
                t = next;
            }
            None => break,
        }
    }
    if let Some(&last) = fires.last() {
        let counted = schedule.count_between(start, last, 16);
        assert_eq!(
            counted,
            (fires.len() as u64, Some(last)),
            "{expr:?} in {tz} from {start}"
        );
    }
}

/// Duration parser: whatever it accepts is positive, in range, and its canonical text parses
/// back to the same value. Also `format_duration` of any value in range round-trips.
pub fn duration(data: &[u8]) {
    if data.len() >= 8 {
        let ms = (i64_at(data) as u64) % MAX_DURATION_MS + 1;
        assert_eq!(parse_duration("every", &format_duration(ms)), Ok(ms));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = parse_duration("every", text) {
        assert!((1..=MAX_DURATION_MS).contains(&ms), "{text:?} -> {ms}");
        let canonical = format_duration(ms);
        assert_eq!(
            parse_duration("every", &canonical),
            Ok(ms),
            "{text:?} -> {ms} -> {canonical:?}"
        );
    }
}

/// Datetime parser: `[zone][text]`. An accepted value is in range and its UTC text reads back
/// to the same instant; `validate_timezone` and `format_utc` never panic.
pub fn datetime(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let tz = zone(data[0]);
    let _ = format_utc(i64_at(&data[1..]));
    let Ok(text) = std::str::from_utf8(&data[1..]) else {
        return;
    };
    let _ = validate_timezone(text);
    if let Ok(ms) = parse_datetime("at", text, tz) {
        assert!(
            (MIN_EPOCH_MS..=MAX_EPOCH_MS).contains(&ms),
            "{text:?} in {tz} -> {ms}"
        );
        let utc = format_utc(ms);
        assert_eq!(
            parse_datetime("at", &utc, "UTC"),
            Ok(ms),
            "{text:?} in {tz} -> {utc}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Stored data

struct Env {
    _dir: PathBuf,
    writer: rusqlite::Connection,
    reader: Reader,
}

fn scratch_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = scratch_root().join(format!("kron-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn env() -> &'static Mutex<Env> {
    static ENV: OnceLock<Mutex<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = scratch_dir("events");
        // A real Kron database: created, migrated and closed by the store itself.
        let store = Store::open(&dir, kron_store::Durability::Normal).expect("create store");
        store.close().expect("close store");
        let writer = rusqlite::Connection::open(dir.join(kron_store::DB_FILE)).expect("writer");
        let reader = Reader::open(&dir).expect("reader");
        Mutex::new(Env {
            _dir: dir,
            writer,
            reader,
        })
    })
}

/// Splits input into fields at 0xFF bytes.
fn fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0xFF).collect()
}

/// A column value: the first byte picks the SQL type, the rest is the value.
fn value(field: Option<&&[u8]>) -> Value {
    let Some(field) = field else {
        return Value::Null;
    };
    let Some((&tag, rest)) = field.split_first() else {
        return Value::Null;
    };
    match tag % 8 {
        0 => Value::Null,
        1 | 2 => Value::Integer(i64_at(rest)),
        3 => Value::Real(f64::from_le_bytes({
            let mut b = [0u8; 8];
            let n = rest.len().min(8);
            b[..n].copy_from_slice(&rest[..n]);
            b
        })),
        7 => Value::Blob(rest.to_vec()),
        _ => Value::Text(String::from_utf8_lossy(rest).into_owned()),
    }
}

/// Serde decoding of the stored JSON types: what decodes re-encodes and decodes to itself.
fn json_round_trips(data: &[u8]) {
    if let Ok(d) = serde_json::from_slice::<EventDetail>(data) {
        let again: EventDetail =
            serde_json::from_str(&serde_json::to_string(&d).expect("encode")).expect("decode");
        assert_eq!(again, d);
    }
    if let Ok(d) = serde_json::from_slice::<TimerDef>(data) {
        let again: TimerDef =
            serde_json::from_str(&serde_json::to_string(&d).expect("encode")).expect("decode");
        assert_eq!(again, d);
    }
    if let Ok(s) = serde_json::from_slice::<LastStatus>(data) {
        let again: LastStatus =
            serde_json::from_str(&serde_json::to_string(&s).expect("encode")).expect("decode");
        assert_eq!(again, s);
    }
    if let Ok(r) = serde_json::from_slice::<RunRecord>(data) {
        let again: RunRecord =
            serde_json::from_str(&serde_json::to_string(&r).expect("encode")).expect("decode");
        assert_eq!(again, r);
    }
}

/// Decoding stored rows: arbitrary values in an event, a timer and a run row of a real Kron
/// database, read back through the `Reader` (the code status, history, start-up and the CLI use).
/// Fields are separated by 0xFF: event ts, timer_id, kind, run_id, attempt, detail; timer def,
/// lifecycle, last_status, counters; run phase, attempt, manual. Decoding may fail; it must not
/// panic, and what it returns must match what is stored.
pub fn stored_events(data: &[u8]) {
    json_round_trips(data);
    let f = fields(data);
    let env = env().lock().unwrap_or_else(|p| p.into_inner());
    let w = &env.writer;
    w.execute_batch(
        "DELETE FROM events; DELETE FROM timer_defs; DELETE FROM timer_state; DELETE FROM runs;",
    )
        .expect("clear");
    let timer_id = "t";
    let kind = value(f.get(2));
    // The schema's NOT NULL constraints refuse some rows; those cannot be stored, so not decoded.
    let inserted = w.execute(
        "INSERT INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![value(f.first()), timer_id, kind, value(f.get(3)), value(f.get(4)), value(f.get(5))],
    );
    let _ = w.execute(
        "INSERT INTO timer_defs (id, def, created_at) VALUES (?1, ?2, 0)",
        rusqlite::params![timer_id, value(f.get(6))],
    );
    let _ = w.execute(
        "INSERT INTO timer_state (id, lifecycle, next_scheduled_at, next_fire_at, updated_at, \
         last_run_at, last_status, last_duration_ms, run_count, failure_count) \
         VALUES (?1, ?2, ?3, ?4, 0, NULL, ?5, ?6, ?7, ?8)",
        rusqlite::params![
            timer_id,
            value(f.get(7)),
            value(f.get(8)),
            value(f.get(9)),
            value(f.get(10)),
            value(f.get(11)),
            value(f.get(12)),
            value(f.get(13)),
        ],
    );
    let _ = w.execute(
        "INSERT INTO runs (run_id, timer_id, scheduled_at, attempt, phase, fire_at, manual) \
         VALUES ('run_1', ?1, 0, ?2, ?3, 0, ?4)",
        rusqlite::params![
            timer_id,
            value(f.get(14)),
            value(f.get(15)),
            value(f.get(16))
        ],
    );
    let r = &env.reader;
    if let Ok(events) = r.history(timer_id, 10) {
        assert_eq!(events.len(), usize::from(inserted.is_ok()));
        if events.is_empty() {
            return;
        }
        let ev = &events[0].event;
        if let Value::Text(text) = &kind {
            assert_eq!(ev.kind.as_str(), text.as_str());
        }
        assert!(EventKind::parse(ev.kind.as_str()).is_some());
        let again: EventDetail =
            serde_json::from_str(&serde_json::to_string(&ev.detail).expect("encode detail"))
                .expect("decode detail");
        assert_eq!(again, ev.detail);
    }
    let _ = r.events(&EventFilter::default());
    if let Ok(timers) = r.timers() {
        for t in &timers {
            assert_eq!(&*t.def.id, timer_id);
        }
    }
    let _ = r.timer(timer_id);
    let _ = r.runs();
    let _ = r.event_count();
}

/// A whole database file: arbitrary bytes as `kron.db`. Opening it read-only and as the writer
/// must return a value or an error, never panic; a file that opens must read.
pub fn db_file(data: &[u8]) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch_dir("dbfile"));
    for name in ["kron.db", "kron.db-wal", "kron.db-shm", "kron.db-journal"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    std::fs::write(dir.join(kron_store::DB_FILE), data).expect("write db");
    if let Ok(reader) = Reader::open(dir) {
        let _ = reader.timers();
        let _ = reader.runs();
        let _ = reader.events(&EventFilter::default());
        let _ = reader.schema_version();
        let _ = reader.integrity_check();
    }
    if let Ok(store) = Store::open(dir, kron_store::Durability::Normal) {
        let _ = store.load();
        let _ = store.close();
    }
}
