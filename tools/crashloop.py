#!/usr/bin/env python3
"""Crash-consistency harness: kill -9 a Kron process over and over and prove nothing is lost.

A worker subprocess runs a mixed workload on one data directory: a few hundred timers (``every``
100 ms to 2 s, 6-field cron, ``after`` and ``at`` one-shots), all three overlap and catch-up
policies, 1 to 4 attempts, some callbacks failing (always, at random, on the first attempt), some
slow, some jittered, one that triggers another timer by hand. Every callback appends to an
external ledger file (``os.write`` + ``os.fsync``) when it begins and again just before it returns.

The harness SIGKILLs the worker at random moments (some during start-up and recovery), sometimes
stops it gracefully instead (SIGTERM, then ``kron.shutdown(0.5)``, which abandons slow callbacks),
restarts it on the same directory (re-registering the same timers) and after every cycle checks
the directory from the outside, with Python's own ``sqlite3`` reading the database read-only:

* the database opens, ``PRAGMA integrity_check`` says ok, the schema, ``user_version`` and
  ``application_id`` are unchanged, and ``kron doctor`` (the CLI) reports no failure;
* history is append-only: event seqs run 1..N without a gap, and every event seen at an earlier
  check is still there, unchanged (a sample each cycle, all of them at the end);
* every callback in the ledger has its ``RUN_STARTED`` (same run, same attempt) in history, and no
  attempt was invoked twice;
* every ``RUN_STARTED`` has an outcome, or is still running in the ``runs`` table and gets
  ``RUN_INTERRUPTED`` in the next process's first commit, then ``RUN_RETRYING`` at once while
  attempts remain, else ``RUN_DEAD``; or, at a graceful stop only, ``RUN_NOT_STARTED`` (its
  callback never began): the run waits again and its next ``RUN_STARTED`` has the same attempt
  number; attempts never exceed ``max_attempts``;
* a recorded outcome agrees with the ledger: ``RUN_SUCCEEDED`` only for a callback that returned,
  ``RUN_FAILED`` only for one that raised;
* no due occurrence vanished: per timer, the occurrences covered by ``RUN_DUE`` (one, or a
  coalesced ``count``/``until`` range) and ``RUN_MISSED`` ranges form an unbroken chain of its
  schedule, from its first occurrence to the ``next_scheduled_at`` now stored for it, each exactly
  once; every due run is started, skipped for overlap, or still waiting in the ``runs`` table;
* overlap holds: a ``skip`` timer never starts an occurrence while another run of it is in flight,
  a ``delay`` timer never has two scheduled runs in flight;
* state and history agree: every row of ``runs`` matches the run's last event; every timer row
  keeps its definition, its ``next_scheduled_at`` continues the chain, ``next_fire_at`` is within
  its jitter, ``run_count`` / ``failure_count`` equal the ``RUN_STARTED`` / failed-or-interrupted
  events, and one-shots are ``completed`` / ``dead`` exactly when their run ended so;
* a due run executed twice (two completed callbacks in the ledger) only when the kill fell between
  the callback's end and its outcome's commit: the earlier attempt ended in ``RUN_INTERRUPTED``
  with its ledger line written. These are counted (the documented at-least-once window).

Then it prints a summary table (cycles, kills, runs, interrupted, duplicates and why, violations)
and exits 1 if there was any violation.

Usage::

    python tools/crashloop.py --cycles 200          # the long run (about 15 minutes)
    python tools/crashloop.py --cycles 20           # CI size
    python tools/crashloop.py --verify-only DIR     # re-check a kept work directory

The worker runs ``import kron`` with the same interpreter, so run it from an environment where
the package is installed.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SCHEMA_TABLES = ("meta", "timer_defs", "timer_state", "runs", "events")
#: Views: ``timers`` joins a timer's definition and state, with schema version 1's columns.
SCHEMA_VIEWS = ("timers",)
APPLICATION_ID = 0x4B524F4E  # "KRON"
CRON_PERIODS = (1, 2, 3, 5, 10, 15, 20, 30, 60)
EVERY_PERIODS_MS = (100, 200, 250, 500, 500, 500, 750, 750, 1000, 1000, 1000, 1000, 1500, 1500, 2000, 2000)
CRON_ZONES = ("UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")


# =================================================================================================
# The workload (shared by the harness and the worker: both build it from the same config)
# =================================================================================================


def build_workload(n: int, seed: int, base_ms: int, horizon_s: float) -> list[dict[str, Any]]:
    """``n`` timer definitions, deterministic for a seed. ``base_ms``: when the harness started
    (``at`` one-shots are placed around it); ``horizon_s``: roughly how long the run lasts."""
    rng = random.Random(seed)
    timers: list[dict[str, Any]] = []
    for i in range(n):
        r = rng.random()
        t: dict[str, Any] = {
            "max_attempts": rng.choice((1, 2, 3, 3, 4)),
            "overlap": rng.choice(("delay", "skip", "allow")),
            "catchup": rng.choice(("once", "skip", "all")),
            "jitter_ms": 0,
            "timezone": "UTC",
        }
        if r < 0.55:
            ms = rng.choice(EVERY_PERIODS_MS)
            t.update(kind="every", name=f"every-{i:04d}", ms=ms, period_ms=ms, offset_ms=0)
            if rng.random() < 0.15:
                t["jitter_ms"] = rng.randrange(10, max(11, ms // 2))
        elif r < 0.75:
            p = rng.choice(CRON_PERIODS)
            off = rng.randrange(p) if p > 1 and rng.random() < 0.5 else 0
            if p == 1:
                expr = "* * * * * *"
            elif off == 0:
                expr = f"*/{p} * * * * *"
            else:
                expr = f"{off}-59/{p} * * * * *"
            zone = rng.choice(CRON_ZONES)
            t.update(
                kind="cron",
                name=f"cron-{i:04d}",
                cron=expr,
                timezone=zone,
                period_ms=p * 1000,
                offset_ms=off * 1000,
            )
        elif r < 0.9:
            ms = int(rng.uniform(0.2, max(1.0, horizon_s)) * 1000)
            t.update(kind="after", name=f"after-{i:04d}", ms=ms)
        else:
            at = base_ms + int(rng.uniform(-10.0, max(1.0, horizon_s)) * 1000)
            t.update(kind="at", name=f"at-{i:04d}", at_ms=at)
            if rng.random() < 0.5:  # an exact instant a fraction of a millisecond before at_ms
                t["at_us"] = at * 1000 - rng.randrange(1, 1000)
        one_shot = t["kind"] in ("after", "at")
        b = rng.random()
        if b < 0.62:
            t["behaviour"] = "ok"
        elif b < 0.74:
            t["behaviour"] = "flaky"  # fails 30% of attempts
        elif b < 0.79:
            t["behaviour"] = "always_fail"
        elif b < 0.90:
            t["behaviour"] = "fail_first"  # attempt 1 fails, the retry succeeds
        else:
            t["behaviour"] = "slow"
            period_s = 2.0 if one_shot else t["period_ms"] / 1000
            top = 1.5 if t["overlap"] != "allow" else min(1.5, 2 * period_s)
            t["sleep"] = [0.05, max(0.06, top)]
        timers.append(t)
    # One timer triggers another by hand now and then: manual runs go through crashes too.
    targets = [t["name"] for t in timers if t["kind"] in ("every", "cron")]
    if targets:
        timers.append(
            {
                "kind": "every",
                "name": "trigger-9999",
                "ms": 1000,
                "period_ms": 1000,
                "offset_ms": 0,
                "max_attempts": 2,
                "overlap": "delay",
                "catchup": "once",
                "jitter_ms": 0,
                "timezone": "UTC",
                "behaviour": "trigger",
                "target": rng.choice(targets),
            }
        )
    return timers


def schedule_kwargs(t: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "max_attempts": t["max_attempts"],
        "overlap": t["overlap"],
        "catchup": t["catchup"],
        "timezone": t["timezone"],
    }
    if t["jitter_ms"]:
        kw["jitter"] = f"{t['jitter_ms']}ms"
    kind = t["kind"]
    if kind == "every":
        kw["every"] = f"{t['ms']}ms"
    elif kind == "cron":
        kw["cron"] = t["cron"]
    elif kind == "after":
        kw["after"] = f"{t['ms']}ms"
    elif "at_us" in t:
        kw["at"] = us_to_iso(t["at_us"])
    else:
        kw["at"] = ms_to_iso(t["at_ms"])
    return kw


def ms_to_iso(ms: int) -> str:
    secs, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem:03d}Z"


def us_to_iso(us: int) -> str:
    secs, rem = divmod(us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem:06d}Z"


def expected_spec(t: dict[str, Any]) -> dict[str, Any]:
    """The ``schedule`` object Kron stores in the timer's definition."""
    kind = t["kind"]
    if kind == "every":
        return {"kind": "every", "ms": t["ms"]}
    if kind == "cron":
        return {"kind": "cron", "expr": t["cron"], "timezone": t["timezone"]}
    if kind == "after":
        return {"kind": "after", "ms": t["ms"]}
    if "at_us" in t:
        return {"kind": "at", "at_ms": t["at_ms"], "at_us": t["at_us"]}
    return {"kind": "at", "at_ms": t["at_ms"]}


