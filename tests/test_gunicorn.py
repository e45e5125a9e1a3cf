"""A real gunicorn with 3 sync workers, each calling ``kron.start(data_dir, standby=True)``.

Exactly one worker runs the timers; SIGKILL the active worker again and again: each time another
worker takes over, and the others, the one gunicorn starts in place of the dead one included, wait
as standbys. (Usually a waiting worker takes over and the replacement joins as a standby; a
replacement that starts at the very moment the lock is released can win it instead.)

Both ways of starting Kron in workers are covered: at application start-up (no ``--preload``:
every worker imports the application), and in a ``post_fork`` hook with ``--preload`` (the
arbiter imports the application, which registers the timers; each worker starts Kron after the
fork).

Evidence comes from three sides: a ledger the timer's callback appends to (which process ran
which occurrence), ``kron runtime status --json``, and ``GET /kron`` on the application, which
answers ``kron.runtime_info()`` of the worker that served it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import hold, read_lines, wait_until
from runtime_status import runtime_status_json, standby_pids

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker processes from /proc"),
]

WORKERS = 3
KILLS = 4
#: The issue asks for a take-over within 1 s; asserted with a wide margin for loaded machines.
TAKEOVER_LIMIT = 5.0
WAIT = 30.0

APP = '''\
"""A WSGI application whose workers share one Kron data directory, in standby mode."""

import json
import os
import time
from datetime import datetime

import kron

DATA_DIR = os.environ["KRON_TEST_DATA_DIR"]
LEDGER = os.environ["KRON_TEST_LEDGER"]
WORKERS = os.environ["KRON_TEST_WORKERS"]


def _json(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(repr(value))


@kron.schedule("tick", every="200ms")
def tick(context):
    line = {
        "pid": os.getpid(),
        "run_id": context["run_id"],
        "attempt": context["attempt"],
        "scheduled_at": context["scheduled_at"].isoformat(),
        "t": time.time(),
    }
    with open(LEDGER, "a") as f:
        f.write(json.dumps(line) + "\\n")


def start_kron():
    """Called once in each worker: at import, or from gunicorn's post_fork hook."""
    kron.start(DATA_DIR, standby=True)
    path = os.path.join(WORKERS, str(os.getpid()))
    with open(path + ".tmp", "w") as f:
        json.dump(kron.runtime_info(), f, default=_json)
    os.replace(path + ".tmp", path)


if os.environ["KRON_TEST_START_AT"] == "import":
    start_kron()


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/kron":
        try:
            body = json.dumps(kron.runtime_info(), default=_json).encode()
            status = "200 OK"
        except Exception as error:
            body = json.dumps({"exception": type(error).__name__, "message": str(error)}).encode()
            status = "500 Internal Server Error"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
