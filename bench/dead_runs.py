"""The dashboard's dead runs of the last 24 hours, read from a large history (docs/performance.md).

Makes a data directory through `kron.start` (so the schema is the real one), stops the runtime,
fills its events table with N synthetic events (1 in --dead-every a `RUN_DEAD`, the rest the
other kinds a run writes, over --days days, across --timers timers), then serves it with
`kron ui` and times `GET /ui/api/activity`: what the runs page asks at every poll, the newest 100
dead runs of the last 24 hours and their count, read through the Rust reader. It measures twice:
with the partial index of `RUN_DEAD` times (schema 3), then after dropping it, which is how a
reader finds a schema 2 file (the same query, reading the whole table).

    python bench/dead_runs.py --events 1000000
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import kron
from server import find_kron

DAY_MS = 86_400_000
EDGE_MS = 15 * 60_000
OTHER_KINDS = ("RUN_DUE", "RUN_STARTED", "RUN_SUCCEEDED", "RUN_FAILED", "RUN_RETRY_SCHEDULED")


def make_directory(data_dir: Path) -> None:
    kron.schedule("bench-seed", lambda: None, every="1h")
    kron.start(data_dir=str(data_dir))
    kron.shutdown()


def fill(db: Path, events: int, timers: int, dead_every: int, days: int) -> int:
    """Appends `events` events, oldest first, ending now; returns how many are dead runs of the
    last 24 hours."""
    now = int(time.time() * 1000)
    start = now - days * DAY_MS
    step = (now - start) / events
    conn = sqlite3.connect(db)
    base = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    recent_dead = 0

    def rows():
        nonlocal recent_dead
        for i in range(events):
            ts = int(start + i * step)
            # No dead run in the quarter hour after the window's edge: the count must not depend
            # on when (minutes after the fill) it is read.
            near_edge = now - DAY_MS <= ts < now - DAY_MS + EDGE_MS
            dead = i % dead_every == dead_every - 1 and not near_edge
            if dead and ts >= now - DAY_MS:
                recent_dead += 1
            kind = "RUN_DEAD" if dead else OTHER_KINDS[i % len(OTHER_KINDS)]
            detail = '{"error":"Boom: synthetic"}' if dead else None
            yield (base + 1 + i, ts, f"t{i % timers:06d}", kind, f"r{i:09d}", 1, detail)

    with conn:
        conn.executemany(
            "INSERT INTO events (seq, ts, timer_id, kind, run_id, attempt, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    conn.close()
    return recent_dead


def time_activity(data_dir: Path, samples: int) -> dict[str, object]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [find_kron(), "--data-dir", str(data_dir), "ui", "--listen", "127.0.0.1:0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            url = None
            deadline = time.monotonic() + 30
            while url is None and time.monotonic() < deadline:
                log.seek(0)
                found = re.search(rb"(http://127\.0\.0\.1:\d+)", log.read())
                url = found.group(1).decode() if found else None
                time.sleep(0.05)
            if url is None:
                raise SystemExit("kron ui did not print its address within 30 s")
            times = []
            body: dict[str, object] = {}
            for i in range(samples + 1):
                began = time.perf_counter()
                with urllib.request.urlopen(f"{url}/ui/api/activity", timeout=120) as answer:
                    body = json.loads(answer.read())
                if i > 0:  # the first request warms the page cache
                    times.append((time.perf_counter() - began) * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
        "dead_total": body.get("dead_total"),
        "dead_listed": len(body.get("dead", [])),  # type: ignore[arg-type]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--dead-every", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "kron"
        make_directory(data_dir)
        db = data_dir / "kron.db"
        expected = fill(db, args.events, args.timers, args.dead_every, args.days)
        print(f"{args.events:,} events, {expected:,} dead runs in the last 24 h", file=sys.stderr)
        indexed = time_activity(data_dir, args.samples)
        with sqlite3.connect(db) as conn:
            conn.execute("DROP INDEX events_dead_ts")
        scanned = time_activity(data_dir, args.samples)
        for label, result in (("index", indexed), ("scan", scanned)):
            if result["dead_total"] != expected:
                raise SystemExit(f"{label}: counted {result['dead_total']}, expected {expected}")
        print(
            json.dumps(
                {
                    "events": args.events,
                    "db_mb": round(db.stat().st_size / 1e6, 1),
                    "dead_last_24h": expected,
                    "with_index": indexed,
                    "without_index": scanned,
                }
            )
        )


if __name__ == "__main__":
    main()
