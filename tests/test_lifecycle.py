"""start() / shutdown(): non-blocking start, already started, data-dir lock, restart, corrupt storage."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import Children, Recorder, count, events, hold, read_json, wait_until


def noop() -> None:
    pass


def test_start_is_non_blocking_and_runs_timers(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    assert kron.start(data_dir) is None  # returns while the runtime works in the background
    wait_until(lambda: recorder.n(name) >= 2)


def test_start_creates_the_data_dir_with_a_sqlite_db(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "deeper" / "data"
    kron.start(str(target))
    assert target.is_dir()
    db = target / "kron.db"
    assert db.is_file()
    with open(db, "rb") as f:
        assert f.read(16) == b"SQLite format 3\x00"


def test_second_start_in_same_process_raises_already_started(data_dir: str, tmp_path: Path) -> None:
    kron.start(data_dir)
    with pytest.raises(RuntimeError, match=r"(?i)already started") as info:
        kron.start(data_dir)
    assert isinstance(info.value, kron.AlreadyStartedError)
    assert isinstance(info.value, kron.KronError)
    # also with another directory
    with pytest.raises(kron.AlreadyStartedError, match=r"(?i)already started"):
        kron.start(str(tmp_path / "other"))
    # the first runtime is still alive
    kron.status("anything-at-all")


def test_shutdown_when_not_started_is_safe() -> None:
    kron.shutdown()
    kron.shutdown(timeout=0.1)


def test_shutdown_twice_is_safe(data_dir: str) -> None:
    kron.start(data_dir)
    kron.shutdown(timeout=5)
    kron.shutdown(timeout=5)
    kron.shutdown()


def test_start_again_after_shutdown_same_dir(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 1)
    first = events(name)
    kron.shutdown(timeout=5)
    n_after_shutdown = recorder.n(name)
    hold(0.5)
    assert recorder.n(name) == n_after_shutdown, "a run started after shutdown() returned"

    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") > len([e for e in first if e["kind"] == "RUN_SUCCEEDED"]))
    again = events(name)
    # history survives the restart: the old events are still there, in the same order
    assert [e["seq"] for e in again[: len(first)]] == [e["seq"] for e in first]
    assert [e["kind"] for e in again].count("TIMER_CREATED") == 1
    assert "TIMER_UPDATED" not in [e["kind"] for e in again]


def test_start_again_after_shutdown_other_dir(name: str, tmp_path: Path, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), after="100ms")
    kron.start(str(tmp_path / "one"))
    wait_until(lambda: count(name, "RUN_SUCCEEDED") == 1)
    kron.shutdown(timeout=5)
    kron.start(str(tmp_path / "two"))
    # a fresh directory knows nothing of the first one: the timer is created anew there
    wait_until(lambda: count(name, "RUN_SUCCEEDED") == 1 and recorder.n(name) == 2)
    assert count(name, "TIMER_CREATED") == 1


@pytest.mark.parametrize("bad", [0, -1])
def test_start_rejects_bad_max_workers(data_dir: str, bad: int) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        kron.start(data_dir, max_workers=bad)
    assert "max_workers" in str(info.value)
    # nothing half-started: a good start works afterwards
    kron.start(data_dir, max_workers=2)


def test_max_workers_bounds_concurrency(names: Any, data_dir: str, recorder: Recorder) -> None:
    timers = [names(f"w{i}") for i in range(4)]
    for t in timers:
        kron.schedule(t, recorder.callback(t, sleep=0.5), every="100ms", overlap="allow")
    kron.start(data_dir, max_workers=2)
    wait_until(lambda: sum(recorder.finished(t) for t in timers) >= 8)
    assert recorder.total_max_active <= 2, recorder.total_max_active


# ---------------------------------------------------------------------------
# another process owns the directory
# ---------------------------------------------------------------------------

OWNER = """
data_dir, name, ledger, ready = sys.argv[1:5]
def job():
    append(ledger, {"t": time.time()})