'''

CONFIG = """\
def post_fork(server, worker):
    import kron_app

    kron_app.start_kron()
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _has_control_socket() -> bool:
    """Whether this gunicorn has its own control socket (a setting of newer versions)."""
    from gunicorn.config import KNOWN_SETTINGS

    return any("--no-control-socket" in (setting.cli or ()) for setting in KNOWN_SETTINGS)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


class Gunicorn:
    """gunicorn serving APP on a free loopback port, in a process group of its own."""

    def __init__(self, workdir: Path, start_at: str) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "kron-data"
        self.ledger = workdir / "ledger.jsonl"
        self.workers_dir = workdir / "workers"
        self.workers_dir.mkdir()
        (workdir / "kron_app.py").write_text(APP)
        self.port = _free_port()
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--chdir",
            str(workdir),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ]
        if _has_control_socket():
            args.append("--no-control-socket")  # else it would create one in ~/.gunicorn
        if start_at == "post_fork":
            (workdir / "gunicorn_conf.py").write_text(textwrap.dedent(CONFIG))
            args += ["--preload", "--config", str(workdir / "gunicorn_conf.py")]
        args.append("kron_app:app")
        env = dict(os.environ)
        env.update(
            KRON_TEST_DATA_DIR=str(self.data_dir),
            KRON_TEST_LEDGER=str(self.ledger),
            KRON_TEST_WORKERS=str(self.workers_dir),
            KRON_TEST_START_AT=start_at,
            PYTHONUNBUFFERED="1",
        )
        self.log_path = workdir / "gunicorn.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                cwd=str(workdir),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killed as a whole at the end
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def check_alive(self) -> None:
        assert self.proc.poll() is None, f"gunicorn exited ({self.proc.returncode}):\n{self.log()}"

    def workers(self) -> dict[int, dict[str, Any]]:
        """Live workers of this arbiter that have started Kron: pid -> runtime_info() they wrote
        right after kron.start()."""
        found: dict[int, dict[str, Any]] = {}
        for path in self.workers_dir.iterdir():
            if not path.name.isdigit():
                continue
            pid = int(path.name)
            stat = _proc_stat(pid)
            if stat is None or stat[0] == "Z" or stat[1] != self.proc.pid:
                continue
            found[pid] = json.loads(path.read_text())
        return found

    def ledger_lines(self) -> list[dict[str, Any]]:
        return read_lines(self.ledger)

    def get_kron(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/kron", timeout=10) as reply:
            info: dict[str, Any] = json.loads(reply.read())
            return info


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gunicorn]:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        pytest.fail("gunicorn is a test dependency: `make dev` (or pip install '.[dev]') installs it")
    started = Gunicorn(tmp_path, request.param)
    try:
        yield started
    finally:
        started.kill_group()


def _settled(server: Gunicorn, active: int) -> dict[str, Any] | None:
    """``kron runtime status --json`` once it shows ``active`` and every other live worker as a
    standby, with gunicorn's full complement of workers; else None."""
    server.check_alive()
    workers = server.workers()
    if len(workers) != WORKERS or active not in workers:
        return None
    status = runtime_status_json(server.data_dir)
    if status.get("pid") != active or standby_pids(status) != set(workers) - {active}:
        return None
    return status


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("server", ["import", "post_fork"], indirect=True)
def test_one_worker_runs_the_timers_and_another_takes_over_when_it_is_killed(server: Gunicorn) -> None:
    def all_started() -> dict[int, dict[str, Any]] | None:
        server.check_alive()
        found = server.workers()
        return found if len(found) == WORKERS else None

    workers = wait_until(all_started, timeout=WAIT, message=f"{WORKERS} workers with Kron started")
    roles = sorted(info["role"] for info in workers.values())
    assert roles == ["active"] + ["standby"] * (WORKERS - 1), workers
    active = next(pid for pid, info in workers.items() if info["role"] == "active")
    assert all(info["active_pid"] == active for info in workers.values() if info["role"] == "standby")

    wait_until(lambda: len(server.ledger_lines()) >= 5, timeout=WAIT, message="the first runs")
    wait_until(lambda: _settled(server, active), timeout=WAIT, message="the standbys in runtime status")
    hold(1.0)
    assert {ln["pid"] for ln in server.ledger_lines()} == {active}, "more than one worker ran the timer"
    _check_http(server, active)

    takeovers: list[float] = []
    by_waiting_worker = 0
    known = set(workers)
    for round_ in range(1, KILLS + 1):
        active, took, was_waiting = _kill_the_active_worker(server, active, known, round_)
        takeovers.append(took)
        by_waiting_worker += was_waiting

    # Over the whole test, the ledger is one worker after another: a worker that stopped running
    # the timer (it was killed) never ran it again, and no two ran it at the same time.
    order: list[int] = []
    for line in sorted(server.ledger_lines(), key=lambda ln: ln["t"]):
        if not order or order[-1] != line["pid"]:
            order.append(line["pid"])
    assert len(order) == KILLS + 1 and len(set(order)) == len(order), order
    first_attempts = [ln["run_id"] for ln in server.ledger_lines() if ln["attempt"] == 1]
    assert len(first_attempts) == len(set(first_attempts)), "a run's first attempt ran twice"
    print(
        "take-over times (ms):",
        ", ".join(f"{1000 * t:.0f}" for t in takeovers),
        f"({by_waiting_worker} of {KILLS} by a worker that was waiting)",
    )
    # A replacement that starts at the very moment the lock is released can win it (see
    # _kill_the_active_worker); that every take-over goes that way is vanishingly unlikely.
    assert by_waiting_worker >= 1


def _kill_the_active_worker(
    server: Gunicorn, active: int, known: set[int], round_: int
) -> tuple[int, float, bool]:
    """SIGKILLs ``active``; checks that another worker takes over, alone, and that every other
    worker, gunicorn's replacement included, waits as a standby. Returns the new active worker,
    the take-over time, and whether the new active worker was one that had been waiting. Adds
    the replacement to ``known`` (every worker pid seen).

    Usually a waiting worker takes over and the replacement joins as a standby. But a
    replacement whose ``kron.start()`` runs just as the lock is released (gunicorn forks it as
    soon as it reaps the dead worker; with ``--preload`` it starts at once) competes with the
    waiting workers for the lock, and the kernel does not favour the ones that waited: then the
    replacement is the new active worker, and the waiting workers go on waiting."""
    before = server.workers()
    killed = time.time()
    os.kill(active, signal.SIGKILL)

    def first_after_kill() -> dict[str, Any] | None:
        server.check_alive()
        return next((ln for ln in server.ledger_lines() if ln["t"] > killed), None)

    first = wait_until(first_after_kill, timeout=WAIT, message=f"a take-over after kill {round_}")
    took: float = first["t"] - killed
    new_active: int = first["pid"]
    assert new_active != active
    assert took < TAKEOVER_LIMIT, f"kill {round_}: the take-over took {took:.2f}s"

    # gunicorn replaces the dead worker: one active worker, the others wait
    wait_until(lambda: _settled(server, new_active), timeout=WAIT, message=f"settled after kill {round_}")
    now = server.workers()
    replacements = set(now) - known
    assert len(replacements) == 1, (sorted(now), sorted(known))
    replacement = replacements.pop()
    was_waiting = new_active in before
    assert was_waiting or new_active == replacement, (new_active, sorted(before), replacement)
    assert now[replacement]["role"] == ("standby" if was_waiting else "active"), now[replacement]
    known |= set(now)

    hold(1.0)
    after_kill = {ln["pid"] for ln in server.ledger_lines() if ln["t"] > killed}
    assert after_kill == {new_active}, f"after kill {round_}, runs came from {after_kill}"
    _check_http(server, new_active)
    return new_active, took, was_waiting


def _check_http(server: Gunicorn, active: int) -> None:
    """``GET /kron`` answers the serving worker's runtime_info(): every worker agrees on which
    one is active, and the active one says so of itself."""
    for _ in range(6):
        info = server.get_kron()
        assert "exception" not in info, info
        assert info["error"] is None, info
        assert info["active_pid"] == active, info
        assert info["role"] == ("active" if info["pid"] == active else "standby"), info
