"""Shared fixtures and helpers for the behavioural spec of the public ``kron`` API.

Notes for test authors:

* The timer registry is process-global: timers registered by one test stay registered
  for the rest of the pytest process.  Every test therefore uses unique timer names
  (``names`` fixture) and callbacks made by a ``Recorder``; when the test ends the
  recorder is closed and its callbacks turn into instant no-ops, so timers left behind
  by earlier tests cannot keep worker threads busy in later ones.
* Every test gets its own data directory (``data_dir``) and the runtime is shut down
  after each test (autouse ``_shutdown_runtime``).
* Anything that needs a clean process, or a process to kill -9, runs a child Python
  process through the ``children`` fixture.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

import kron

UTC = timezone.utc

EVENT_KINDS = frozenset(
    {
        "TIMER_CREATED",
        "TIMER_UPDATED",
        "TIMER_PAUSED",
        "TIMER_RESUMED",
        "TIMER_REMOVED",
        "TIMER_ORPHANED",
        "RUN_DUE",
        "RUN_STARTED",
        "RUN_NOT_STARTED",
        "RUN_SUCCEEDED",
        "RUN_FAILED",
        "RUN_RETRYING",
        "RUN_DEAD",
        "RUN_SKIPPED_OVERLAP",
        "RUN_MISSED",
        "RUN_INTERRUPTED",
    }
)

STATUS_KEYS = frozenset(
    {
        "id",
        "state",
        "schedule",
        "timezone",
        "fn_name",
        "next_run_at",
        "last_run_at",
        "last_status",
        "last_error",
        "last_duration_ms",
        "run_count",
        "failure_count",
        "max_attempts",
        "overlap",
    }
)

HISTORY_KEYS = frozenset({"seq", "ts", "kind", "run_id", "attempt"})

# Generous defaults: the suite runs on small, busy machines.
DEFAULT_WAIT = 15.0
POLL = 0.03


# ---------------------------------------------------------------------------
# plain helpers (importable with ``from conftest import ...``)
# ---------------------------------------------------------------------------


ROOT = Path(__file__).resolve().parent.parent


def find_kron() -> str:
    """The `kron` command line: $KRON_BIN, else the console script next to this Python, else
    the one on PATH."""
    explicit = os.environ.get("KRON_BIN")
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "kron"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("kron")
    if found:
        return found
    pytest.fail(
        "the `kron` command line is not installed: `pip install .` installs it as a console "
        "script next to this Python; or set KRON_BIN to a `cargo build -p kron-cli` binary"
    )


def run_tool(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Runs `tools/<script>` with this Python from the project root, capturing its output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=str(ROOT),
    )


def wait_until(
    predicate: Callable[[], Any], timeout: float = DEFAULT_WAIT, interval: float = POLL, message: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Raises AssertionError (with the last value seen) after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def hold(seconds: float) -> None:
    """Let time pass (used to check that something does NOT happen)."""
    time.sleep(seconds)


def events(name: str, *kinds: str) -> list[dict[str, Any]]:
    """The timer's history (all of it), optionally only the given kinds."""
    evs = kron.history(name, limit=100_000)
    if kinds:
        evs = [e for e in evs if e["kind"] in kinds]
    return evs


def kinds_of(name: str) -> list[str]:
    return [e["kind"] for e in events(name)]


def count(name: str, kind: str) -> int:
    return len(events(name, kind))


def is_aware_utc(value: Any) -> bool:
    return (
        isinstance(value, datetime)
        and value.tzinfo is not None
        and value.utcoffset() is not None
        and value.utcoffset().total_seconds() == 0
    )


def parse_dt(value: str | None) -> datetime | None:
    """Parse a datetime that a child process serialised with ``isoformat()``."""
    if value is None:
        return None
    return datetime.fromisoformat(value)


_SAFE = re.compile(r"[^A-Za-z0-9_.:-]+")
_counter = itertools.count()


def unique_name(hint: str = "t") -> str:
    """A valid, process-unique timer name (letters, digits, ``_ - . :``; <= 128 chars)."""
    base = _SAFE.sub("-", hint).strip("-_.:") or "t"
    suffix = f"-{next(_counter)}-{uuid.uuid4().hex[:8]}"
    return (base[: 100 - len(suffix)] + suffix).lstrip("-_.:")