# =================================================================================================
# The worker (a subprocess: ``crashloop.py --worker CONFIG``)
# =================================================================================================


def worker_main(config_path: str) -> None:
    import logging
    import threading

    import kron

    cfg = json.loads(Path(config_path).read_text())
    fd = os.open(cfg["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    pid = os.getpid()

    def ledger(rec: str) -> None:
        os.write(fd, rec.encode())
        os.fsync(fd)

    class Planned(Exception):
        pass

    class RuntimeLog(logging.Handler):
        """Callback failures are planned; everything else the runtime logs goes to stderr."""

        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "planned failure of" in msg:
                return
            sys.stderr.write(f"kron log {record.levelname}: {msg}\n")

    log = logging.getLogger("kron")
    log.addHandler(RuntimeLog())
    log.setLevel(logging.INFO)
    log.propagate = False

    def make(t: dict[str, Any]) -> Any:
        name = t["name"]
        behaviour = t["behaviour"]
        sleep = t.get("sleep")
        target = t.get("target")

        def job(ctx: dict[str, Any]) -> None:
            run_id, attempt = ctx["run_id"], ctx["attempt"]
            sched = round(ctx["scheduled_at"].timestamp() * 1000)
            head = f'{{"t":"{name}","r":"{run_id}","a":{attempt},"s":{sched},"p":{pid}'
            ledger(head + f',"w":{time.time():.4f},"e":"b"}}\n')
            if sleep:
                time.sleep(random.uniform(sleep[0], sleep[1]))
            if behaviour == "trigger" and random.random() < 0.5:
                with contextlib.suppress(kron.KronError):
                    kron.trigger(target)
            fail = (
                behaviour == "always_fail"
                or (behaviour == "flaky" and random.random() < 0.3)
                or (behaviour == "fail_first" and attempt == 1)
            )
            ledger(head + f',"w":{time.time():.4f},"e":"{"f" if fail else "o"}"}}\n')
            if fail:
                raise Planned(f"planned failure of {name} attempt {attempt}")

        job.__qualname__ = f"crashloop.{behaviour}"
        return job

    for t in cfg["timers"]:
        kron.schedule(t["name"], make(t), **schedule_kwargs(t))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The checker replays every committed event of every cycle and proves that none changed or
    # vanished, so the worker keeps the whole history (the default limit would trim the fastest
    # timers' old runs after a few dozen cycles). Retention is checked by the store's tests and
    # the soak, not here.
    kron.start(
        cfg["data_dir"],
        max_workers=cfg["max_workers"],
        durability=cfg["durability"],
        history_limit=None,
    )
    Path(cfg["ready"]).write_text(str(pid))
    while not stop.wait(0.05):
        pass
    kron.shutdown(timeout=cfg["shutdown_timeout"])
    Path(cfg["ready"]).write_text("clean")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# =================================================================================================
# The checker
# =================================================================================================


@dataclass
class Run:
    run_id: str
    timer: str
    scheduled_at: int
    manual: bool
    phase: str = "due"  # due, running, failed (awaiting RETRYING/DEAD), retry_wait, done
    attempt: int = 1
    final: Optional[str] = None  # succeeded, dead, skipped
    outcome: dict[int, str] = field(default_factory=dict)  # attempt -> SUCCEEDED/FAILED/INTERRUPTED
    started: set[int] = field(default_factory=set)


@dataclass
class TimerModel:
    spec: dict[str, Any]
    created: bool = False
    created_ts: int = 0
    expected_next: Optional[int] = None  # nominal time of the next occurrence, when known
    alt_next: Optional[int] = None  # an equally valid alternative (delay + catchup "all")
    delay_run: Optional[str] = None  # a delay timer's scheduled run in flight
    one_shot_done: bool = False
    due_count: int = 0
    started: int = 0
    ended: int = 0  # attempts with an outcome (succeeded, failed, interrupted)
    failures: int = 0
    lifecycle: str = "active"


@dataclass
class Stats:
    cycles: int = 0
    kills: int = 0
    kills_before_ready: int = 0
    graceful: int = 0
    events: int = 0
    runs_due: int = 0
    runs_manual: int = 0
    attempts_started: int = 0
    not_started: int = 0  # handed out, stopped by a graceful shutdown before the callback began
    succeeded: int = 0
    failed: int = 0
    dead: int = 0
    skipped_overlap: int = 0
    missed_events: int = 0
    missed_occurrences: int = 0
    coalesced_runs: int = 0
    coalesced_occurrences: int = 0
    rows_behind: int = 0  # timer rows naming an occurrence already made due (moved on when read)
    interrupted: int = 0
    retries_after_interrupt: int = 0
    ledger_begins: int = 0
    ledger_ends: int = 0
    torn_ledger_lines: int = 0
    hot_journals: int = 0
    uninitialized: int = 0
    doctor_notes: int = 0
    runtime_log_lines: int = 0
    dup: dict[str, int] = field(default_factory=dict)
    interrupted_why: dict[str, int] = field(default_factory=dict)


class Checker:
    """Replays the committed history against a model of the workload, one cycle at a time."""

    def __init__(
        self, data_dir: Path, ledger: Path, timers: list[dict[str, Any]], strict_cycles: bool = True
    ):
        self.data_dir = data_dir
        self.db = data_dir / "kron.db"
        self.ledger_path = ledger
        self.specs = {t["name"]: t for t in timers}
        self.timers = {name: TimerModel(spec=t) for name, t in self.specs.items()}
        self.runs: dict[str, Run] = {}
        self.active: dict[str, set[str]] = {}  # timer -> its runs not finished
        self.dirty: set[str] = set()  # runs with a new outcome since the last check
        self.stats = Stats()
        self.violations: list[str] = []
        self.max_seq = 0
        self.digests = array.array("I")  # crc32 of event seq i+1, for the append-only check
        self.schema: Optional[list[tuple[Any, ...]]] = None
        self.user_version: Optional[int] = None
        self.ledger_offset = 0
        # (run_id, attempt) -> ledger marks seen: "b", "o", "f"
        self.ledger: dict[tuple[str, int], list[str]] = {}
        self.returned_at: dict[tuple[str, int], float] = {}  # when a callback returned (ledger "o")
        self.stopped_at = 0.0  # when the previous process was killed
        self.dup_gaps: list[float] = []  # callback returned -> kill, for each duplicate, seconds
        self.fn_names: dict[str, str] = {}
        self.strict_cycles = strict_cycles
        self.needed_copy = False
        self.stop_kind = "kill"  # how the process before the current cycle ended
        self.ending = "kill"
        self.carried_running: dict[str, int] = {}  # runs left running by the previous process
        self.pending_started_checks: list[tuple[str, int, str, int]] = []

    # -- reporting ----------------------------------------------------------------------------------
    def violation(self, text: str) -> None:
        self.violations.append(f"cycle {self.stats.cycles}: {text}")

    # -- the per-cycle check ------------------------------------------------------------------------
    def check(self, stop_kind: str, final: bool = False, stopped_at: float = 0.0) -> None:
        """Checks the directory after a process ended (``stop_kind``: kill, shutdown, none)."""
        self.ending = stop_kind  # how the process whose events are read now ended
        if not self.db.exists():
            # Killed before the database was created: nothing to check yet.
            self.stop_kind, self.stopped_at = stop_kind, stopped_at
            return
        scratch = None
        self.needed_copy = False
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
            try:
                conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            except sqlite3.OperationalError as e:
                if "readonly" not in str(e):
                    raise
                # Killed while the very first start created the database: reading needs a
                # recovery (a hot journal rolled back) that a read-only connection cannot do.
                # Check a copy instead, as the next start will see it.
                conn.close()
                self.needed_copy = True
                self.stats.hot_journals += 1
                scratch = Path(tempfile.mkdtemp(prefix="kron-crashloop-copy-"))
                for suffix in ("", "-journal", "-wal"):
                    src = self.db.with_name("kron.db" + suffix)
                    if src.exists():
                        shutil.copy2(src, scratch / src.name)
                conn = sqlite3.connect(str(scratch / "kron.db"), timeout=10)
        except (OSError, sqlite3.Error) as e:
            self.violation(f"the database does not open: {e}")
            return
        try:
            if not self._check_file(conn):
                # Killed before the first start created the schema: nothing committed yet.
                self.stats.uninitialized += 1
                self.stop_kind, self.stopped_at = stop_kind, stopped_at
                return
            new_events = self._read_events(conn)
            self._check_prefix(conn, full=final)
            self._read_ledger()
            self._replay(new_events)
            runs_rows = conn.execute(
                "SELECT run_id, timer_id, scheduled_at, attempt, phase, fire_at, manual FROM runs"
            ).fetchall()
            timer_rows = conn.execute(
                "SELECT id, def, lifecycle, next_scheduled_at, next_fire_at, run_count, failure_count "
                "FROM timers"
            ).fetchall()
            self._check_runs_table(runs_rows)
            self._check_timers_table(timer_rows, runs_rows)
            self._check_ledger()
        except sqlite3.DatabaseError as e:
            self.violation(f"reading the database failed: {e}")
        finally:
            conn.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        self.stop_kind = stop_kind
        self.stopped_at = stopped_at
        self.carried_running = {r.run_id: r.attempt for r in self._all_active() if r.phase == "running"}

    def _check_file(self, conn: sqlite3.Connection) -> bool:
        """Checks the file; False when no schema exists yet (killed during the first start)."""
        result = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        if result != ["ok"]:
            self.violation(f"integrity_check: {result[:5]}")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        schema = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name"
        ).fetchall()
        if not schema and version == 0 and self.schema is None:
            if result != ["ok"]:
                self.violation(f"integrity_check of the new, empty database: {result[:5]}")
            return False
        if app_id != APPLICATION_ID:
            self.violation(f"application_id is {app_id:#x}, expected {APPLICATION_ID:#x}")
        names = {row[1] for row in schema if row[0] == "table"}
        if not set(SCHEMA_TABLES) <= names:
            self.violation(f"tables missing: {sorted(set(SCHEMA_TABLES) - names)}")
        views = {row[1] for row in schema if row[0] == "view"}
        if not set(SCHEMA_VIEWS) <= views:
            self.violation(f"views missing: {sorted(set(SCHEMA_VIEWS) - views)}")
        if self.schema is None:
            self.schema, self.user_version = schema, version
        else:
            if schema != self.schema:
                self.violation("the schema changed between cycles")
            if version != self.user_version:
                self.violation(f"user_version changed from {self.user_version} to {version}")
        return True

    def _read_events(self, conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        rows = conn.execute(
            "SELECT seq, ts, timer_id, kind, run_id, attempt, detail FROM events WHERE seq > ? ORDER BY seq",
            (self.max_seq,),
        ).fetchall()
        expected = self.max_seq + 1
        for row in rows:
            if row[0] != expected:
                self.violation(f"event seq gap: expected {expected}, found {row[0]}")
                expected = row[0]
            self.digests.append(zlib.crc32(repr(row).encode()))
            expected += 1
        if rows:
            self.max_seq = rows[-1][0]
        return rows

    def _check_prefix(self, conn: sqlite3.Connection, full: bool) -> None:
        """History is append-only: what an earlier check saw is still there, unchanged."""
        n = conn.execute("SELECT count(*), coalesce(max(seq), 0) FROM events").fetchone()
        if n[0] != self.max_seq or n[1] != self.max_seq:
            self.violation(f"events: count {n[0]}, max seq {n[1]}, expected {self.max_seq} of each")
        if not self.max_seq:
            return
        if full:
            cursor = conn.execute(
                "SELECT seq, ts, timer_id, kind, run_id, attempt, detail FROM events ORDER BY seq"
            )
            bad = 0
            for row in cursor:
                if zlib.crc32(repr(row).encode()) != self.digests[row[0] - 1]:
                    bad += 1
            if bad:
                self.violation(f"{bad} events changed after they were committed")
            return
        sample = random.sample(range(1, self.max_seq + 1), min(500, self.max_seq))
        for seq in sample:
            row = conn.execute(
                "SELECT seq, ts, timer_id, kind, run_id, attempt, detail FROM events WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None or zlib.crc32(repr(row).encode()) != self.digests[seq - 1]:
                self.violation(f"event {seq} changed or vanished after it was committed: {row}")

    def _read_ledger(self) -> None:
        if not self.ledger_path.exists():
            return
        with open(self.ledger_path, "rb") as f:
            f.seek(self.ledger_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A line cut by the kill: drop it so the next process starts on a fresh line.
            self.stats.torn_ledger_lines += 1
            with open(self.ledger_path, "r+b") as f:
                f.truncate(self.ledger_offset + end)
        self.ledger_offset += end
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                self.stats.torn_ledger_lines += 1
                continue
            key = (rec["r"], rec["a"])
            marks = self.ledger.setdefault(key, [])
            marks.append(rec["e"])
            if rec["e"] == "b":
                self.stats.ledger_begins += 1
                if marks.count("b") > 1:
                    self.violation(f"attempt {rec['a']} of run {rec['r']} ({rec['t']}) was invoked twice")
                self.pending_started_checks.append((rec["r"], rec["a"], rec["t"], rec["s"]))
            else:
                self.stats.ledger_ends += 1
                if rec["e"] == "o":
                    self.returned_at[key] = rec["w"]
                if "b" not in marks:
                    self.violation(f"ledger: end without begin for {key}")

    # -- replay of the history ----------------------------------------------------------------------
    def _replay(self, rows: list[tuple[Any, ...]]) -> None:
        interrupted_here: set[str] = set()
        for seq, ts, timer_id, kind, run_id, attempt, detail_json in rows:
            self.stats.events += 1
            detail = json.loads(detail_json) if detail_json else {}
            tm = self.timers.get(timer_id)
            if tm is None:
                self.violation(f"event {seq} {kind} for unknown timer {timer_id!r}")
                continue
            handler = getattr(self, "_ev_" + kind.lower(), None)
            if handler is None:
                self.violation(f"event {seq}: {kind} never happens in this workload (timer {timer_id})")
                continue
            if kind == "RUN_INTERRUPTED":
                interrupted_here.add(run_id)
            handler(seq, ts, tm, timer_id, run_id, attempt, detail)
        if self.strict_cycles and rows:
            # The process's first commit settles every run the previous one left running.
            for run_id, attempt in self.carried_running.items():
                if run_id not in interrupted_here:
                    self.violation(
                        f"run {run_id} (attempt {attempt}) was running when the process ended and "
                        "got no RUN_INTERRUPTED at the next start"
                    )
        self.carried_running = {}

    def _run(self, seq: int, kind: str, run_id: Optional[str]) -> Optional[Run]:
        run = self.runs.get(run_id) if run_id else None
        if run is None:
            self.violation(f"event {seq} {kind} for unknown run {run_id}")
        else:
            self.dirty.add(run.run_id)
        return run

    def _active_runs(self, timer_id: str) -> list[Run]:
        return [self.runs[r] for r in self.active.get(timer_id, ())]

    def _all_active(self) -> list[Run]:
        return [self.runs[r] for ids in self.active.values() for r in ids]

    def _grid_next(self, spec: dict[str, Any], t: int) -> int:
        period, off = spec["period_ms"], spec["offset_ms"]
        return ((t - off) // period + 1) * period + off

    def _grid_count(self, spec: dict[str, Any], first: int, until: int) -> Optional[int]:
        period, off = spec["period_ms"], spec["offset_ms"]
        if spec["kind"] == "every":
            off = first % period
        if (first - off) % period or (until - off) % period or until < first:
            return None
        return (until - first) // period + 1

    def _next_after_due(self, spec: dict[str, Any], t: int) -> Optional[int]:
        """The next occurrence after occurrence ``t`` became a due run."""
        if not self._is_grid(spec) or spec["overlap"] == "delay":
            return None
        return self._grid_next(spec, t) if spec["kind"] == "cron" else t + spec["ms"]

    def _is_grid(self, spec: dict[str, Any]) -> bool:
        return spec["kind"] in ("every", "cron")

    def _ev_timer_created(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        if tm.created:
            self.violation(f"event {seq}: {timer_id} created twice")
        tm.created, tm.created_ts = True, ts
        spec = tm.spec
        if spec["kind"] == "every" or spec["kind"] == "after":
            first = ts + spec["ms"]
        elif spec["kind"] == "cron":
            first = self._grid_next(spec, ts)
        else:
            first = spec["at_ms"]
        tm.expected_next = first
        fire = detail.get("next_run_at")
        jitter = spec["jitter_ms"]
        if fire is None or not first <= fire <= first + jitter:
            self.violation(
                f"{timer_id}: created with next_run_at {fire}, expected {first} (+ jitter {jitter})"
            )

    def _check_chain(
        self, seq: int, tm: TimerModel, timer_id: str, kind: str, scheduled: Optional[int]
    ) -> None:
        if tm.spec["overlap"] == "delay" and tm.delay_run is not None:
            self.violation(
                f"event {seq} {kind}: delay timer {timer_id} has an occurrence while its run "
                f"{tm.delay_run} is in flight"
            )
        if tm.expected_next is None:
            self.violation(
                f"event {seq} {kind}: {timer_id} has no pending occurrence (one-shot already done?)"
            )
        elif scheduled not in (tm.expected_next, tm.alt_next):
            self.violation(
                f"event {seq} {kind}: {timer_id} occurrence {scheduled} does not continue its schedule "
                f"(expected {tm.expected_next}): an occurrence vanished or came twice"
            )
        tm.alt_next = None

    def _ev_run_due(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        if run_id in self.runs:
            self.violation(f"event {seq}: second RUN_DUE for run {run_id}")
            return
        if attempt != 1:
            self.violation(f"event {seq}: RUN_DUE with attempt {attempt}")
        scheduled = detail.get("scheduled_at")
        manual = bool(detail.get("manual"))
        run = Run(run_id=run_id, timer=timer_id, scheduled_at=scheduled, manual=manual)
        self.runs[run_id] = run
        self.active.setdefault(timer_id, set()).add(run_id)
        if manual:
            self.stats.runs_manual += 1
            return
        self.stats.runs_due += 1
        tm.due_count += 1
        spec = tm.spec
        self._check_chain(seq, tm, timer_id, "RUN_DUE", scheduled)
        if spec["overlap"] == "delay" and self._is_grid(spec):
            busy = [
                r.run_id
                for r in self._active_runs(timer_id)
                if not r.manual and r.phase != "done" and r.run_id != run_id
            ]
            if busy:
                self.violation(
                    f"event {seq}: delay timer {timer_id} has two scheduled runs in flight: {busy}"
                )
        end = scheduled
        count = detail.get("count")
        if count is not None:
            until = detail.get("until")
            self.stats.coalesced_runs += 1
            self.stats.coalesced_occurrences += count
            if self._is_grid(spec) and self._grid_count(spec, scheduled, until) != count:
                self.violation(
                    f"event {seq}: coalesced RUN_DUE {scheduled}..{until} says {count} occurrences"
                )
            end = until
        if not self._is_grid(spec):
            tm.expected_next = None
            tm.one_shot_done = True
        elif spec["overlap"] == "delay":
            tm.expected_next = None
            tm.delay_run = run_id
        else:
            tm.expected_next = self._grid_next(spec, end) if spec["kind"] == "cron" else end + spec["ms"]

    def _ev_run_missed(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        spec = tm.spec
        scheduled, until, count = detail.get("scheduled_at"), detail.get("until"), detail.get("count")
        self.stats.missed_events += 1
        self.stats.missed_occurrences += count or 0
        if spec["catchup"] != "skip":
            self.violation(f"event {seq}: RUN_MISSED for {timer_id} whose catchup is {spec['catchup']}")
        if not self._is_grid(spec):
            self.violation(f"event {seq}: RUN_MISSED for one-shot {timer_id}")
            return
        self._check_chain(seq, tm, timer_id, "RUN_MISSED", scheduled)
        if self._grid_count(spec, scheduled, until) != count:
            self.violation(f"event {seq}: RUN_MISSED {scheduled}..{until} says {count} occurrences")
        tm.expected_next = self._grid_next(spec, until) if spec["kind"] == "cron" else until + spec["ms"]
        nxt = detail.get("next_run_at")
        if nxt is None or not tm.expected_next <= nxt <= tm.expected_next + spec["jitter_ms"]:
            self.violation(f"event {seq}: RUN_MISSED next_run_at {nxt}, expected {tm.expected_next}")

    def _ev_run_started(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_STARTED", run_id)
        if run is None:
            return
        ok_phase = (run.phase == "due" and attempt == 1) or (
            run.phase == "retry_wait" and attempt == run.attempt
        )
        if not ok_phase:
            self.violation(
                f"event {seq}: RUN_STARTED attempt {attempt} of {run_id} in phase {run.phase}/{run.attempt}"
            )
        if attempt > tm.spec["max_attempts"]:
            self.violation(
                f"event {seq}: attempt {attempt} of {run_id} exceeds max_attempts {tm.spec['max_attempts']}"
            )
        if detail.get("scheduled_at") != run.scheduled_at:
            self.violation(f"event {seq}: RUN_STARTED scheduled_at differs from RUN_DUE for {run_id}")
        if attempt == 1 and not run.manual and tm.spec["overlap"] == "skip":
            busy = [
                r.run_id
                for r in self._active_runs(timer_id)
                if r.run_id != run_id and r.phase in ("running", "retry_wait", "failed")
            ]
            if busy:
                self.violation(f"event {seq}: skip timer {timer_id} started {run_id} while {busy} in flight")
        run.phase, run.attempt = "running", attempt
        run.started.add(attempt)
        tm.started += 1
        self.stats.attempts_started += 1

    def _ev_run_not_started(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        # A graceful stop came before the attempt handed to a worker began: its RUN_STARTED is
        # undone, the run waits again with the same attempt number, and nothing is counted.
        run = self._run(seq, "RUN_NOT_STARTED", run_id)
        if run is None:
            return
        self._expect_running(seq, "RUN_NOT_STARTED", run, attempt)
        if self.strict_cycles and self.ending != "shutdown":
            self.violation(f"event {seq}: RUN_NOT_STARTED for {run_id} without a graceful stop")
        if detail.get("scheduled_at") != run.scheduled_at:
            self.violation(f"event {seq}: RUN_NOT_STARTED scheduled_at differs from RUN_DUE for {run_id}")
        run.phase = "due" if attempt == 1 else "retry_wait"
        run.started.discard(attempt)
        tm.started -= 1
        self.stats.not_started += 1

    def _expect_running(self, seq: int, kind: str, run: Run, attempt: int) -> None:
        if run.phase != "running" or run.attempt != attempt:
            self.violation(
                f"event {seq}: {kind} attempt {attempt} of {run.run_id} in phase {run.phase}/{run.attempt}"
            )

    def _finished(self, ts: int, tm: TimerModel, run: Run, final: str) -> None:
        run.phase, run.final = "done", final
        self.active.get(run.timer, set()).discard(run.run_id)
        spec = tm.spec
        if run.manual:
            return
        if not self._is_grid(spec):
            tm.lifecycle = "completed" if final == "succeeded" else "dead"
            return
        if spec["overlap"] == "delay" and final != "skipped":
            if tm.delay_run != run.run_id:
                self.violation(
                    f"delay timer {run.timer}: run {run.run_id} ended but {tm.delay_run} was in flight"
                )
            tm.delay_run = None
            from_finish = ts + spec["ms"] if spec["kind"] == "every" else self._grid_next(spec, ts)
            on_grid = (
                run.scheduled_at + spec["ms"]
                if spec["kind"] == "every"
                else self._grid_next(spec, run.scheduled_at)
            )
            # catchup "all" replays the grid up to the restart; a later occurrence counts from now.
            # catchup "all" replays the grid up to the restart (the engine compares with the
            # instant of recovery, which the history does not record); later, it counts from now.
            tm.expected_next = from_finish
            if spec["catchup"] == "all" and on_grid <= ts:
                tm.alt_next = on_grid

    def _ev_run_succeeded(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_SUCCEEDED", run_id)
        if run is None:
            return
        self._expect_running(seq, "RUN_SUCCEEDED", run, attempt)
        run.outcome[attempt] = "SUCCEEDED"
        tm.ended += 1
        self.stats.succeeded += 1
        self._finished(ts, tm, run, "succeeded")

    def _ev_run_failed(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_FAILED", run_id)
        if run is None:
            return
        self._expect_running(seq, "RUN_FAILED", run, attempt)
        if "planned failure" not in (detail.get("error") or ""):
            self.violation(
                f"event {seq}: {run_id} failed with an unplanned error: {(detail.get('error') or '')[:200]}"
            )
        run.outcome[attempt] = "FAILED"
        tm.ended += 1
        run.phase = "failed"
        tm.failures += 1
        self.stats.failed += 1

    def _ev_run_interrupted(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_INTERRUPTED", run_id)
        if run is None:
            return
        self._expect_running(seq, "RUN_INTERRUPTED", run, attempt)
        if self.strict_cycles and run_id not in self.carried_running:
            self.violation(
                f"event {seq}: RUN_INTERRUPTED for {run_id}, which was not running when the process ended"
            )
        run.outcome[attempt] = "INTERRUPTED"
        tm.ended += 1
        run.phase = "failed"
        tm.failures += 1
        self.stats.interrupted += 1
        marks = self.ledger.get((run_id, attempt), [])
        if "o" in marks:
            why = "callback returned, outcome not committed"
        elif "f" in marks:
            why = "callback raised, outcome not committed"
        elif "b" in marks:
            why = "killed while the callback ran"
        else:
            why = "killed after RUN_STARTED, before the callback began"
        key = f"{why} ({self.stop_kind})"
        self.stats.interrupted_why[key] = self.stats.interrupted_why.get(key, 0) + 1
        if "o" in marks:
            self.stats.dup[key] = self.stats.dup.get(key, 0) + 1
            returned = self.returned_at.get((run_id, attempt))
            if returned is not None and self.stop_kind == "kill" and self.stopped_at:
                self.dup_gaps.append(self.stopped_at - returned)

    def _ev_run_retrying(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_RETRYING", run_id)
        if run is None:
            return
        prev = attempt - 1
        if run.phase != "failed" or run.attempt != prev:
            self.violation(
                f"event {seq}: RUN_RETRYING attempt {attempt} of {run_id} in phase {run.phase}/{run.attempt}"
            )
        if attempt > tm.spec["max_attempts"]:
            self.violation(
                f"event {seq}: retry {attempt} of {run_id} beyond max_attempts {tm.spec['max_attempts']}"
            )
        if run.outcome.get(prev) == "INTERRUPTED":
            self.stats.retries_after_interrupt += 1
            if detail.get("next_attempt_at") != ts:
                self.violation(f"event {seq}: retry after an interruption not immediate for {run_id}")
        run.phase, run.attempt = "retry_wait", attempt

    def _ev_run_dead(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_DEAD", run_id)
        if run is None:
            return
        if run.phase != "failed" or run.attempt != attempt:
            self.violation(
                f"event {seq}: RUN_DEAD attempt {attempt} of {run_id} in phase {run.phase}/{run.attempt}"
            )
        if attempt != tm.spec["max_attempts"]:
            self.violation(
                f"event {seq}: {run_id} dead after {attempt} of {tm.spec['max_attempts']} attempts"
            )
        self.stats.dead += 1
        self._finished(ts, tm, run, "dead")

    def _ev_run_skipped_overlap(self, seq, ts, tm, timer_id, run_id, attempt, detail) -> None:
        run = self._run(seq, "RUN_SKIPPED_OVERLAP", run_id)
        if run is None:
            return
        if tm.spec["overlap"] != "skip" or run.manual or run.phase != "due":
            self.violation(
                f"event {seq}: {run_id} of {timer_id} skipped for overlap ({tm.spec['overlap']}, {run.phase})"
            )
        busy = [r for r in self._active_runs(timer_id) if r.phase in ("running", "retry_wait", "failed")]
        if not busy:
            self.violation(f"event {seq}: {run_id} of {timer_id} skipped for overlap with nothing in flight")
        self.stats.skipped_overlap += 1
        self._finished(ts, tm, run, "skipped")

    # -- state tables against the history ---------------------------------------------------------
    def _check_runs_table(self, rows: list[tuple[Any, ...]]) -> None:
        phase_of = {"due": "due", "running": "running", "retry_wait": "retry_wait"}
        in_table = set()
        for run_id, timer_id, scheduled_at, attempt, phase, _fire_at, manual in rows:
            in_table.add(run_id)
            run = self.runs.get(run_id)
            if run is None:
                self.violation(f"runs table has {run_id} ({timer_id}) with no RUN_DUE in history")
                continue
            if (run.timer, run.scheduled_at, bool(manual)) != (timer_id, scheduled_at, run.manual):
                self.violation(f"runs table row {run_id} disagrees with its RUN_DUE")
            if phase_of.get(phase) != run.phase or attempt != run.attempt:
                self.violation(
                    f"runs table says {run_id} is {phase}/attempt {attempt}; "
                    f"history says {run.phase}/{run.attempt}"
                )
        for run in self._all_active():
            if run.phase != "done" and run.run_id not in in_table:
                self.violation(
                    f"run {run.run_id} ({run.timer}) is {run.phase} in history but not in the runs table"
                )

    def _check_timers_table(self, rows: list[tuple[Any, ...]], runs_rows: list[tuple[Any, ...]]) -> None:
        # A timer's row is not rewritten when an occurrence becomes a due run (the run row says
        # it is taken); readers move a stored next occurrence past those, as Kron does at start.
        taken = {(r[1], r[2]) for r in runs_rows if not r[6]}
        seen = set()
        for tid, def_json, lifecycle, next_sched, next_fire, run_count, failure_count in rows:
            seen.add(tid)
            tm = self.timers.get(tid)
            if tm is None:
                self.violation(f"timers table has unknown timer {tid}")
                continue
            spec = tm.spec
            if next_sched is not None and (tid, next_sched) in taken:
                if spec["jitter_ms"]:
                    self.violation(f"timer {tid}: its row names taken occurrence {next_sched} with jitter")
                while next_sched is not None and (tid, next_sched) in taken:
                    next_sched = self._next_after_due(spec, next_sched)
                next_fire = next_sched
                self.stats.rows_behind += 1
            d = json.loads(def_json)
            want = {
                "id": tid,
                "schedule": expected_spec(spec),
                "timezone": spec["timezone"],
                "max_attempts": spec["max_attempts"],
                "overlap": spec["overlap"],
                "catchup": spec["catchup"],
                "jitter_ms": spec["jitter_ms"],
            }
            got = {k: d.get(k) for k in want}
            if got != want:
                self.violation(f"timer {tid}: stored definition {got} differs from the registered {want}")
            fn = self.fn_names.setdefault(tid, d.get("fn_name"))
            if d.get("fn_name") != fn:
                self.violation(f"timer {tid}: fn_name changed from {fn} to {d.get('fn_name')}")
            if not tm.created:
                self.violation(f"timer {tid} is stored but has no TIMER_CREATED")
            if lifecycle != tm.lifecycle:
                self.violation(f"timer {tid}: lifecycle {lifecycle}, history says {tm.lifecycle}")
            # The stored run_count counts attempts with an outcome (status adds those running).
            if run_count != tm.ended or failure_count != tm.failures:
                self.violation(
                    f"timer {tid}: run_count/failure_count {run_count}/{failure_count}, history says "
                    f"{tm.ended}/{tm.failures}"
                )
            if next_sched not in (tm.expected_next, tm.alt_next if next_sched is not None else None):
                self.violation(
                    f"timer {tid}: next_scheduled_at {next_sched}, "
                    f"but its history continues at {tm.expected_next}"
                )
            # catchup "once" makes a pending occurrence that is late fire at once (next_fire_at is
            # then the instant of recovery, next_scheduled_at the first missed occurrence).
            latest = None if spec["catchup"] == "once" else (next_sched or 0) + spec["jitter_ms"]
            if (next_sched is None) != (next_fire is None) or (
                next_sched is not None
                and not (next_sched <= next_fire and (latest is None or next_fire <= latest))
            ):
                self.violation(f"timer {tid}: next_fire_at {next_fire} vs next_scheduled_at {next_sched}")
        created = {name for name, tm in self.timers.items() if tm.created}
        if created - seen:
            self.violation(f"timers vanished from the timers table: {sorted(created - seen)[:10]}")

    def _check_ledger(self) -> None:
        for run_id, attempt, timer_id, scheduled in self.pending_started_checks:
            run = self.runs.get(run_id)
            if run is None or attempt not in run.started:
                self.violation(
                    f"callback {timer_id} run {run_id} attempt {attempt} ran, "
                    "but its RUN_STARTED is not in history"
                )
            elif run.scheduled_at != scheduled:
                self.violation(
                    f"run {run_id}: the callback saw scheduled_at {scheduled}, "
                    f"history says {run.scheduled_at}"
                )
        self.pending_started_checks = []
        dirty, self.dirty = self.dirty, set()
        for run in (self.runs[r] for r in dirty):
            for attempt, outcome in run.outcome.items():
                marks = self.ledger.get((run.run_id, attempt), [])
                if outcome == "SUCCEEDED" and "o" not in marks:
                    self.violation(
                        f"{run.run_id} attempt {attempt}: RUN_SUCCEEDED but the callback never returned"
                    )
                if outcome == "FAILED" and "f" not in marks:
                    self.violation(
                        f"{run.run_id} attempt {attempt}: RUN_FAILED but the callback never raised"
                    )
                if outcome == "FAILED" and "o" in marks:
                    self.violation(f"{run.run_id} attempt {attempt}: RUN_FAILED but the callback returned")


# =================================================================================================
# The harness
# =================================================================================================


def read_db_size(data_dir: Path) -> int:
    total = 0
    for name in ("kron.db", "kron.db-wal"):
        with contextlib.suppress(OSError):
            total += (data_dir / name).stat().st_size
    return total


def run_doctor(data_dir: Path) -> Optional[str]:
    """``kron doctor --json``: returns a failure description, or None when it found none."""
    code = "import sys, kron._cli as c; sys.exit(c.main())"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, "--data-dir", str(data_dir), "doctor", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"kron doctor did not run: {e}"
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        return f"kron doctor exit {proc.returncode}: {proc.stdout[-300:]} {proc.stderr[-300:]}"
    fails = [c for c in report.get("checks", []) if c.get("status") == "fail"]
    if fails:
        return "kron doctor: " + "; ".join(f"{c['check']}: {c['message']}" for c in fails)
    return None


def print_summary(ck: Checker, elapsed: float, db_bytes: int, out: Any = sys.stdout) -> None:
    s = ck.stats
    rows = [
        ("cycles", s.cycles),
        ("  SIGKILL", s.kills),
        ("    of which before start() returned", s.kills_before_ready),
        ("  graceful shutdown(0.5 s)", s.graceful),
        ("timers", len(ck.timers)),
        ("events checked", s.events),
        ("scheduled runs (RUN_DUE)", s.runs_due),
        ("manual runs (trigger)", s.runs_manual),
        ("attempts started", s.attempts_started),
        ("  not begun at a graceful stop (RUN_NOT_STARTED)", s.not_started),
        ("succeeded", s.succeeded),
        ("failed (planned)", s.failed),
        ("dead", s.dead),
        ("skipped for overlap", s.skipped_overlap),
        ("RUN_MISSED events / occurrences", f"{s.missed_events} / {s.missed_occurrences}"),
        ("coalesced runs / occurrences", f"{s.coalesced_runs} / {s.coalesced_occurrences}"),
        ("interrupted", s.interrupted),
    ]
    rows += [(f"  {why}", n) for why, n in sorted(s.interrupted_why.items())]
    rows += [
        ("retried after interruption", s.retries_after_interrupt),
        ("duplicates (a run's callback completed twice)", sum(s.dup.values())),
    ]
    rows += [(f"  {why}", n) for why, n in sorted(s.dup.items())]
    if ck.dup_gaps:
        gaps = sorted(ck.dup_gaps)
        rows.append(
            (
                "  callback returned before the kill: median / max",
                f"{gaps[len(gaps) // 2] * 1000:.0f} / {gaps[-1] * 1000:.0f} ms",
            )
        )
    rows += [
        ("ledger lines (begin / end)", f"{s.ledger_begins} / {s.ledger_ends}"),
        ("torn ledger lines", s.torn_ledger_lines),
        ("checks of a database with no schema yet (killed in the first start)", s.uninitialized),
        ("checks that needed a recovery (killed in the first start)", s.hot_journals),
        ("  of which `kron doctor` could not read it", s.doctor_notes),
        ("timer rows read behind a due run (moved on as Kron does)", s.rows_behind),
        ("runtime log lines (not callback failures)", s.runtime_log_lines),
        ("database size", f"{db_bytes / 1e6:.1f} MB"),
        ("elapsed", f"{elapsed:.0f} s"),
        ("VIOLATIONS", len(ck.violations)),
    ]
    width = max(len(r[0]) for r in rows)
    print("-" * (width + 14), file=out)
    for label, value in rows:
        print(f"{label:<{width}}  {value:>10}", file=out)
    print("-" * (width + 14), file=out)
    for v in ck.violations[:30]:
        print(f"VIOLATION {v}", file=out)
    if len(ck.violations) > 30:
        print(f"... and {len(ck.violations) - 30} more", file=out)


def harness(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    random.seed(seed + 1)
    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kron-crashloop-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    ledger = work / "ledger.jsonl"
    ready = work / "ready"
    horizon = args.cycles * (args.max_alive + 1.0) / 2 + args.final_seconds
    base_ms = int(time.time() * 1000)
    timers = build_workload(args.timers, seed, base_ms, horizon)
    cfg = {
        "timers": timers,
        "data_dir": str(data_dir),
        "ledger": str(ledger),
        "ready": str(ready),
        "max_workers": args.workers,
        "durability": args.durability,
        "shutdown_timeout": 0.5,
    }
    config = work / "config.json"
    config.write_text(json.dumps(cfg))
    print(
        f"crashloop: seed {seed}, {len(timers)} timers, {args.cycles} cycles, work dir {work}",
        flush=True,
    )
    ck = Checker(data_dir, ledger, timers)
    started = time.monotonic()
    script = str(Path(__file__).resolve())
    for cycle in range(args.cycles + 1):
        final = cycle == args.cycles
        ck.stats.cycles = cycle + 1 if not final else cycle
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        err_path = work / "worker.err"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, script, "--worker", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        if final:
            alive, graceful = args.final_seconds, True
        else:
            alive = rng.uniform(0.0, 0.5) if rng.random() < 0.25 else rng.uniform(0.5, args.max_alive)
            graceful = rng.random() < args.graceful
        deadline = time.monotonic() + alive
        died = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                died = proc.returncode
                break
            time.sleep(0.01)
        was_ready = ready.exists()
        stopped_at = time.time()
        if died is None:
            if graceful and was_ready:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    ck.violation("graceful shutdown did not finish in 30 s")
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                if ready.read_text() != "clean":
                    ck.violation(
                        f"graceful stop ended with exit {proc.returncode} before shutdown() returned"
                    )
                stop_kind = "shutdown"
                ck.stats.graceful += not final
            else:
                os.kill(proc.pid, signal.SIGKILL)
                stopped_at = time.time()
                proc.wait()
                stop_kind = "kill"
                ck.stats.kills += 1
                ck.stats.kills_before_ready += not was_ready
        else:
            stop_kind = "died"
        errors = err_path.read_text(errors="replace")
        if died is not None:
            ck.violation(
                f"the worker exited by itself with {died} (the directory did not open?):\n{errors[-2000:]}"
            )
        log_lines = [ln for ln in errors.splitlines() if ln.startswith("kron log")]
        ck.stats.runtime_log_lines += len(log_lines)
        for ln in log_lines[:3]:
            print(f"  cycle {cycle + 1}: {ln}", flush=True)
        other = [ln for ln in errors.splitlines() if ln and not ln.startswith("kron log")]
        if other and stop_kind != "kill":
            ck.violation("worker stderr: " + " | ".join(other[-5:]))
        before = len(ck.violations)
        ck.check(stop_kind, final=final, stopped_at=stopped_at)
        if args.doctor and (final or cycle % args.doctor_every == 0) and ck.schema is not None:
            problem = run_doctor(data_dir)
            if problem and ck.needed_copy:
                # Killed during the first start: `kron doctor` (read-only) cannot roll back the
                # journal; the next start does. Not a loss; counted and shown.
                ck.stats.doctor_notes += 1
                print(f"  note: {problem}", flush=True)
            elif problem:
                ck.violation(problem)
        if not args.quiet:
            print(
                f"cycle {cycle + 1:>4}{' (final)' if final else ''}: {stop_kind:<8} after {alive:5.2f}s"
                f"{'' if was_ready else ' (during start)'}  events {ck.max_seq:>8}  "
                f"interrupted {ck.stats.interrupted:>6}  violations {len(ck.violations)}",
                flush=True,
            )
        for v in ck.violations[before : before + 5]:
            print(f"  VIOLATION {v}", flush=True)
        if args.stop_on_violation and ck.violations:
            break
    elapsed = time.monotonic() - started
    print_summary(ck, elapsed, read_db_size(data_dir))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "seed": seed,
                    "cycles": args.cycles,
                    "timers": len(timers),
                    "stats": ck.stats.__dict__,
                    "duplicate_gap_ms": sorted(round(g * 1000) for g in ck.dup_gaps),
                    "violations": ck.violations,
                    "elapsed_s": round(elapsed, 1),
                    "db_bytes": read_db_size(data_dir),
                },
                indent=2,
            )
        )
    if ck.violations:
        print(f"work directory kept for inspection: {work}")
        return 1
    if own_workdir and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def verify_only(work: Path) -> int:
    cfg = json.loads((work / "config.json").read_text())
    ck = Checker(Path(cfg["data_dir"]), Path(cfg["ledger"]), cfg["timers"], strict_cycles=False)
    ck.ledger_offset = 0
    ck.check("none", final=True)
    print_summary(ck, 0.0, read_db_size(Path(cfg["data_dir"])))
    return 1 if ck.violations else 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cycles", type=int, default=20, help="kill/restart cycles (default 20; 200 for the long run)"
    )
    p.add_argument("--timers", type=int, default=300, help="timers in the workload (default 300)")
    p.add_argument("--workers", type=int, default=16, help="max_workers of the worker (default 16)")
    p.add_argument(
        "--max-alive", type=float, default=4.0, help="longest life of a process, seconds (default 4)"
    )
    p.add_argument(
        "--graceful", type=float, default=0.1, help="fraction of stops that are graceful (default 0.1)"
    )
    p.add_argument(
        "--final-seconds", type=float, default=4.0, help="life of the last, cleanly stopped process"
    )
    p.add_argument("--durability", choices=("normal", "full"), default="normal")
    p.add_argument("--seed", type=int, help="workload and kill-time seed (default random, printed)")
    p.add_argument("--workdir", help="work directory (default a new temporary one, removed on success)")
    p.add_argument("--keep", action="store_true", help="keep the work directory on success")
    p.add_argument("--json", help="also write the summary as JSON to this file")
    p.add_argument("--no-doctor", dest="doctor", action="store_false", help="do not run `kron doctor`")
    p.add_argument("--doctor-every", type=int, default=5, help="run `kron doctor` every N cycles (default 5)")
    p.add_argument("--stop-on-violation", action="store_true")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.add_argument("--verify-only", metavar="WORKDIR", help="re-check a kept work directory and exit")
    p.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    if args.verify_only:
        return verify_only(Path(args.verify_only))
    return harness(args)


if __name__ == "__main__":
    sys.exit(main())
