"""Storage faults: a full disk, a read-only directory, truncated or garbled database files, and the
write-ahead log left by a crash.

The disk-full and read-only-file-system tests mount a small tmpfs, which needs root (CI runs as
root); elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import Children, Recorder, events, wait_until

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root (CI runs as root)")
PAGE = 4096


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "2m") -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted at ``path``, unmounted afterwards whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def run_until_disk_full(mnt: Path, beat: str, recorder: Recorder) -> Path:
    """Starts a runtime in ``mnt/data`` with a 100 ms timer, lets it run, then fills the file
    system until a commit fails (``storage_error`` set). Returns the filler file."""
    kron.schedule(beat, recorder.callback(beat), every="100ms")
    kron.start(mnt / "data")
    wait_until(lambda: recorder.n(beat) >= 3)
    filler = fill(mnt)
    wait_until(lambda: kron.status(beat)["storage_error"] is not None, message="storage_error")
    return filler


def fill(path: Path) -> Path:
    """Writes a filler file until the file system is full; returns it."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        block = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, block)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 512)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return filler


class LogCapture(logging.Handler):
    """Collects what the runtime logs to the ``kron`` logger (from any thread)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[tuple[float, int, str]] = []
        self.mu = threading.Lock()  # not `lock`: logging.Handler uses that name for its own lock

    def emit(self, record: logging.LogRecord) -> None:
        with self.mu:
            self.records.append((time.monotonic(), record.levelno, record.getMessage()))

    def messages(self, since: float = 0.0, level: int = logging.DEBUG) -> list[str]:
        with self.mu:
            return [m for t, lv, m in self.records if t >= since and lv >= level]


@pytest.fixture
def kron_log() -> Iterator[LogCapture]:
    handler = LogCapture()
    logger = logging.getLogger("kron")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def integrity(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def seqs_are_contiguous(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n, lo, hi = conn.execute("SELECT count(*), min(seq), max(seq) FROM events").fetchone()
    finally:
        conn.close()
    return n == 0 or (lo == 1 and hi == n)


def cli(data_dir: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``kron`` command line, as installed (``kron._cli``). Without ``COLUMNS`` (a terminal
    library may have exported it behind ``os.environ``'s back), so tables print rows whole."""
    code = "import kron._cli as c; c.main()"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-c", code, "--data-dir", str(data_dir), "--color", "never", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def make_database(data_dir: Path, seconds: float = 1.0) -> None:
    """A real database with history, made by a child process (the registry is process-global):
    a 20 ms timer and a cron run for ``seconds``, then a clean shutdown."""
    code = (
        "import kron, sys, time\n"
        "kron.schedule('a', lambda: None, every='20ms')\n"
        "kron.schedule('b', lambda: None, cron='*/2 * * * * *', max_attempts=2)\n"
        "kron.start(sys.argv[1]); time.sleep(float(sys.argv[2])); kron.shutdown()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(data_dir), str(seconds)], check=True, timeout=60)


# ---------------------------------------------------------------------------
# disk full
# ---------------------------------------------------------------------------


@needs_root
def test_disk_full_is_reported_runs_are_held_and_timers_stay(
    tmp_path: Path, names: Any, recorder: Recorder, kron_log: LogCapture
) -> None:
    """When a commit fails for lack of space: the error is logged and shown in status(), no run
    starts without its record, timers stay usable in memory (status, list, schedule)."""
    beat, late = names("beat"), names("late")
    with tmpfs(tmp_path / "mnt") as mnt:
        run_until_disk_full(mnt, beat, recorder)
        error = kron.status(beat)["storage_error"]
        assert "kron.db" in error and "full" in error, error
        assert any("could not write to storage" in m for m in kron_log.messages(level=logging.ERROR))
        # Every entry of list() carries it too.
        assert all(t["storage_error"] == error for t in kron.list())
        # Runs are held: nothing whose RUN_STARTED is not durable is invoked.
        time.sleep(0.5)
        held = recorder.n(beat)
        time.sleep(2.5)
        assert recorder.n(beat) == held, "callbacks ran although their RUN_STARTED could not be written"
        # Timers are still there, and new ones can be registered (kept in memory).
        assert kron.status(beat)["state"] in ("scheduled", "running")
        kron.schedule(late, recorder.callback(late), every="1h")
        assert kron.status(late) is not None
        kron.shutdown(timeout=5)


@needs_root
def test_disk_full_recovers_when_space_returns(
    tmp_path: Path, names: Any, recorder: Recorder, kron_log: LogCapture
) -> None:
    """Space returns: a warning says storage is writable again, storage_error clears, the held runs
    start, and the runtime stays healthy; history is complete and the file intact."""
    beat, late = names("beat"), names("late")
    with tmpfs(tmp_path / "mnt") as mnt:
        filler = run_until_disk_full(mnt, beat, recorder)
        kron.schedule(late, recorder.callback(late), after="200ms")  # registered during the outage
        time.sleep(1.5)
        held = recorder.n(beat)
        filler.unlink()
        freed = time.monotonic()
        wait_until(lambda: kron.status(beat)["storage_error"] is None, timeout=10, message="recovery")
        assert any("writable again" in m for m in kron_log.messages(since=freed, level=logging.WARNING))
        wait_until(lambda: recorder.n(beat) >= held + 5 and recorder.n(late) == 1, message="runs resume")
        # And it stays healthy: a 100 ms timer on a 2 MB file system must not fill it again.
        time.sleep(6)
        assert kron.status(beat)["storage_error"] is None, kron.status(beat)["storage_error"]
        errors_after = [m for m in kron_log.messages(since=freed + 1, level=logging.ERROR) if "storage" in m]
        assert errors_after == [], errors_after[:3]
        kron.shutdown(timeout=5)
        db = mnt / "data" / "kron.db"
        assert integrity(db) == ["ok"]
        assert seqs_are_contiguous(db)
        started = len(events(beat, "RUN_STARTED"))
        assert started >= recorder.n(beat)  # every invocation has its RUN_STARTED


@needs_root
def test_kron_does_not_fill_a_small_disk_by_itself(tmp_path: Path, names: Any, recorder: Recorder) -> None:
    """A tiny database on a 2 MB file system: the write-ahead log must be checkpointed before it
    eats the disk (20 runs/s for 8 s write a few hundred small rows). On a loaded machine the
    checkpoint may lag and a commit fail now and then; it must not stay failed."""
    beat = names("beat")
    with tmpfs(tmp_path / "mnt") as mnt:
        kron.schedule(beat, recorder.callback(beat), every="50ms")
        kron.start(mnt / "data")
        failing = 0
        samples = 0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            samples += 1
            failing += kron.status(beat)["storage_error"] is not None
            time.sleep(0.1)
        wal = mnt / "data" / "kron.db-wal"
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        try:
            wait_until(lambda: kron.status(beat)["storage_error"] is None, timeout=5, message="healthy")
        finally:
            kron.shutdown(timeout=5)
        assert failing <= samples // 10, (
            f"storage failing in {failing} of {samples} samples (WAL {wal_bytes} bytes)"
        )