kron.schedule(name, job, every="200ms")
kron.start(data_dir)
touch(ready)
time.sleep(120)
"""


def test_second_process_is_refused_with_owner_pid(
    name: str, names: Any, data_dir: str, tmp_path: Path, children: Children, recorder: Recorder
) -> None:
    ledger, ready = tmp_path / "ledger", tmp_path / "ready"
    owner = children.spawn(OWNER, data_dir, name, ledger, ready)
    children.wait_for_file(owner, ready)

    mine = names("mine")
    kron.schedule(mine, recorder.callback(mine), every="200ms")
    with pytest.raises(RuntimeError) as info:
        kron.start(data_dir)
    err = info.value
    assert isinstance(err, kron.DataDirLockedError)
    assert isinstance(err, kron.KronError)
    assert err.pid == owner.pid
    assert str(owner.pid) in str(err)
    assert os.path.realpath(err.data_dir) == os.path.realpath(data_dir)
    assert os.path.basename(data_dir) in str(err)
    assert "already started" not in str(err).lower()

    # the refused start changed nothing: our timer never ran, we are not started ...
    hold(0.5)
    assert recorder.n(mine) == 0
    # ... and the owner carries on running its timer
    n = len(ledger.read_text().splitlines())
    wait_until(lambda: len(ledger.read_text().splitlines()) >= n + 3)
    kron.start(str(tmp_path / "elsewhere"))  # not half-started: a start elsewhere works
    kron.shutdown(timeout=5)

    # once the owner is gone (even by kill -9), the directory can be opened
    children.kill(owner)
    kron.start(data_dir)
    wait_until(lambda: count(mine, "RUN_SUCCEEDED") >= 1)
    assert kron.status(name)["state"] == "orphaned"


def test_refused_start_names_the_directory_in_the_message(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    ledger, ready = tmp_path / "ledger", tmp_path / "ready"
    owner = children.spawn(OWNER, data_dir, name, ledger, ready)
    children.wait_for_file(owner, ready)
    with pytest.raises(kron.DataDirLockedError) as info:
        kron.start(data_dir)
    msg = str(info.value)
    assert data_dir in msg or os.path.realpath(data_dir) in msg, msg


# ---------------------------------------------------------------------------
# corrupt storage
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not a database at all\n" * 100, id="text"),
        pytest.param(os.urandom(8192), id="random-bytes"),
        pytest.param(b"SQLite format 3\x00" + b"\xff" * 8176, id="bad-header-page"),
    ],
)
def test_corrupt_db_is_refused_naming_the_file(name: str, data_dir: str, content: bytes) -> None:
    Path(data_dir).mkdir(parents=True)
    db = Path(data_dir) / "kron.db"
    db.write_bytes(content)
    kron.schedule(name, noop, every="1h")
    with pytest.raises(RuntimeError) as info:
        kron.start(data_dir)
    assert isinstance(info.value, kron.CorruptStorageError)
    assert isinstance(info.value, kron.StorageError)
    assert "kron.db" in str(info.value)
    # never silently start empty: the file is left as it was
    assert db.read_bytes() == content
    # and nothing is half-started: a start on a good directory works
    kron.start(str(Path(data_dir).parent / "good"))


def test_corrupted_existing_db_is_refused(name: str, data_dir: str) -> None:
    kron.schedule(name, noop, every="1h")
    kron.start(data_dir)
    kron.shutdown(timeout=5)
    db = Path(data_dir) / "kron.db"
    for suffix in ("-wal", "-shm"):
        side = Path(str(db) + suffix)
        if side.exists():
            side.unlink()
    raw = bytearray(db.read_bytes())
    raw[0:16] = b"NOT SQLITE AT AL"
    db.write_bytes(bytes(raw))
    with pytest.raises(kron.CorruptStorageError, match=r"kron\.db"):
        kron.start(data_dir)
    assert db.read_bytes() == bytes(raw)


# ---------------------------------------------------------------------------
# shutdown(timeout) with a callback that blocks
# ---------------------------------------------------------------------------

BLOCKER = """
data_dir, name, started, out, mode = sys.argv[1:6]
def job(ctx):
    append(started, {"attempt": ctx["attempt"], "run_id": ctx["run_id"], "pid": os.getpid()})
    if mode == "block":
        time.sleep(30)
kron.schedule(name, job, after="50ms", max_attempts=3)
kron.start(data_dir)
if mode == "block":
    wait_for(lambda: os.path.exists(started), timeout=20)
    time.sleep(0.2)
    t0 = time.monotonic()
    kron.shutdown(timeout=1.0)
    dump(out, {"elapsed": time.monotonic() - t0})
