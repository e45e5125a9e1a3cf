"""status() / list() / history(): keys, types, states, ordering, before start()."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kron
from conftest import (
    EVENT_KINDS,
    HISTORY_KEYS,
    STATUS_KEYS,
    Children,
    Recorder,
    count,
    events,
    hold,
    is_aware_utc,
    read_json,
    wait_until,
)

UTC = timezone.utc


def noop() -> None:
    pass


def test_status_unknown_is_none(data_dir: str) -> None:
    assert kron.status("never-registered-xyz") is None
    kron.start(data_dir)
    assert kron.status("never-registered-xyz") is None


def test_status_keys_and_values(name: str, data_dir: str) -> None:
    def my_cron_job() -> None:
        pass

    kron.schedule(
        name, my_cron_job, cron="0 8 * * *", timezone="Europe/Berlin", max_attempts=5, overlap="skip"
    )
    kron.start(data_dir)
    st = kron.status(name)
    assert isinstance(st, dict)
    assert STATUS_KEYS <= set(st), STATUS_KEYS - set(st)
    assert isinstance(st["id"], str) and st["id"]
    assert st["state"] == "scheduled"
    assert st["schedule"] == "cron 0 8 * * * (Europe/Berlin)"
    assert st["timezone"] == "Europe/Berlin"
    assert "my_cron_job" in st["fn_name"]
    assert is_aware_utc(st["next_run_at"])
    assert st["next_run_at"] > datetime.now(UTC)
    assert st["last_run_at"] is None
    assert st["last_status"] is None
    assert st["last_error"] is None
    assert st["last_duration_ms"] is None
    assert st["run_count"] == 0
    assert st["failure_count"] == 0
    assert st["max_attempts"] == 5
    assert st["overlap"] == "skip"


def test_status_every_schedule_text(name: str) -> None:
    kron.schedule(name, noop, every="30m")
    st = kron.status(name)
    assert st["schedule"] == "every 30m"
    assert st["timezone"] == "UTC"
    assert st["max_attempts"] == 3
    assert st["overlap"] == "delay"


def test_status_after_runs(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.05), every="200ms")
    t0 = datetime.now(UTC)
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["run_count"] >= 2)
    st = kron.status(name)
    assert is_aware_utc(st["last_run_at"])
    assert t0 - timedelta(seconds=1) <= st["last_run_at"] <= datetime.now(UTC) + timedelta(seconds=1)
    assert st["last_status"] == "OK"
    assert st["last_error"] is None
    assert isinstance(st["last_duration_ms"], (int, float)) and not isinstance(st["last_duration_ms"], bool)
    assert st["last_duration_ms"] >= 40  # the callback sleeps 50 ms
    assert st["failure_count"] == 0
    # next_run_at: an aware UTC datetime, or None while a run is in progress (with the default
    # overlap="delay" the next run is scheduled from the finish of the current one)
    assert is_aware_utc(st["next_run_at"]) or (st["next_run_at"] is None and st["state"] == "running"), st


def test_state_running(name: str, data_dir: str) -> None:
    release = threading.Event()

    def blocker() -> None:
        release.wait(20)

    kron.schedule(name, blocker, after="50ms")
    kron.start(data_dir)
    try:
        wait_until(lambda: kron.status(name)["state"] == "running")
    finally:
        release.set()
    wait_until(lambda: kron.status(name)["state"] == "completed")
    st = kron.status(name)
    assert st["run_count"] == 1
    assert st["last_status"] == "OK"


def test_state_dead_and_failed_statuses(name: str, data_dir: str) -> None:
    def fails() -> None:
        raise RuntimeError("nope nope")

    kron.schedule(name, fails, after="50ms", max_attempts=2)
    kron.start(data_dir)
    st = wait_until(lambda: (s := kron.status(name))["state"] == "retrying" and s)
    assert st["last_status"].startswith("FAILED: ")
    assert "nope nope" in st["last_status"]
    assert st["failure_count"] == 1
    st = wait_until(lambda: (s := kron.status(name))["state"] == "dead" and s, timeout=20)
    assert st["last_status"].startswith("DEAD: ")
    assert "nope nope" in st["last_status"]
    assert "nope nope" in st["last_error"]
    assert st["failure_count"] == 2


def test_state_skipped_overlap_status(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.8), every="100ms", overlap="skip")
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["last_status"] == "SKIPPED_OVERLAP", interval=0.01)


def test_list_sorted_by_id_and_complete(names: Any, data_dir: str) -> None:
    mine = [names(h) for h in ("zeta", "alpha", "mid")]
    for n in mine:
        kron.schedule(n, noop, every="1h")
    before = kron.list()
    ids = [t["id"] for t in before]
    assert ids == sorted(ids)
    assert {kron.status(n)["id"] for n in mine} <= set(ids)
    kron.start(data_dir)
    after = kron.list()
    ids = [t["id"] for t in after]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    for t in after:
        assert STATUS_KEYS <= set(t)
    assert {kron.status(n)["id"] for n in mine} <= set(ids)


def test_history_shape_and_order(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 3)
    kron.pause(name)
    kron.resume(name)
    hist = kron.history(name)
    assert isinstance(hist, list) and hist
    for e in hist:
        assert HISTORY_KEYS <= set(e), e
        assert e["kind"] in EVENT_KINDS
        assert isinstance(e["ts"], datetime) and e["ts"].tzinfo is not None
    seqs = [e["seq"] for e in hist]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "oldest first"
    stamps = [e["ts"] for e in hist]
    assert stamps == sorted(stamps)
    assert hist[0]["kind"] == "TIMER_CREATED"
    kinds = [e["kind"] for e in hist]
    assert "TIMER_PAUSED" in kinds and "TIMER_RESUMED" in kinds
    assert kinds.index("TIMER_PAUSED") < kinds.index("TIMER_RESUMED")

    # one successful run: RUN_DUE -> RUN_STARTED -> RUN_SUCCEEDED sharing a run id
    ok = next(e for e in hist if e["kind"] == "RUN_SUCCEEDED")
    same = [e for e in hist if e["run_id"] == ok["run_id"]]
    assert [e["kind"] for e in same] == ["RUN_DUE", "RUN_STARTED", "RUN_SUCCEEDED"]
    assert all(e["attempt"] == 1 for e in same[1:])
    assert ok["run_id"].startswith("run_")
    assert isinstance(ok["duration_ms"], (int, float)) and ok["duration_ms"] >= 0


def test_history_limit(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 5)
    kron.pause(name)
    hold(0.5)  # let an in-flight run finish
    full = events(name)
    assert len(full) >= 10
    two = kron.history(name, limit=2)
    assert len(two) == 2
    assert two[0]["seq"] < two[1]["seq"]
    # a contiguous slice of the full history
    full_seqs = [e["seq"] for e in full]
    i = full_seqs.index(two[0]["seq"])
    assert full_seqs[i + 1] == two[1]["seq"]
    assert [e["seq"] for e in kron.history(name)] == full_seqs[-100:]


def test_history_retrying_has_next_attempt_at(name: str, data_dir: str) -> None:
    def fails() -> None:
        raise ValueError("x")

    kron.schedule(name, fails, after="50ms", max_attempts=2)
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_RETRYING") == 1)
    [e] = events(name, "RUN_RETRYING")
    assert is_aware_utc(e["next_attempt_at"]) or (
        isinstance(e["next_attempt_at"], datetime) and e["next_attempt_at"].tzinfo is not None
    )
    assert e["next_attempt_at"] > e["ts"]
    assert e["next_attempt_at"] < e["ts"] + timedelta(seconds=10)


def test_history_of_unknown_name_after_start(data_dir: str) -> None:
    kron.start(data_dir)
    try:
        hist = kron.history("never-registered-abc")
    except kron.TimerNotFoundError:
        return
    assert hist == []


STATUS_BEFORE_START = """
out, = sys.argv[1:2]
res = {}
def job_a():
    pass