@needs_root
def test_disk_full_at_start_is_a_clear_error(tmp_path: Path, names: Any) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        (mnt / "data").mkdir()
        fill(mnt)
        kron.schedule(names("x"), lambda: None, every="1h")
        with pytest.raises(kron.StorageError) as info:
            kron.start(mnt / "data")
        assert str(mnt / "data") in str(info.value)
        assert info.value.path


@needs_root
def test_a_database_written_through_an_outage_reopens_intact(
    tmp_path: Path, names: Any, recorder: Recorder
) -> None:
    """Stopping while commits fail loses only the uncommitted decisions: the file is intact and
    the next start (with space) carries on from the last commit."""
    beat = names("beat")
    with tmpfs(tmp_path / "mnt") as mnt:
        run_until_disk_full(mnt, beat, recorder)
        kron.shutdown(timeout=2)
        copy = tmp_path / "copy"
        shutil.copytree(mnt / "data", copy, ignore=shutil.ignore_patterns("control.*"))
    before = recorder.n(beat)
    kron.start(copy)
    wait_until(lambda: recorder.n(beat) >= before + 3, message="runs after restart")
    kron.shutdown()
    assert integrity(copy / "kron.db") == ["ok"]
    assert seqs_are_contiguous(copy / "kron.db")


# ---------------------------------------------------------------------------
# read-only directory
# ---------------------------------------------------------------------------


