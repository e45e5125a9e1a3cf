// TEMPORARY experiment, deleted before hand-off.
use rusqlite::{params, Connection};
use std::time::Instant;

fn run(
    _label: &str,
    autoinc: bool,
    av: &str,
    ckpt: i64,
    batch: usize,
    total: usize,
    timers: usize,
    sync: &str,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Connection::open(dir.path().join("x.db")).unwrap();
    c.pragma_update(None, "auto_vacuum", av).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", sync).unwrap();
    c.pragma_update(None, "cache_size", -16384).unwrap();
    c.pragma_update(None, "wal_autocheckpoint", ckpt).unwrap();
    let pk = if autoinc {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    } else {
        "INTEGER PRIMARY KEY"
    };
    c.execute_batch(&format!("CREATE TABLE events (seq {pk}, ts INTEGER NOT NULL, timer_id TEXT NOT NULL, kind TEXT NOT NULL, run_id TEXT, attempt INTEGER, detail TEXT);
        CREATE INDEX events_timer_seq ON events(timer_id, seq); CREATE INDEX events_ts ON events(ts);")).unwrap();
    let tids: Vec<String> = (0..timers).map(|i| format!("timer-{i:04}")).collect();
    let mut seq = 0i64;
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let tx = c.transaction().unwrap();
        {
            let sql = if autoinc {
                "INSERT INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) VALUES (NULL, ?2, ?3, ?4, ?5, ?6, ?7)"
            } else {
                "INSERT INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            };
            let mut st = tx.prepare_cached(sql).unwrap();
            for _ in 0..batch {
                seq += 1;
                n += 1;
                let run = n / 3;
                let rid = format!("run_{run:026}");
                if autoinc {
                    st.execute(params![
                        rusqlite::types::Null,
                        1_700_000_000_000i64 + n as i64,
                        tids[run % timers],
                        "RUN_STARTED",
                        rid,
                        1,
                        r#"{"scheduled_at":1700000000000,"next_run_at":1700000060000}"#
                    ])
                    .unwrap();
                } else {
                    st.execute(params![
                        seq,
                        1_700_000_000_000i64 + n as i64,
                        tids[run % timers],
                        "RUN_STARTED",
                        rid,
                        1,
                        r#"{"scheduled_at":1700000000000,"next_run_at":1700000060000}"#
                    ])
                    .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    let el = started.elapsed().as_secs_f64();
    let size = std::fs::metadata(dir.path().join("x.db")).unwrap().len()
        + std::fs::metadata(dir.path().join("x.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let _ = size;
    total as f64 / el
}

#[test]
#[ignore]
fn scratch() {
    type V = (&'static str, bool, &'static str, i64, usize, usize);
    let variants: Vec<V> = vec![
        (
            "150k x1 explicit none",
            false,
            "NONE",
            1000,
            150_000,
            150_000,
        ),
        (
            "150k x1 explicit incr",
            false,
            "INCREMENTAL",
            1000,
            150_000,
            150_000,
        ),
        (
            "150k x1 autoinc incr",
            true,
            "INCREMENTAL",
            1000,
            150_000,
            150_000,
        ),
        (
            "5k explicit incr ck1000",
            false,
            "INCREMENTAL",
            1000,
            5_000,
            200_000,
        ),
        (
            "5k explicit incr ck4000",
            false,
            "INCREMENTAL",
            4000,
            5_000,
            200_000,
        ),
        (
            "5k explicit incr ck10000",
            false,
            "INCREMENTAL",
            10000,
            5_000,
            200_000,
        ),
        (
            "5k autoinc incr ck1000",
            true,
            "INCREMENTAL",
            1000,
            5_000,
            200_000,
        ),
        (
            "5k explicit none ck1000",
            false,
            "NONE",
            1000,
            5_000,
            200_000,
        ),
        (
            "100 explicit incr ck1000",
            false,
            "INCREMENTAL",
            1000,
            100,
            100_000,
        ),
        (
            "100 autoinc incr ck1000",
            true,
            "INCREMENTAL",
            1000,
            100,
            100_000,
        ),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..5 {
        for (i, v) in variants.iter().enumerate() {
            results[i].push(run(v.0, v.1, v.2, v.3, v.4, v.5, 1000, "NORMAL"));
        }
    }
    for (i, v) in variants.iter().enumerate() {
        let r = &mut results[i];
        r.sort_by(f64::total_cmp);
        println!(
            "{:30} median {:>8.0} ev/s  (min {:.0} max {:.0})",
            v.0, r[2], r[0], r[4]
        );
    }
}
