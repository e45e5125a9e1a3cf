#!/usr/bin/env python3
"""Standby ledger: several processes on one data directory, the active one killed over and over.

``--processes`` worker processes (default 3) of one application share one data directory. Each
registers the same timers (``every`` 100 ms to 1 s and a per-second cron; some fail at random,
some on their first attempt, one always; two are slow, so kills land while callbacks run) and
calls ``kron.start(dir, standby=True)``: one becomes the active runtime, the others wait as
standbys. Every callback appends a line to a shared ledger (``O_APPEND``, one ``write`` per line)
when it begins and again just before it returns: pid, timer, run id, attempt, ``scheduled_at``
and the wall-clock time. Workers also note when ``start()`` returned (and in which role), when
they took over (the ``kron`` logger's "took over" line) and when a stop released the directory.

The harness finds the active process (the pid in ``kron.lock``), waits a random, seeded moment
(a quarter of the time within 0.3 s of the take-over, so during recovery), SIGKILLs it (or, one
time in ten, stops it gracefully with ``shutdown(0.5)``), starts a replacement standby and waits
for another process to take over; now and then it also kills a standby. After ``--kills`` cycles
(bounded by ``--max-minutes``) it stops every standby, then the owner, cleanly, and checks the
ledger and the stored history (read with Python's ``sqlite3``, read-only):

* never two active processes: no process begins a callback while another owns the directory
  (from the moment it took over or first ran a callback until the kill was sent, or until its
  graceful ``shutdown()`` returned), and no attempt of a run is invoked twice; a run that two
  processes executed is one whose earlier attempt was interrupted by the death of its process or
  failed and was retried (the at-least-once window, counted);
* no occurrence lost: the whole history passes the crash loop's replay (``tools/crashloop.py``:
  every timer's occurrences form an unbroken chain of its schedule, every ``RUN_STARTED`` has an
  outcome, the ledger agrees with the recorded outcomes, the ``runs`` and ``timers`` tables agree
  with history); every due run reached an outcome (succeeded, dead, skipped for overlap) or is
  still waiting at the end for a retry whose time has not come; and every occurrence was made due
  (or recorded missed) within ``--lateness-margin`` of its time, not counting the time no process
  owned the directory (kill -> take-over), so a take-over loses nothing and the catch-up runs at
  once;
* every ``RUN_INTERRUPTED`` attempt is retried at once (``RUN_RETRYING`` with the next attempt,
  then its ``RUN_STARTED``) or ends ``RUN_DEAD`` at ``max_attempts``; every callback a killed
  process left unfinished is ``RUN_INTERRUPTED``;
* each take-over (kill -> a new pid in ``kron.lock``) takes at most ``--takeover-limit`` seconds,
  and ``kron runtime status --json`` names the owner and lists the live standbys.

It prints a summary and writes it as JSON (``--json``: stats, take-over times, ``violations``);
exit status 1 if there was any violation.

Usage::

    python tools/standby_ledger.py --kills 150 --seed 1    # the long run (about 6 minutes)
    python tools/standby_ledger.py --kills 10              # CI size (tests/test_standby_ledger.py)
    python tools/standby_ledger.py --verify-only WORKDIR   # re-check a kept work directory

The workers run ``import kron`` with the same interpreter, so run it from an environment where
the package is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crashloop
from standby_checks import print_summary, read_jsonl, verify

#: How a worker is asked to stop: SIGTERM = the final, clean stop (``shutdown(5)``);
#: SIGUSR1 = a graceful hand-over to a standby (``shutdown(0.5)``, slow callbacks abandoned).
FINAL_STOP = signal.SIGTERM
HANDOVER = signal.SIGUSR1


# =================================================================================================
# The workload
# =================================================================================================


def _timer(name: str, ms: int, behaviour: str, overlap: str, catchup: str, attempts: int) -> dict[str, Any]:
    return {
        "kind": "every",
        "name": name,
        "ms": ms,
        "period_ms": ms,
        "offset_ms": 0,
        "max_attempts": attempts,
        "overlap": overlap,
        "catchup": catchup,
        "jitter_ms": 0,
        "timezone": "UTC",
        "behaviour": behaviour,
    }


def build_workload() -> list[dict[str, Any]]:
    """The timers every process registers, in the crash loop's workload format."""
    timers = [
        _timer("every-0100", 100, "ok", "skip", "once", 3),
        _timer("every-0150", 150, "ok", "allow", "all", 2),
        _timer("failfirst-0200", 200, "fail_first", "skip", "skip", 2),
        _timer("flaky-0250", 250, "flaky", "delay", "once", 3),
        _timer("slow-0300", 300, "slow", "skip", "once", 3),
        _timer("slow-delay-0200", 200, "slow", "delay", "all", 2),
        _timer("dead-0500", 500, "always_fail", "skip", "once", 2),
        {
            "kind": "cron",
            "name": "cron-1s",
            "cron": "* * * * * *",
            "period_ms": 1000,
            "offset_ms": 0,
            "max_attempts": 3,
            "overlap": "skip",
            "catchup": "once",
            "jitter_ms": 0,
            "timezone": "UTC",
            "behaviour": "ok",
        },
    ]
    for t in timers:
        if t["name"] == "slow-0300":
            t["sleep"] = [0.2, 1.2]
        elif t["name"] == "slow-delay-0200":
            t["sleep"] = [0.1, 0.6]
    return timers