def _read_only(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)


@needs_root
@pytest.mark.parametrize("where", ["existing-database", "empty-directory", "missing-directory"])
def test_read_only_file_system_is_a_clear_error_at_start(tmp_path: Path, names: Any, where: str) -> None:
    with tmpfs(tmp_path / "mnt", size="4m") as mnt:
        data = mnt / "data"
        if where == "existing-database":
            make_database(data, seconds=0.3)
        elif where == "empty-directory":
            data.mkdir()
        before = (data / "kron.db").read_bytes() if where == "existing-database" else None
        _read_only(mnt)
        kron.schedule(names("y"), lambda: None, every="1h")
        with pytest.raises(kron.StorageError) as info:
            kron.start(data)
        message = str(info.value)
        assert "read-only" in message, message
        assert str(data) in message
        if before is not None:
            assert (data / "kron.db").read_bytes() == before
            # The data stays readable: the command line reads it without writing.
            listed = cli(data, "job", "list")
            assert listed.returncode == 0, listed.stderr


def test_read_only_directory_by_permissions_is_a_clear_error(tmp_path: Path, names: Any) -> None:
    """Without root the same check by file permissions (root ignores them, so skip there)."""
    if IS_ROOT:
        pytest.skip("root ignores directory permissions; covered by the read-only mount test")
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    try:
        kron.schedule(names("x"), lambda: None, every="1h")
        with pytest.raises(kron.StorageError) as info:
            kron.start(data)
        assert str(data) in str(info.value)
    finally:
        data.chmod(0o755)


