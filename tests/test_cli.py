"""The ``kron`` command line against a data directory owned by a live runtime (a child Python
process) and against the same directory once stopped.

The CLI used is the package's console script (installed next to this Python by ``pip install``),
or the binary named by ``KRON_BIN``. The stopped-directory cases with made-up histories live in
the Rust tests of ``crates/kron-cli``.
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
from pathlib import Path
from typing import Any, Callable

import pytest

import kron
from conftest import find_kron

#: Generous: the suite runs on small, busy machines.
WAIT = 15.0


@pytest.fixture(scope="module")
def kron_bin() -> str:
    return find_kron()


class Cli:
    """Runs ``kron --data-dir DIR ...`` with a fixed zone and no colour."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir

    def run(self, *args: str, timeout: float = 60.0, **extra_env: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KRON_HOME", "COLUMNS")}
        env.update(TZ="UTC", NO_COLOR="1", **extra_env)
        return subprocess.run(
            [self.binary, "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"kron {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        assert "panicked" not in result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


APP = """\
import fcntl, os, sys, time
import kron

data_dir, out = sys.argv[1], sys.argv[2]
calls = open(os.path.join(out, "calls.log"), "a", buffering=1)

@kron.schedule("beat", every="200ms")
def beat(ctx):
    calls.write(f"{time.time()} {ctx['run_id']}\\n")

@kron.schedule("flaky", every="1s", max_attempts=2)
def flaky(ctx):
    if ctx["attempt"] == 1:
        raise ConnectionError("upstream not ready")

kron.start(data_dir)
open(os.path.join(out, "started"), "w").close()
while kron._kron.is_running():
    time.sleep(0.05)
# Shut down from outside (the control socket): wait until that shutdown has completed, that
# is, until the runtime released the directory's lock.
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    fd = os.open(os.path.join(data_dir, "kron.lock"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        break
    except BlockingIOError:
        time.sleep(0.02)
    finally:
        os.close(fd)
with open(os.path.join(out, "stopped"), "w") as f:
    f.write(str(time.time()))
"""


class App:
    """The application: a child process running a live runtime on ``data_dir``."""

    def __init__(self, workdir: Path, code: str = APP) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        script = workdir / "app.py"
        script.write_text(textwrap.dedent(code))
        self.log = open(workdir / "app.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.data_dir), str(workdir)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(workdir),
        )
        wait_for(lambda: (workdir / "started").exists() or self.proc.poll() is not None, "app start")
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        self.log.flush()
        return (self.workdir / "app.log").read_text(errors="replace")

    def calls(self) -> list[float]:
        path = self.workdir / "calls.log"
        if not path.exists():
            return []
        return [float(line.split()[0]) for line in path.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def app(tmp_path: Path) -> Any:
    application = App(tmp_path)
    yield application
    application.stop()


@pytest.fixture
def cli(kron_bin: str, app: App) -> Cli:
    return Cli(kron_bin, app.data_dir)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {value!r}")
        time.sleep(0.02)


def history(cli: Cli, name: str, limit: int = 1000) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = cli.json("job", "history", name, "--limit", str(limit))["events"]
    return events


def test_the_console_script_is_this_package(kron_bin: str) -> None:
    result = subprocess.run([kron_bin, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kron {kron.__version__}"
    bad = subprocess.run([kron_bin, "job", "frobnicate"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "panicked" not in bad.stderr


def test_status_and_history_read_while_callbacks_fire(cli: Cli, app: App) -> None:
    wait_for(lambda: len(app.calls()) >= 3, "the first runs")
    counts = []
    seen_seqs: list[int] = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        status = cli.json("job", "status", "beat")
        assert status["id"] == "beat"
        assert status["state"] in ("scheduled", "running")
        assert status["schedule"] == "every 200ms"
        # overlap="delay": while a run is in flight the next one is not scheduled yet.
        assert status["next_run_at"] is None or status["next_run_at"].endswith("Z")
        if status["state"] == "scheduled" and not status.get("runs"):
            assert status["next_run_at"] is not None
        assert len(status["next_fire_times"]) == 5
        counts.append(status["run_count"])
        events = history(cli, "beat", 30)
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs)
        assert {e["kind"] for e in events} <= {"TIMER_CREATED", "RUN_DUE", "RUN_STARTED", "RUN_SUCCEEDED"}
        seen_seqs.append(seqs[-1])
        listing = cli.ok("job", "list")
        assert "beat" in listing
        assert "flaky" in listing
    assert counts == sorted(counts), counts
    assert counts[-1] > counts[0] + 5, f"runs went on while reading: {counts}"
    assert seen_seqs[-1] > seen_seqs[0]
    assert cli.json("job", "list")["live"] is True
    failed = cli.json("job", "history", "flaky", "--kind", "RUN_FAILED")["events"]
    assert failed and failed[0]["error"].startswith("ConnectionError: upstream not ready")
    explained = cli.json("job", "explain", "beat")
    assert explained["outcome"] in ("succeeded", "running", "due"), explained


def test_pause_from_the_cli_stops_a_200ms_timer_within_1s_and_resume_restarts_it(cli: Cli, app: App) -> None:
    wait_for(lambda: len(app.calls()) >= 3, "the first runs")
    asked = time.time()
    out = cli.ok("job", "pause", "beat")
    answered = time.time()
    assert "Paused beat through the live runtime" in out

    def paused_event() -> dict[str, Any] | None:
        return next((e for e in history(cli, "beat") if e["kind"] == "TIMER_PAUSED"), None)

    paused = wait_for(paused_event, "TIMER_PAUSED in history")
    # Let the pause settle, generously: a run already started may still finish.
    time.sleep(1.5)
    after = [e for e in history(cli, "beat") if e["seq"] > paused["seq"]]
    assert not [e for e in after if e["kind"] in ("RUN_DUE", "RUN_STARTED")], after
    calls = app.calls()
    last_call = max(calls)
    assert last_call - asked < 1.0, f"a callback ran {last_call - asked:.3f}s after the pause was asked"
    time.sleep(0.6)
    assert len(app.calls()) == len(calls), "callbacks ran while paused"
    status = cli.json("job", "status", "beat")
    assert status["state"] == "paused"
    assert status["next_run_at"] is None
    print(
        f"pause: CLI round trip {1000 * (answered - asked):.0f} ms, "
        f"last callback {1000 * (last_call - asked):.0f} ms after asking"
    )

    resumed_at = time.time()
    assert "Resumed beat" in cli.ok("job", "resume", "beat")
    wait_for(lambda: max(app.calls()) > resumed_at, "a callback after resume", timeout=5.0)
    first_after = min(c for c in app.calls() if c > resumed_at)
    assert first_after - resumed_at < 1.0, f"first run {first_after - resumed_at:.3f}s after resume"
    wait_for(lambda: cli.json("job", "status", "beat")["state"] in ("scheduled", "running"), "not paused")
    print(f"resume: first callback {1000 * (first_after - resumed_at):.0f} ms after asking")


def test_trigger_remove_and_unknown_names_reach_the_live_runtime(cli: Cli, app: App) -> None:
    wait_for(lambda: len(app.calls()) >= 1, "the first run")
    triggered = cli.json("job", "trigger", "flaky")
    assert triggered["ok"] is True
    assert triggered["via"] == "runtime"
    run_id = triggered["run_id"]
    assert run_id.startswith("run_")
    wait_for(
        lambda: [e for e in history(cli, "flaky") if e["run_id"] == run_id and e["kind"] == "RUN_STARTED"],
        "the triggered run to start",
    )
    due = next(e for e in history(cli, "flaky") if e["run_id"] == run_id and e["kind"] == "RUN_DUE")
    assert due["manual"] is True

    missing = cli.run("job", "pause", "no-such-timer")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f'kron: no timer named "no-such-timer" in {cli.data_dir}'

    assert "Removed flaky" in cli.ok("job", "remove", "flaky")
    gone = wait_for(lambda: cli.run("job", "status", "flaky").returncode == 1, "flaky to be gone")
    assert gone
    kinds = [e["kind"] for e in history(cli, "flaky")]
    assert kinds[-1] == "TIMER_REMOVED" or "TIMER_REMOVED" in kinds


def _control_connection(data_dir: Path) -> socket.socket:
    """A client connection to the runtime's control socket that sends nothing. Named through an
    open descriptor of the directory: a test's path can be too long for a Unix socket address."""
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(f"/proc/self/fd/{fd}/control.sock")
        return conn
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names the socket through /proc")
def test_idle_control_connections_do_not_hold_up_admin_commands(cli: Cli, app: App) -> None:
    """Clients that connect and send nothing neither make an admin command fail nor slow it."""
    idle = [_control_connection(app.data_dir) for _ in range(3)]
    try:
        began = time.monotonic()
        result = cli.run("job", "pause", "beat", timeout=60)
        took = time.monotonic() - began
    finally:
        for conn in idle:
            conn.close()
    assert result.returncode == 0, result.stderr
    assert "Paused beat" in result.stdout
    # Generous: the point is that it does not wait for the idle clients (seconds each).
    assert took < 5, f"kron job pause took {took:.1f}s behind idle connections"
    assert cli.json("job", "status", "beat")["state"] == "paused"


def test_a_runtime_that_answers_late_makes_the_outcome_unknown_never_unchanged(cli: Cli, app: App) -> None:
    """A stopped runtime process receives the request but answers only once it continues: the
    command says it timed out and that the request may still be carried out (exit 3), and the
    trigger is carried out once, later."""
    wait_for(lambda: len(app.calls()) >= 1, "the first run")

    def manual_runs() -> list[dict[str, Any]]:
        return [e for e in history(cli, "flaky") if e["kind"] == "RUN_DUE" and e.get("manual")]

    os.kill(app.proc.pid, signal.SIGSTOP)
    try:
        result = cli.run("job", "trigger", "flaky", "--timeout", "1s", timeout=60)
    finally:
        os.kill(app.proc.pid, signal.SIGCONT)
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "timed out after 1s" in result.stderr, result.stderr
    assert "may still be carried out" in result.stderr, result.stderr
    assert "kron job history flaky" in result.stderr, result.stderr
    assert "nothing was changed" not in result.stderr, result.stderr
    assert "os error" not in result.stderr, result.stderr
    wait_for(manual_runs, "the delivered trigger to be carried out")
    time.sleep(1.0)
    assert len(manual_runs()) == 1


def test_runtime_status_doctor_and_compact_while_live(cli: Cli, app: App) -> None:
    status = cli.json("runtime", "status")
    assert status["running"] is True
    assert status["control"] == "ok"
    assert status["pid"] == app.proc.pid
    assert status["version"] == kron.__version__
    assert status["timers"] == 2
    assert status["started_at"].endswith("Z")
    text = cli.ok("runtime", "status")
    assert f"pid          {app.proc.pid}" in text

    doctor = cli.run("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "OK    lock" in doctor.stdout
    assert "held by a live runtime" in doctor.stdout
    assert "OK    control socket" in doctor.stdout

    compact = cli.run("log", "compact", "--keep-runs", "1")
    assert compact.returncode == 1
    assert "needs it stopped" in compact.stderr


def test_runtime_shutdown_ends_the_apps_runtime_gracefully(kron_bin: str, cli: Cli, app: App) -> None:
    wait_for(lambda: len(app.calls()) >= 3, "the first runs")
    out = cli.ok("runtime", "shutdown", "--timeout", "10")
    assert f"Runtime pid {app.proc.pid} shut down gracefully" in out
    # The CLI returned once the lock was released: the app's shutdown path has completed.
    assert app.proc.wait(timeout=WAIT) == 0, app.output()
    assert (app.workdir / "stopped").exists(), app.output()
    status = cli.json("runtime", "status")
    assert status["running"] is False
    assert not (app.data_dir / "control.sock").exists()
    assert "nothing to shut down" in cli.ok("runtime", "shutdown")

    # Stopped: the same reads work, and the history ends with finished runs.
    listing = cli.json("job", "list")
    assert listing["live"] is False
    assert {t["id"] for t in listing["timers"]} == {"beat", "flaky"}
    beat = history(cli, "beat", 50)
    # An attempt handed out in the instant shutdown began is recorded as not started (due again
    # at the next start); none is left running.
    assert beat[-1]["kind"] in ("RUN_SUCCEEDED", "RUN_DUE", "RUN_NOT_STARTED"), beat[-3:]
    doctor = cli.run("doctor")
    assert doctor.returncode == 0, doctor.stdout

    # A graceful shutdown leaves no attempt behind: the next start finds nothing interrupted.
    restart = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, kron\n"
            "kron.schedule('beat', lambda: None, every='200ms')\n"
            "kron.schedule('flaky', lambda: None, every='1s', max_attempts=2)\n"
            "kron.start(sys.argv[1]); kron.shutdown()",
            str(app.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert restart.returncode == 0, restart.stderr
    kinds = {e["kind"] for e in history(cli, "beat", 100_000)}
    assert "RUN_INTERRUPTED" not in kinds

    # Offline admin, then compaction, on the stopped directory.
    assert "No runtime is running" in cli.ok("job", "pause", "flaky")
    assert cli.json("job", "status", "flaky")["state"] == "paused"
    compacted = cli.json("log", "compact", "--keep-runs", "2")
    assert compacted["events_deleted"] > 0
    assert compacted["events_after"] < compacted["events_before"]


def test_doctor_fails_on_a_corrupted_database(kron_bin: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    code = (
        "import sys, time, kron\n"
        "kron.schedule('fast', lambda: None, every='10ms')\n"
        "kron.start(sys.argv[1]); time.sleep(1.5); kron.shutdown()"
    )
    subprocess.run([sys.executable, "-c", code, str(data)], check=True, timeout=60)
    cli = Cli(kron_bin, data)
    assert cli.run("doctor").returncode == 0
    db = data / "kron.db"
    # Checkpoint the log into kron.db first (an offline admin command opens and closes the
    # store), so the damage below hits the pages that hold the data.
    cli.ok("job", "pause", "fast")
    raw = bytearray(db.read_bytes())
    assert len(raw) > 3 * 4096, len(raw)
    start = len(raw) // 2
    raw[start : start + 8192] = b"\xa5" * 8192
    db.write_bytes(bytes(raw))
    doctor = cli.run("doctor")
    assert doctor.returncode == 1, doctor.stdout
    assert any(line.startswith("FAIL") for line in doctor.stdout.splitlines()), doctor.stdout
    assert "panicked" not in doctor.stderr


def test_reads_of_a_missing_directory_create_nothing(kron_bin: str, tmp_path: Path) -> None:
    cli = Cli(kron_bin, tmp_path / "absent")
    for args in (("job", "list"), ("job", "status", "x"), ("runtime", "status")):
        result = cli.run(*args)
        assert result.returncode == 1
        assert "no Kron data directory" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "absent").exists()


# ---------------------------------------------------------------------------
# tables fit COLUMNS; `kron cron` and option values give clear errors
# ---------------------------------------------------------------------------

LONG_NAMES = (
    "nightly-report-for-the-eu-west-region-and-all-of-its-subsidiaries",
    "sync-orders-from-the-warehouse-management-system-every-few-seconds",
    "beat",
)


@pytest.fixture
def stopped(kron_bin: str, tmp_path: Path) -> Cli:
    """A stopped data directory with long timer names, one failed run and a cron timer."""
    data = tmp_path / "data"
    code = textwrap.dedent(
        f"""
        import sys, time, kron
        names = {LONG_NAMES!r}
        def boom():
            raise ConnectionError("orders API timed out after 10s while syncing the warehouse")
        kron.schedule(names[0], lambda: None, cron="0 3 * * *", timezone="Europe/Berlin")
        kron.schedule(names[1], boom, after="1ms", max_attempts=1)
        kron.schedule(names[2], lambda: None, every="1h")
        kron.start(sys.argv[1])
        deadline = time.monotonic() + 30
        while kron.status(names[1])["run_count"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        kron.shutdown()
        """
    )
    subprocess.run([sys.executable, "-c", code, str(data)], check=True, timeout=60)
    return Cli(kron_bin, data)


@pytest.mark.parametrize("width", [40, 60, 80, 200])
@pytest.mark.parametrize(
    "args",
    [("job", "list"), ("job", "history", LONG_NAMES[1]), ("cron", "0 3 * * *", "-t", "Europe/Berlin")],
    ids=["list", "history", "cron"],
)
def test_tables_fit_columns(stopped: Cli, width: int, args: tuple[str, ...]) -> None:
    result = stopped.run(*args, COLUMNS=str(width))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines, result.stdout
    for line in lines:
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
    if args[1] == "list":
        rows = [line for line in lines if not line.startswith("ID")]
        # Every timer keeps a row, recognisable by the start of its name.
        for name in LONG_NAMES:
            assert any(row.startswith(name[:12]) for row in rows), (name, lines)
        if width == 200:
            assert any(row.startswith(LONG_NAMES[0] + " ") for row in rows), lines


def test_tables_print_whole_rows_when_piped(stopped: Cli) -> None:
    lines = stopped.ok("job", "list").splitlines()
    assert any(line.startswith(LONG_NAMES[1] + " ") for line in lines), lines
    assert "…" not in "\n".join(lines)


def test_cron_describes_last_weekday_and_nearest_weekday(kron_bin: str, tmp_path: Path) -> None:
    cli = Cli(kron_bin, tmp_path)
    lw = cli.json("cron", "0 0 LW * *", "--from", "2026-01-01T00:00:00Z", "-n", "3")
    assert "last weekday (Monday to Friday) of the month" in lw["description"], lw
    assert "last day" not in lw["description"], lw
    # 2026-01-31 is a Saturday, 2026-02-28 a Saturday, 2026-03-31 a Tuesday.
    assert [t["at"][:10] for t in lw["fire_times"]] == ["2026-01-30", "2026-02-27", "2026-03-31"]
    last = cli.json("cron", "0 0 L * *", "--from", "2026-01-01T00:00:00Z", "-n", "2")
    assert "the last day of the month" in last["description"], last
    assert [t["at"][:10] for t in last["fire_times"]] == ["2026-01-31", "2026-02-28"]
    w = cli.json("cron", "0 0 15W * *", "--from", "2026-02-01T00:00:00Z", "-n", "1")
    assert "weekday (Monday to Friday) nearest day 15" in w["description"], w
    assert w["fire_times"][0]["at"][:10] == "2026-02-16"  # the 15th is a Sunday
    nth = cli.json("cron", "0 0 * * FRI#2", "--from", "2026-01-01T00:00:00Z", "-n", "1")
    assert "2nd Friday" in nth["description"], nth
    assert nth["fire_times"][0]["at"][:10] == "2026-01-09"


def test_cron_day_of_month_step_ors_with_day_of_week(kron_bin: str, tmp_path: Path) -> None:
    # `*/2` restricts the day of month, so it fires on odd days OR Mondays (not only Mondays,
    # and not only odd Mondays).
    cli = Cli(kron_bin, tmp_path)
    out = cli.json("cron", "0 0 */2 * MON", "--from", "2026-02-01T00:00:00Z", "-n", "5")
    assert [t["at"][:10] for t in out["fire_times"]] == [
        "2026-02-02",
        "2026-02-03",
        "2026-02-05",
        "2026-02-07",
        "2026-02-09",
    ]


@pytest.mark.parametrize("count", ["0", "10001", "-1", "many"])
def test_cron_rejects_a_bad_count(kron_bin: str, tmp_path: Path, count: str) -> None:
    result = Cli(kron_bin, tmp_path).run("cron", "0 0 * * *", "-n", count)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert count in result.stderr, result.stderr
    assert "never fires" not in result.stderr + result.stdout


def test_cron_says_when_the_listing_ends_before_n(kron_bin: str, tmp_path: Path) -> None:
    cli = Cli(kron_bin, tmp_path)
    result = cli.run("cron", "0 0 1 1 *", "--from", "4990-06-01T00:00:00Z", "-n", "100", "--json")
    assert result.returncode == 0, result.stderr
    times = json.loads(result.stdout)["fire_times"]
    assert 0 < len(times) < 100
    assert times[-1]["at"].startswith("4999-01-01")  # the last one: none in the year 5000
    assert f"only {len(times)} fire times before the end of the supported range" in result.stderr
    assert "4999" in result.stderr
    full = cli.run("cron", "0 0 1 1 *", "--from", "2026-06-01T00:00:00Z", "-n", "3")
    assert full.returncode == 0
    assert full.stderr == ""


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("cron", "0 25 * * *"), ("cron", "0 25 * * *", "hour 25 is out of range 0-23")),
        (("cron", "61 * * * *"), ("minute 61 is out of range 0-59",)),
        (("cron", "0 0 * * 9"), ("day-of-week 9 is out of range 0-7",)),
        (("cron", "0 0 * 13 *"), ("month 13 is out of range 1-12",)),
        (("cron", "0 0 * * FRI#6"), ("day-of-week", "FRI#6")),
        (("cron", "0 0 * * *", "--from", "2026-01-01T00:00:00+24:00"), ("from", "offset +24:00")),
        (
            ("cron", "0 0 * * *", "--from", "9999-12-31T23:59:59Z"),
            ("from", "out of range", "9999-12-30T22:00:00"),
        ),
        (("job", "history", "beat", "--limit", str(2**64)), ("--limit", str(2**64))),
        (("job", "history", "beat", "--limit", "-1"), ("--limit", "-1", "whole number")),
        (("job", "history", "beat", "-n", "ten"), ("--limit", "ten", "whole number")),
        (("job", "history", "beat", "--since", "1h60m"), ("since", "1h60m")),
        (("job", "history", "beat", "--since", "2026-01-01T00:00:00+24:00"), ("since", "offset +24:00")),
    ],
)
def test_cli_input_errors_name_the_option_and_the_value(
    stopped: Cli, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    result = stopped.run(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    assert "panicked" not in result.stderr