else:
    wait_for(lambda: any(e["kind"] in ("RUN_SUCCEEDED", "RUN_DEAD") for e in history_of(name)))
    dump(out, {"history": history_of(name), "status": kron.status(name)})
    kron.shutdown(timeout=5)
finish()
"""


def test_shutdown_timeout_returns_on_time_with_blocked_callback(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    started, out = tmp_path / "started", tmp_path / "out.json"
    # child 1: a callback blocks for 30 s; shutdown(timeout=1) must return long before that
    children.run(BLOCKER, data_dir, name, started, out, "block", timeout=25)
    elapsed = read_json(out)["elapsed"]
    assert elapsed >= 0.8, f"shutdown did not wait for the active run ({elapsed:.2f}s)"
    assert elapsed < 10, f"shutdown(timeout=1) took {elapsed:.2f}s"

    # child 2: the abandoned run is RUN_INTERRUPTED and retried as attempt 2
    out.unlink()
    children.run(BLOCKER, data_dir, name, started, out, "normal", timeout=60)
    result = read_json(out)
    hist = result["history"]
    kinds = [e["kind"] for e in hist]
    assert "RUN_INTERRUPTED" in kinds, kinds
    first_start = next(e for e in hist if e["kind"] == "RUN_STARTED")
    interrupted = next(e for e in hist if e["kind"] == "RUN_INTERRUPTED")
    assert first_start["attempt"] == 1
    assert interrupted["run_id"] == first_start["run_id"]
    ok = [e for e in hist if e["kind"] == "RUN_SUCCEEDED"]
    assert len(ok) == 1 and ok[0]["attempt"] == 2, hist
    assert result["status"]["state"] == "completed"


def test_shutdown_waits_for_short_active_run(
    name: str, data_dir: str, tmp_path: Path, recorder: Recorder
) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.5), after="50ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) == 1)
    kron.shutdown(timeout=10)
    # the run was allowed to finish within the timeout
    assert recorder.finished(name) == 1
    kron.start(data_dir)
    hist = events(name)
    assert [e["kind"] for e in hist].count("RUN_SUCCEEDED") == 1
    assert "RUN_INTERRUPTED" not in [e["kind"] for e in hist]
    hold(0.5)
    assert recorder.n(name) == 1


# ---------------------------------------------------------------------------
# data_dir forms and bad data dirs
# ---------------------------------------------------------------------------

DEFAULT_DIR = """
name, = sys.argv[1:2]
kron.schedule(name, lambda: None, every="1h")
kron.start()
ok = os.path.isfile(os.path.join(".kron", "kron.db"))
kron.shutdown()
print("DB" if ok else "NO-DB")
finish()
"""


def test_default_data_dir_is_dot_kron_in_cwd(name: str, children: Children, tmp_path: Path) -> None:
    out = children.run(DEFAULT_DIR, name)  # the child runs with cwd = tmp_path
    assert out.strip() == "DB"
    assert (tmp_path / ".kron" / "kron.db").is_file()


def test_data_dir_may_be_a_path_with_spaces_and_unicode(
    name: str, tmp_path: Path, recorder: Recorder
) -> None:
    target = tmp_path / "my data \u00e9\u65e5"
    kron.schedule(name, recorder.callback(name), after="50ms")
    kron.start(target)  # a pathlib.Path
    wait_until(lambda: recorder.n(name) == 1)
    assert (target / "kron.db").is_file()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "not-a-dir"
    f.write_text("hello")
    with pytest.raises(kron.InvalidArgumentError) as info:
        kron.start(str(f))
    assert "not-a-dir" in str(info.value)
    assert "data_dir" in str(info.value)
    assert isinstance(info.value, ValueError)
    # Also the StorageError it used to be, for code that catches that.
    assert isinstance(info.value, kron.StorageError)
    assert f.read_text() == "hello"
    kron.start(str(tmp_path / "good"))


def test_kron_db_that_is_a_directory_is_refused(data_dir: str) -> None:
    (Path(data_dir) / "kron.db").mkdir(parents=True)
    with pytest.raises(kron.CorruptStorageError, match=r"kron\.db"):
        kron.start(data_dir)


def test_max_workers_is_keyword_only(data_dir: str) -> None:
    with pytest.raises(TypeError):
        kron.start(data_dir, 4)  # type: ignore[misc]
    kron.start(data_dir, max_workers=4)