# ---------------------------------------------------------------------------
# truncated and garbled files
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a cleanly closed database with a few hundred events (made in a child, so the
    module's own runtime state is untouched)."""
    d = tmp_path_factory.mktemp("pristine")
    make_database(d / "data", seconds=2.5)
    data = (d / "data" / "kron.db").read_bytes()
    assert len(data) >= 8 * PAGE
    return data


def _damaged(data: bytes, how: str) -> bytes:
    n = len(data)
    if how == "truncated-to-50-bytes":
        return data[:50]
    if how == "truncated-to-header":
        return data[:100]
    if how == "truncated-mid-page":
        return data[: PAGE + 1]
    if how == "truncated-to-half":
        return data[: (n // 2) // PAGE * PAGE]
    if how == "truncated-by-one-page":
        return data[: n - PAGE]
    if how == "magic-garbled":
        return b"SQLite format 4\0" + data[16:]
    if how == "page-size-garbled":
        return data[:16] + b"\x03\x00" + data[18:]
    if how == "schema-page-garbled":
        return data[:100] + bytes((b * 7 + 13) & 0xFF for b in data[100:PAGE]) + data[PAGE:]
    if how == "random-bytes":
        return bytes((i * 2654435761 >> 13) & 0xFF for i in range(n))
    if how == "zeros":
        return b"\0" * n
    raise AssertionError(how)


DAMAGE = [
    "truncated-to-50-bytes",
    "truncated-to-header",
    "truncated-mid-page",
    "truncated-to-half",
    "truncated-by-one-page",
    "magic-garbled",
    "page-size-garbled",
    "schema-page-garbled",
    "random-bytes",
    "zeros",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_database_is_refused_naming_the_file_and_left_untouched(
    tmp_path: Path, names: Any, pristine_db: bytes, how: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "kron.db"
    damaged = _damaged(pristine_db, how)
    db.write_bytes(damaged)
    kron.schedule(names("x"), lambda: None, every="1h")
    with pytest.raises(kron.CorruptStorageError) as info:
        kron.start(data)
    assert str(db) in str(info.value)
    assert info.value.path == str(db)
    assert db.read_bytes() == damaged, "a refused file must not be written"
    assert not (data / "kron.db-wal").exists() or (data / "kron.db-wal").stat().st_size == 0
    doctor = cli(data, "doctor")
    assert doctor.returncode == 1
    assert "FAIL" in doctor.stdout and "kron.db" in doctor.stdout, doctor.stdout


def _garble_page(data: bytes, page: int) -> bytes:
    start = (page - 1) * PAGE
    junk = bytes(((i * 131 + page) ^ 0x5A) & 0xFF for i in range(PAGE))
    return data[:start] + junk + data[start + PAGE :]


def _oldest_history_page(data: bytes) -> int:
    """The first leaf page of the events table (the oldest history), which start-up never reads."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"kron-leaf-{os.getpid()}.db"
    tmp.write_bytes(data)
    try:
        conn = sqlite3.connect(tmp)
        try:
            row = conn.execute(
                "SELECT min(pageno) FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
            ).fetchone()
        except sqlite3.OperationalError:  # no dbstat in this SQLite build
            row = (_root_pages(data)["events"] + 3,)
        conn.close()
    finally:
        tmp.unlink()
    return int(row[0])


def _root_pages(data: bytes) -> dict[str, int]:
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"kron-roots-{os.getpid()}.db"
    tmp.write_bytes(data)
    try:
        conn = sqlite3.connect(tmp)
        roots = dict(conn.execute("SELECT name, rootpage FROM sqlite_schema WHERE rootpage > 0"))
        conn.close()
    finally:
        tmp.unlink()
    return roots


@pytest.mark.parametrize("table", ["timer_defs", "timer_state", "runs", "events"])
def test_garbled_table_root_is_refused_without_writing(
    tmp_path: Path, names: Any, pristine_db: bytes, table: str
) -> None:
    """Damage in a page start-up reads (the root of a timer, run or event table): start refuses, names
    the file, and leaves every byte as it was."""
    page = _root_pages(pristine_db)[table]
    damaged = _garble_page(pristine_db, page)
    data = tmp_path / "data"
    data.mkdir()
    (data / "kron.db").write_bytes(damaged)
    kron.schedule(names("x"), lambda: None, every="1h")
    with pytest.raises(kron.CorruptStorageError) as info:
        kron.start(data)
    assert str(data / "kron.db") in str(info.value)
    after = (data / "kron.db").read_bytes()
    changed = [i for i in range(min(len(after), len(damaged))) if after[i] != damaged[i]]
    assert after == damaged, f"a refused file was written: bytes {changed[:8]} changed"


def test_garbled_history_page_is_found_by_doctor(tmp_path: Path, pristine_db: bytes) -> None:
    """Damage inside the history is also explained by `kron doctor`."""
    page = _oldest_history_page(pristine_db)
    data = tmp_path / "data"
    data.mkdir()
    (data / "kron.db").write_bytes(_garble_page(pristine_db, page))
    doctor = cli(data, "doctor")
    assert doctor.returncode == 1
    assert "integrity" in doctor.stdout and "FAIL" in doctor.stdout, doctor.stdout


def test_garbled_history_page_is_refused_at_start(tmp_path: Path, names: Any, pristine_db: bytes) -> None:
    """Databases up to 128 MB get a full quick_check at open, so damage anywhere is refused."""
    page = _oldest_history_page(pristine_db)
    data = tmp_path / "data"
    data.mkdir()
    (data / "kron.db").write_bytes(_garble_page(pristine_db, page))
    kron.schedule(names("x"), lambda: None, every="1h")
    with pytest.raises(kron.CorruptStorageError):
        kron.start(data)


# ---------------------------------------------------------------------------
# the write-ahead log left by a crash
# ---------------------------------------------------------------------------

CRASH_CHILD = """
import sys
name, data_dir, ready = sys.argv[1], sys.argv[2], sys.argv[3]
n = {"n": 0}
def beat():
    n["n"] += 1
    if n["n"] == 15:
        touch(ready)
kron.schedule(name, beat, every="20ms")
kron.start(data_dir)
time.sleep(60)
"""


def _crash_leaving_wal(children: Children, name: str, data: Path, tmp_path: Path) -> int:
    """Runs a child that commits for a while and is SIGKILLed; returns the committed event count."""
    ready = tmp_path / "ready"
    proc = children.spawn(CRASH_CHILD, name, data, ready)
    children.wait_for_file(proc, ready)
    children.kill(proc)
    wal = data / "kron.db-wal"
    assert wal.exists() and wal.stat().st_size > 0, "the crash should leave a write-ahead log"
    conn = sqlite3.connect(f"file:{data / 'kron.db'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def test_wal_left_by_a_crash_is_read_and_recovered(
    tmp_path: Path, children: Children, names: Any, recorder: Recorder
) -> None:
    name = names("beat")
    data = tmp_path / "data"
    committed = _crash_leaving_wal(children, name, data, tmp_path)
    assert committed > 10
    # Readers see the committed transactions in the WAL before any restart.
    listed = cli(data, "job", "list")
    assert listed.returncode == 0 and name in listed.stdout, listed.stdout + listed.stderr
    kron.schedule(name, recorder.callback(name), every="20ms")
    kron.start(data)
    wait_until(lambda: recorder.n(name) >= 3)
    kron.shutdown()
    history = events(name)
    assert len(history) >= committed + 3
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)
    # A clean shutdown leaves one self-contained file.
    assert not (data / "kron.db-wal").exists()
    assert integrity(data / "kron.db") == ["ok"]


@pytest.mark.parametrize("damage", ["shm-deleted", "torn-wal-tail", "garbage-appended-to-wal"])
def test_damaged_wal_after_a_crash_recovers_to_the_last_commit(
    tmp_path: Path, children: Children, names: Any, recorder: Recorder, damage: str
) -> None:
    """The -shm index lost, or the log's last frame torn by the crash: start recovers every
    complete commit and goes on."""
    name = names("beat")
    data = tmp_path / "data"
    committed = _crash_leaving_wal(children, name, data, tmp_path)
    wal = data / "kron.db-wal"
    if damage == "shm-deleted":
        (data / "kron.db-shm").unlink()
    elif damage == "torn-wal-tail":
        size = wal.stat().st_size
        with open(wal, "r+b") as f:
            f.truncate(size - 1000)
    else:
        with open(wal, "ab") as f:
            f.write(bytes(range(256)) * 20)
    kron.schedule(name, recorder.callback(name), every="20ms")
    kron.start(data)
    wait_until(lambda: recorder.n(name) >= 3)
    kron.shutdown()
    assert integrity(data / "kron.db") == ["ok"]
    assert seqs_are_contiguous(data / "kron.db")
    kinds = [e["kind"] for e in events(name)]
    assert kinds[0] == "TIMER_CREATED"
    if damage != "torn-wal-tail":
        assert len(kinds) >= committed + 3


# ---------------------------------------------------------------------------
# hostile bytes: the fuzz targets' smoke run
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo (the Rust toolchain)")
def test_fuzz_targets_smoke() -> None:
    """The cargo-fuzz targets (cron, duration and datetime parsers, stored rows, whole database
    files) on their seeds plus a few seconds of random mutations each, on stable Rust without
    libFuzzer. Shares the workspace's target directory, so after `cargo test --workspace` only
    the fuzz crate itself compiles. The real fuzzing: docs/reliability.md."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(root / "target"))
    env.setdefault("KRON_FUZZ_SECS", "2")
    proc = subprocess.run(
        [
            "cargo",
            "test",
            "--quiet",
            "--no-default-features",
            "--manifest-path",
            str(root / "fuzz" / "Cargo.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
        env=env,
        cwd=str(root),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