# =================================================================================================
# The worker (a subprocess: ``standby_ledger.py --worker CONFIG``)
# =================================================================================================


def worker_main(config_path: str) -> None:
    # Blocked before any thread exists, so every thread inherits the mask and only the main
    # thread's sigwait() sees the stop signals: a waiting standby then has nothing that wakes.
    signal.pthread_sigmask(signal.SIG_BLOCK, {FINAL_STOP, HANDOVER})
    import logging

    import kron

    cfg = json.loads(Path(config_path).read_text())
    pid = os.getpid()
    ledger_fd = os.open(cfg["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    procs_fd = os.open(cfg["procs"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(kind: str, **fields: Any) -> None:
        rec = {"e": kind, "p": pid, "w": round(time.time(), 6), **fields}
        os.write(procs_fd, (json.dumps(rec) + "\n").encode())

    class Planned(Exception):
        pass

    class RuntimeLog(logging.Handler):
        """Notes take-overs; planned failures are dropped; other warnings go to stderr."""

        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "planned failure of" in msg:
                return
            if "took over" in msg:
                note("took_over", msg=msg[:300])
            elif record.levelno >= logging.WARNING:
                sys.stderr.write(f"kron log {record.levelname}: {msg}\n")
            else:
                note("log", msg=msg[:300])

    log = logging.getLogger("kron")
    log.addHandler(RuntimeLog())
    log.setLevel(logging.INFO)
    log.propagate = False

    def make(t: dict[str, Any]) -> Any:
        name, behaviour, sleep = t["name"], t["behaviour"], t.get("sleep")

        def job(ctx: dict[str, Any]) -> None:
            run_id, attempt = ctx["run_id"], ctx["attempt"]
            sched = round(ctx["scheduled_at"].timestamp() * 1000)
            head = f'{{"t":"{name}","r":"{run_id}","a":{attempt},"s":{sched},"p":{pid}'
            os.write(ledger_fd, (head + f',"w":{time.time():.6f},"e":"b"}}\n').encode())
            if sleep:
                time.sleep(random.uniform(sleep[0], sleep[1]))
            fail = (
                behaviour == "always_fail"
                or (behaviour == "flaky" and random.random() < 0.3)
                or (behaviour == "fail_first" and attempt == 1)
            )
            end = "f" if fail else "o"
            os.write(ledger_fd, (head + f',"w":{time.time():.6f},"e":"{end}"}}\n').encode())
            if fail:
                raise Planned(f"planned failure of {name} attempt {attempt}")

        job.__qualname__ = f"standby_ledger.{behaviour}"
        return job

    for t in cfg["timers"]:
        kron.schedule(t["name"], make(t), **crashloop.schedule_kwargs(t))
    kron.start(
        cfg["data_dir"],
        standby=True,
        max_workers=cfg["max_workers"],
        history_limit=None,  # the checker replays every event ever committed
    )
    info = kron.runtime_info()
    note("started", role=info.get("role"), active_pid=info.get("active_pid"))
    sig = signal.sigwait({FINAL_STOP, HANDOVER})
    role = kron.runtime_info().get("role")
    note("stopping", role=role, signal=int(sig))
    kron.shutdown(timeout=5.0 if sig == FINAL_STOP else 0.5)
    note("released", role=role)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# =================================================================================================
# The harness
# =================================================================================================


class Fleet:
    """The worker processes, the notes the harness adds to ``procs.jsonl``, and who owns the dir."""

    def __init__(self, work: Path, config: Path, data_dir: Path):
        self.work = work
        self.config = config
        self.data_dir = data_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.err_paths: dict[int, Path] = {}
        self.how_ended: dict[int, str] = {}
        self.procs_path = work / "procs.jsonl"
        self._fd = os.open(self.procs_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._spawned = 0
        (work / "logs").mkdir(exist_ok=True)

    def note(self, kind: str, pid: int, when: Optional[float] = None, **fields: Any) -> None:
        rec = {"e": kind, "p": pid, "w": round(time.time() if when is None else when, 6), "h": 1, **fields}
        os.write(self._fd, (json.dumps(rec) + "\n").encode())

    def spawn(self) -> int:
        self._spawned += 1
        err_path = self.work / "logs" / f"worker-{self._spawned:04d}.err"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(self.config)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.procs[proc.pid] = proc
        self.err_paths[proc.pid] = err_path
        self.note("spawn", proc.pid)
        return proc.pid

    def live(self) -> set[int]:
        return {pid for pid, p in self.procs.items() if p.poll() is None}

    def lock_owner(self) -> Optional[int]:
        """The pid ``kron.lock`` names, if it is one of our live workers."""
        try:
            text = (self.data_dir / "kron.lock").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("pid="):
                with contextlib.suppress(ValueError):
                    pid = int(line[4:].strip())
                    proc = self.procs.get(pid)
                    if proc is not None and proc.poll() is None:
                        return pid
        return None

    def wait_owner(self, not_pid: Optional[int], timeout: float) -> Optional[tuple[int, float]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.lock_owner()
            if pid is not None and pid != not_pid:
                return pid, time.time()
            time.sleep(0.002)
        return None

    def started(self) -> set[int]:
        """Workers whose ``start()`` returned (they noted it)."""
        out = set()
        for rec in read_jsonl(self.procs_path):
            if rec.get("e") == "started":
                out.add(rec["p"])
        return out

    def wait_started(self, pids: set[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pids <= self.started() | {p for p in pids if self.procs[p].poll() is not None}:
                return True
            time.sleep(0.02)
        return False

    def kill(self, pid: int, owner: bool) -> float:
        sent = time.time()
        os.kill(pid, signal.SIGKILL)
        self.procs[pid].wait()
        self.how_ended[pid] = "kill"
        self.note("kill", pid, when=sent, owner=owner, reaped=round(time.time(), 6))
        return sent

    def stop(self, pid: int, sig: signal.Signals, owner: bool, timeout: float = 30.0) -> tuple[float, bool]:
        """Asks a worker to shut down; False when it did not exit in time (then it is killed)."""
        sent = time.time()
        os.kill(pid, sig)
        ok = True
        try:
            self.procs[pid].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            ok = False
            os.kill(pid, signal.SIGKILL)
            self.procs[pid].wait()
        self.how_ended[pid] = "handover" if sig == HANDOVER else "final"
        self.note(
            "stop", pid, when=sent, owner=owner, signal=int(sig), clean=ok, rc=self.procs[pid].returncode
        )
        return sent, ok


def runtime_status(data_dir: Path) -> tuple[Optional[dict[str, Any]], str]:
    """``kron runtime status --json``: the report, or None and why not."""
    code = "import sys, kron._cli as c; sys.exit(c.main())"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, "--data-dir", str(data_dir), "runtime", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"did not run: {e}"
    try:
        return json.loads(proc.stdout), ""
    except ValueError:
        return None, f"exit {proc.returncode}: {proc.stdout[-300:]} {proc.stderr[-300:]}"


def check_runtime_status(fleet: Fleet, owner: int, standbys: set[int]) -> Optional[str]:
    """None when ``kron runtime status --json`` agrees with the fleet (asked again for up to
    about 2 s, since a standby may announce itself a moment after ``start()`` returned)."""
    problem = None
    for _ in range(6):
        problem = _runtime_status_problem(fleet, owner, standbys)
        if problem is None:
            return None
        time.sleep(0.3)
    return problem


def _runtime_status_problem(fleet: Fleet, owner: int, standbys: set[int]) -> Optional[str]:
    report, why = runtime_status(fleet.data_dir)
    if report is None:
        return f"kron runtime status --json {why}"
    if report.get("pid") != owner:
        return f"kron runtime status --json names pid {report.get('pid')}, the owner is {owner}"
    listed = report.get("standbys")
    if not isinstance(listed, list):
        return f"kron runtime status --json has no standbys list: {json.dumps(report)[:300]}"
    pids = {s.get("pid") for s in listed if isinstance(s, dict)}
    if owner in pids:
        return f"kron runtime status --json lists the owner {owner} as a standby"
    if pids != standbys:
        return (
            f"kron runtime status --json lists standbys {sorted(pids)}, the live ones are {sorted(standbys)}"
        )
    return None


def harness(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    own_workdir = args.workdir is None
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kron-standby-ledger-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    data_dir.mkdir(exist_ok=True)
    cfg = {
        "timers": build_workload(),
        "data_dir": str(data_dir),
        "ledger": str(work / "ledger.jsonl"),
        "procs": str(work / "procs.jsonl"),
        "max_workers": args.workers,
        "seed": seed,
        "lateness_margin": args.lateness_margin,
        "takeover_limit": args.takeover_limit,
    }
    config = work / "config.json"
    config.write_text(json.dumps(cfg))
    print(
        f"standby ledger: seed {seed}, {args.processes} processes, {args.kills} kills, work dir {work}",
        flush=True,
    )
    fleet = Fleet(work, config, data_dir)
    violations: list[str] = []
    started = time.monotonic()
    time_limit = started + args.max_minutes * 60

    first = fleet.spawn()
    seen = fleet.wait_owner(None, 30.0)
    if seen is None:
        violations.append("the first process did not become active within 30 s")
    else:
        fleet.note("owner", seen[0], when=seen[1])
    for _ in range(args.processes - 1):
        fleet.spawn()
    owner = seen[0] if seen else first
    cycle = 0
    while seen is not None and cycle < args.kills and time.monotonic() < time_limit:
        cycle += 1
        standbys = fleet.live() - {owner}
        if not fleet.wait_started(standbys, 30.0):
            violations.append(
                f"cycle {cycle}: standbys {sorted(standbys)} did not return from start() in 30 s"
            )
        if args.status_every and (cycle - 1) % args.status_every == 0:
            problem = check_runtime_status(fleet, owner, fleet.live() - {owner})
            if problem:
                violations.append(f"cycle {cycle}: {problem}")
        alive = rng.uniform(0.0, 0.3) if rng.random() < 0.25 else rng.uniform(0.3, args.max_alive)
        deadline = time.monotonic() + alive
        if rng.random() < args.standby_kills and standbys:
            # A standby dies too, at some moment of the owner's life: nothing may change.
            time.sleep(rng.uniform(0.0, alive))
            victim = rng.choice(sorted(standbys))
            fleet.kill(victim, owner=False)
            fleet.spawn()
        while time.monotonic() < deadline:
            if fleet.procs[owner].poll() is not None:
                break
            time.sleep(0.005)
        if fleet.procs[owner].poll() is not None:
            violations.append(
                f"cycle {cycle}: the owner {owner} exited by itself with {fleet.procs[owner].returncode}"
            )
            fleet.how_ended[owner] = "died"
            fleet.note("died", owner, rc=fleet.procs[owner].returncode)
            kind = "died"
        elif rng.random() < args.graceful:
            _, ok = fleet.stop(owner, HANDOVER, owner=True)
            if not ok:
                violations.append(f"cycle {cycle}: the owner {owner} did not finish shutdown(0.5) in 30 s")
            kind = "handover"
        else:
            fleet.kill(owner, owner=True)
            kind = "kill"
        seen = fleet.wait_owner(owner, args.takeover_timeout)
        # The replacement starts once the take-over is seen, so it never competes with it.
        fleet.spawn()
        if seen is None:
            violations.append(
                f"cycle {cycle}: no standby took over within {args.takeover_timeout:.0f} s after the "
                f"owner {owner} ended ({kind}); live processes {sorted(fleet.live())}"
            )
            break
        fleet.note("owner", seen[0], when=seen[1], after=owner)
        if not args.quiet:
            print(
                f"cycle {cycle:>4}: {kind:<8} {owner} after {alive:4.2f}s -> {seen[0]} owns the directory",
                flush=True,
            )
        owner = seen[0]

    if seen is not None:
        time.sleep(args.final_seconds)
    # The clean stop: standbys first (so none takes over), then the owner.
    live = fleet.live()
    for pid in sorted(live - {owner}):
        _, ok = fleet.stop(pid, FINAL_STOP, owner=False)
        if not ok:
            violations.append(f"standby {pid} did not stop within 30 s of SIGTERM")
    if owner in live:
        _, ok = fleet.stop(owner, FINAL_STOP, owner=True)
        if not ok:
            violations.append(f"the owner {owner} did not stop within 30 s of SIGTERM")
    for pid, how in fleet.how_ended.items():
        text = fleet.err_paths[pid].read_text(errors="replace")
        other = [ln for ln in text.splitlines() if ln and not ln.startswith("kron log")]
        if other and how != "kill":
            violations.append(f"worker {pid} ({how}) wrote to stderr: " + " | ".join(other[-5:]))
        if how in ("final", "handover") and fleet.procs[pid].returncode != 0:
            violations.append(f"worker {pid} ({how}) exited with {fleet.procs[pid].returncode}")
    elapsed = time.monotonic() - started

    report = verify(work, extra_violations=violations)
    report["elapsed_s"] = round(elapsed, 1)
    report["stopped_early"] = cycle < args.kills
    print_summary(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if report["violations"]:
        print(f"work directory kept for inspection: {work}")
        return 1
    if own_workdir and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def verify_only(work: Path, json_path: Optional[str]) -> int:
    report = verify(work)
    print_summary(report)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
    return 1 if report["violations"] else 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10, help="owner kills (default 10; 150 for the long run)")
    p.add_argument("--processes", type=int, default=3, help="processes on the directory (default 3)")
    p.add_argument("--workers", type=int, default=4, help="max_workers of each process (default 4)")
    p.add_argument("--max-alive", type=float, default=2.0, help="longest life of an owner, s (default 2)")
    p.add_argument("--graceful", type=float, default=0.1, help="fraction of owner stops that are graceful")
    p.add_argument(
        "--standby-kills", type=float, default=0.1, help="fraction of cycles that also kill a standby"
    )
    p.add_argument("--status-every", type=int, default=5, help="check `kron runtime status` every N cycles")
    p.add_argument("--final-seconds", type=float, default=3.0, help="life of the last owner before the stop")
    p.add_argument(
        "--takeover-limit", type=float, default=1.0, help="longest allowed kill -> new owner, s (default 1)"
    )
    p.add_argument("--takeover-timeout", type=float, default=15.0, help="give up waiting for a take-over, s")
    p.add_argument(
        "--lateness-margin",
        type=float,
        default=1.0,
        help="allowed lateness of an occurrence beyond the time without an owner, s (default 1)",
    )
    p.add_argument("--max-minutes", type=float, default=30.0, help="stop killing after this long")
    p.add_argument("--seed", type=int, help="kill-time seed (default random, printed)")
    p.add_argument("--workdir", help="work directory (default a new temporary one, removed on success)")
    p.add_argument("--keep", action="store_true", help="keep the work directory on success")
    p.add_argument("--json", help="also write the summary as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    p.add_argument("--verify-only", metavar="WORKDIR", help="re-check a kept work directory and exit")
    p.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    if args.verify_only:
        return verify_only(Path(args.verify_only), args.json)
    if args.processes < 2:
        p.error("--processes must be at least 2 (an owner and a standby)")
    return harness(args)


if __name__ == "__main__":
    sys.exit(main())
