#!/usr/bin/env python3
"""Soak: many registered timers, a steady run rate, for a long time; report memory and disk.

By default 100,000 timers: 60,000 fire once a minute, one at each second of the minute spread
evenly (about 1,000 runs/s from the first minute on), 40,000 are daily timers that only sit in
the engine. It runs for 10 minutes and prints, every ``--every`` seconds: elapsed time, runs/s
over the interval, how late runs started (p50/p99 of start minus scheduled time), RSS, the size
of ``kron.db`` plus its WAL (the database size over time), the number of events stored, and any
storage error. Without ``--history-limit`` it runs with Kron's default history limit (1,000 runs
per timer, which this workload does not reach in 10 minutes: no event is deleted, but the
retention passes still run). ``--history-limit N`` passes ``history_limit=N`` to ``kron.start``
(with a small N the event count and file size flatten, and the passes delete while runs fire);
``--history-limit none`` passes ``None`` (keep everything).

    python tools/soak.py                          # 100k timers, 10 minutes, default retention
    python tools/soak.py --minutes 1 --timers 20000 --rate 200   # a quick look
    python tools/soak.py --history-limit 2 --json soak.json      # retention deleting under load

This is a script, not a test: it takes as long as it is told to and uses a core or two.
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

#: ``--history-limit`` not given: Kron's own default (argparse converts string defaults, not this).
KRON_DEFAULT: Any = object()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def db_mb(data_dir: Path) -> float:
    total = 0
    for name in ("kron.db", "kron.db-wal"):
        try:
            total += (data_dir / name).stat().st_size
        except OSError:
            pass
    return total / 1e6


_COUNT = """
import sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=5)
print(conn.execute("SELECT count(*) FROM events").fetchone()[0])
"""


def event_count(data_dir: Path) -> Optional[int]:
    """Events stored (a full count: with retention the seqs are not contiguous). Read in a child
    process: Python's own sqlite3 module is a second copy of SQLite, and two copies must never
    open the same database in one process (their POSIX locks and WAL index clash; see
    docs/reliability.md)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _COUNT, str(data_dir / "kron.db")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return int(out.strip())
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs = 0
        self.late_ms: list[float] = []

    def record(self, scheduled: float) -> None:
        late = (time.time() - scheduled) * 1000
        with self.lock:
            self.runs += 1
            if len(self.late_ms) < 200_000:
                self.late_ms.append(late)

    def take(self) -> tuple[int, list[float]]:
        with self.lock:
            runs, late = self.runs, self.late_ms
            self.runs, self.late_ms = 0, []
        return runs, late


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timers", type=int, default=100_000, help="timers registered (default 100,000)")
    p.add_argument("--rate", type=int, default=1000, help="target runs per second (default 1,000)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--every", type=float, default=30.0, help="seconds between report lines (default 30)")
    p.add_argument(
        "--history-limit",
        type=lambda text: None if text.lower() == "none" else int(text),
        default=KRON_DEFAULT,
        help="pass history_limit=N (or none) to kron.start; default: Kron's default",
    )
    p.add_argument("--workers", type=int, default=8, help="max_workers (default 8)")
    p.add_argument("--durability", choices=("normal", "full"), default="normal")
    p.add_argument("--data-dir", help="data directory (default a new temporary one, removed at the end)")
    p.add_argument("--json", help="also write the samples and summary as JSON to this file")
    args = p.parse_args(argv)

    import kron

    own_dir = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="kron-soak-"))
    firing = min(args.timers, args.rate * 60)
    stats = Stats()

    def job(ctx: dict[str, Any]) -> None:
        stats.record(ctx["scheduled_at"].timestamp())

    t0 = time.monotonic()
    for i in range(args.timers):
        if i < firing:
            # One per second of the minute, spread evenly: `firing / 60` runs each second.
            kron.schedule(f"soak-{i:06d}", job, cron=f"{i % 60} * * * * *")
        else:
            kron.schedule(f"idle-{i:06d}", job, cron=f"{i % 60} {i % 60} 3 * * *")
    registered_s = time.monotonic() - t0

    start_kwargs: dict[str, Any] = {"max_workers": args.workers, "durability": args.durability}
    accepts_limit = "history_limit" in inspect.signature(kron.start).parameters
    if args.history_limit is KRON_DEFAULT:
        default = inspect.signature(kron.start).parameters.get("history_limit")
        limit_shown = f"default ({default.default})" if default else "none"
    else:
        limit_shown = str(args.history_limit)
        if accepts_limit:
            start_kwargs["history_limit"] = args.history_limit
        else:
            print("NOTE: this Kron's start() has no history_limit option; running without it", flush=True)
    t1 = time.monotonic()
    kron.start(data_dir, **start_kwargs)
    start_s = time.monotonic() - t1
    print(
        f"soak: {args.timers} timers ({firing} firing once a minute, about {firing / 60:.0f} runs/s), "
        f"registered in {registered_s:.1f} s, start() {start_s:.1f} s, data dir {data_dir}, "
        f"history_limit {limit_shown}",
        flush=True,
    )
    header = (
        f"{'elapsed':>8} {'runs/s':>8} {'late p50':>9} {'late p99':>9} {'late max':>9} {'RSS MB':>8} "
        f"{'DB MB':>8} "
        f"{'events':>10}  storage"
    )
    print(header, flush=True)
    samples = []
    began = time.monotonic()
    end = began + args.minutes * 60
    last = began
    stats.take()
    try:
        while True:
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(min(args.every, end - now))
            now = time.monotonic()
            runs, late = stats.take()
            anyone = kron.status(f"soak-{0:06d}") if firing else None
            sample = {
                "elapsed_s": round(now - began),
                "runs_per_s": round(runs / (now - last), 1),
                "late_p50_ms": round(pct(late, 50), 1),
                "late_p99_ms": round(pct(late, 99), 1),
                "late_max_ms": round(max(late), 1) if late else float("nan"),
                "rss_mb": round(rss_mb(), 1),
                "db_mb": round(db_mb(data_dir), 1),
                "events": event_count(data_dir),
                "storage_error": anyone["storage_error"] if anyone else None,
            }
            last = now
            samples.append(sample)
            print(
                f"{sample['elapsed_s']:>7}s {sample['runs_per_s']:>8} {sample['late_p50_ms']:>9} "
                f"{sample['late_p99_ms']:>9} {sample['late_max_ms']:>9} {sample['rss_mb']:>8} "
                f"{sample['db_mb']:>8} "
                f"{sample['events'] if sample['events'] is not None else '?':>10}  "
                f"{sample['storage_error'] or 'ok'}",
                flush=True,
            )
    finally:
        t2 = time.monotonic()
        kron.shutdown(timeout=10)
        shutdown_s = time.monotonic() - t2
    summary = {
        "timers": args.timers,
        "firing": firing,
        "minutes": args.minutes,
        "history_limit": limit_shown,
        "history_limit_supported": accepts_limit,
        "register_s": round(registered_s, 1),
        "start_s": round(start_s, 1),
        "shutdown_s": round(shutdown_s, 1),
        "final_db_mb": round(db_mb(data_dir), 1),
        "samples": samples,
    }
    print(f"shutdown {shutdown_s:.1f} s; final database {summary['final_db_mb']} MB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if own_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