@kron.schedule("b-timer", every="30m", max_attempts=4)
def job_b(ctx):
    pass
kron.schedule("a-timer", job_a, cron="0 8 * * *", timezone="Europe/Berlin", overlap="allow")
res["a"] = kron.status("a-timer")
res["b"] = kron.status("b-timer")
res["unknown"] = kron.status("nope")
res["list"] = kron.list()
try:
    kron.history("a-timer")
except Exception as e:
    res["history_error"] = [type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)]
else:
    res["history_error"] = None
kron.shutdown()
dump(out, res)
finish()
"""


def test_status_and_list_before_start_in_fresh_process(tmp_path: Path, children: Children) -> None:
    out = tmp_path / "out.json"
    children.run(STATUS_BEFORE_START, out)
    res = read_json(out)
    a, b = res["a"], res["b"]
    assert a is not None and b is not None
    assert STATUS_KEYS <= set(a)
    assert a["schedule"] == "cron 0 8 * * * (Europe/Berlin)"
    assert a["timezone"] == "Europe/Berlin"
    assert a["overlap"] == "allow"
    assert "job_a" in a["fn_name"]
    assert a["state"] == "scheduled"
    assert b["schedule"] == "every 30m"
    assert b["max_attempts"] == 4
    assert "job_b" in b["fn_name"]
    assert res["unknown"] is None
    ids = [t["id"] for t in res["list"]]
    assert ids == sorted(ids)
    assert len(ids) == 2
    assert {a["id"], b["id"]} == set(ids)
    # history before the first start() raises NotStartedError
    err = res["history_error"]
    assert err is not None, "history() before start() must raise"
    assert err[0] == "NotStartedError"
    assert "KronError" in err[1]


EXTREME = """
data_dir, out = sys.argv[1:3]
res = {"accepted": [], "errors": []}
kron.schedule("ordinary", lambda: None, every="1h")
for i, kw in enumerate([{"every": "100000000d"}, {"after": "100000000d"},
                        {"every": "1h", "jitter": "100000000d"}]):
    try:
        kron.schedule(f"extreme-{i}", lambda: None, **kw)
    except kron.InvalidArgumentError:
        pass
    else:
        res["accepted"].append(kw)
for phase in ("before-start", "after-start"):
    if phase == "after-start":
        kron.start(data_dir)
    for what, call in (("status", lambda: kron.status("ordinary")), ("list", kron.list),
                       ("status-extreme", lambda: [kron.status(f"extreme-{i}") for i in range(3)])):
        try:
            call()
        except Exception as e:
            res["errors"].append([phase, what, type(e).__name__, str(e)])
dump(out, res)
kron.shutdown()
finish()
"""


def test_status_and_list_never_break_on_extreme_definitions(
    data_dir: str, tmp_path: Path, children: Children
) -> None:
    """Whatever schedule() accepted, status() and list() keep working (run in a child: an
    accepted extreme timer would stay in this process's registry)."""
    out = tmp_path / "out.json"
    children.run(EXTREME, data_dir, out)
    res = read_json(out)
    assert res["errors"] == [], f"accepted {res['accepted']}, then: {res['errors']}"