# ---------------------------------------------------------------------------
# recorder: callbacks that record what happened and go inert after the test
# ---------------------------------------------------------------------------


class Recorder:
    """Builds callbacks that record each call (context, start/end times, concurrency).

    After ``close()`` (done automatically at the end of the test) every callback it
    made returns at once without recording, and sleeping callbacks wake up.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.calls: dict[str, list[dict[str, Any]]] = {}
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self.total_active = 0
        self.total_max_active = 0

    def close(self) -> None:
        self.closed.set()

    # -- inspection -----------------------------------------------------------------
    def calls_of(self, key: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.calls.get(key, [])]

    def n(self, key: str) -> int:
        with self.lock:
            return len(self.calls.get(key, []))

    def finished(self, key: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls.get(key, []) if c.get("end") is not None)

    def max_concurrency(self, key: str) -> int:
        with self.lock:
            return self.max_active.get(key, 0)

    # -- bookkeeping ----------------------------------------------------------------
    def _enter(self, key: str, ctx: Any) -> dict[str, Any]:
        rec = {"ctx": ctx, "start": time.time(), "end": None, "thread": threading.get_ident()}
        with self.lock:
            self.calls.setdefault(key, []).append(rec)
            self.active[key] = self.active.get(key, 0) + 1
            self.max_active[key] = max(self.max_active.get(key, 0), self.active[key])
            self.total_active += 1
            self.total_max_active = max(self.total_max_active, self.total_active)
        return rec

    def _exit(self, key: str, rec: dict[str, Any]) -> None:
        with self.lock:
            rec["end"] = time.time()
            self.active[key] -= 1
            self.total_active -= 1

    def _body(
        self, key: str, ctx: Any, sleep: float, fail: Callable[[Any, int], bool] | None, error: str
    ) -> None:
        rec = self._enter(key, ctx)
        try:
            if sleep:
                self.closed.wait(sleep)
            nth = self.n(key)
            if fail is not None and fail(ctx, nth):
                raise ValueError(f"{error} (call {nth})")
        finally:
            self._exit(key, rec)

    # -- factories ------------------------------------------------------------------
    def callback(
        self,
        key: str,
        *,
        sleep: float = 0.0,
        fail: Callable[[Any, int], bool] | None = None,
        error: str = "boom",
    ) -> Callable[[dict[str, Any]], None]:
        """A callback taking the context dict."""

        def job(ctx: dict[str, Any]) -> None:
            if self.closed.is_set():
                return
            self._body(key, ctx, sleep, fail, error)

        return job

    def callback_noctx(self, key: str, *, sleep: float = 0.0) -> Callable[[], None]:
        """A callback taking no parameter."""

        def job() -> None:
            if self.closed.is_set():
                return
            self._body(key, None, sleep, None, "")

        return job

    def async_callback(
        self,
        key: str,
        *,
        sleep: float = 0.0,
        fail: Callable[[Any, int], bool] | None = None,
        error: str = "async boom",
    ) -> Callable[[dict[str, Any]], Any]:
        import asyncio

        async def ajob(ctx: dict[str, Any]) -> None:
            if self.closed.is_set():
                return
            rec = self._enter(key, ctx)
            try:
                # prove we really are inside a running event loop
                rec["loop"] = asyncio.get_running_loop() is not None
                await asyncio.sleep(sleep)
                nth = self.n(key)
                if fail is not None and fail(ctx, nth):
                    raise ValueError(f"{error} (call {nth})")
            finally:
                self._exit(key, rec)

        return ajob


# ---------------------------------------------------------------------------
# child processes
# ---------------------------------------------------------------------------

CHILD_PREAMBLE = """\
import json, os, sys, time, threading, traceback
from datetime import datetime, timedelta, timezone
import kron

UTC = timezone.utc

def _default(o):
    if isinstance(o, datetime):
        return o.isoformat()
    return repr(o)

def dump(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, default=_default)
    os.replace(tmp, path)

def append(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj, default=_default) + "\\n")
        f.flush()

def touch(path):
    with open(path, "a"):
        pass

def history_of(name):
    return kron.history(name, limit=100000)

def wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.03)
    return pred()

def finish(code=0):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
"""


class Children:
    """Runs Python child processes (``sys.executable``) from script text."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._n = itertools.count()

    def _write(self, code: str) -> tuple[Path, Path, Path]:
        i = next(self._n)
        script = self.workdir / f"child_{i}.py"
        script.write_text(CHILD_PREAMBLE + "\n" + textwrap.dedent(code))
        return script, self.workdir / f"child_{i}.out", self.workdir / f"child_{i}.err"

    def spawn(self, code: str, *args: Any) -> subprocess.Popen[bytes]:
        script, out, err = self._write(code)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                [sys.executable, str(script), *map(str, args)],
                stdout=o,
                stderr=e,
                stdin=subprocess.DEVNULL,
                cwd=str(self.workdir),
                env=env,
            )
        proc.out_path = out  # type: ignore[attr-defined]
        proc.err_path = err  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    @staticmethod
    def output(proc: subprocess.Popen[bytes]) -> tuple[str, str]:
        out = Path(proc.out_path).read_text(errors="replace")  # type: ignore[attr-defined]
        err = Path(proc.err_path).read_text(errors="replace")  # type: ignore[attr-defined]
        return out, err

    def wait(self, proc: subprocess.Popen[bytes], timeout: float = 60.0, check: bool = True) -> str:
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            out, err = self.output(proc)
            raise AssertionError(
                f"child did not finish in {timeout}s\nstdout:\n{out}\nstderr:\n{err}"
            ) from None
        out, err = self.output(proc)
        if check and rc != 0:
            raise AssertionError(f"child exited with {rc}\nstdout:\n{out}\nstderr:\n{err}")
        return out

    def run(self, code: str, *args: Any, timeout: float = 60.0, check: bool = True) -> str:
        return self.wait(self.spawn(code, *args), timeout=timeout, check=check)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one child we started (by its pid) and reap it."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def wait_for_file(self, proc: subprocess.Popen[bytes], path: Path, timeout: float = DEFAULT_WAIT) -> None:
        """Wait until ``path`` exists; fail early (with the child's output) if the child dies."""

        def ready() -> bool:
            if path.exists():
                return True
            if proc.poll() is not None:
                out, err = self.output(proc)
                raise AssertionError(
                    f"child exited ({proc.returncode}) before creating {path.name}\n"
                    f"stdout:\n{out}\nstderr:\n{err}"
                )
            return False

        try:
            wait_until(ready, timeout=timeout, message=f"{path.name} from child")
        except AssertionError:
            if proc.poll() is None:
                out, err = self.output(proc)
                raise AssertionError(
                    f"child did not create {path.name} in {timeout}s\nstdout:\n{out}\nstderr:\n{err}"
                ) from None
            raise

    def cleanup(self) -> None:
        for proc in self.procs:
            self.kill(proc)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_lines(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _shutdown_runtime() -> Any:
    """Leave the runtime shut down after every test, whatever happened."""
    yield
    kron.shutdown(timeout=5)


@pytest.fixture
def data_dir(tmp_path: Path) -> str:
    """A fresh data directory for this test (not created yet: start() must create it)."""
    return str(tmp_path / "kron-data")


@pytest.fixture
def recorder() -> Any:
    rec = Recorder()
    yield rec
    rec.close()


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Any:
    """Factory of unique timer names derived from the test name.

    At teardown the test's timers are removed (best effort) so that they do not
    keep firing in later tests' runtimes.
    """
    made: list[str] = []

    def make(hint: str = "") -> str:
        name = unique_name(f"{request.node.name}-{hint}" if hint else request.node.name)
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(Exception):
            kron.remove(name)


@pytest.fixture
def name(names: Callable[[str], str]) -> str:
    return names("")


@pytest.fixture
def children(tmp_path: Path) -> Any:
    ch = Children(tmp_path)
    yield ch
    ch.cleanup()


@pytest.fixture
def procs(children: Children) -> Any:
    """``children``, and at teardown this process's runtime is shut down before they are killed:
    a standby in the test process must not take over the directory of a test that has ended.
    List it last in a test's parameters (fixtures are torn down in reverse order)."""
    yield children
    kron.shutdown(timeout=5)
