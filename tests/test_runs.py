"""Runs: callbacks and their context, retries, overlap policies, async callbacks, exceptions,
pause / resume / trigger / remove."""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import kron
from conftest import Recorder, count, events, hold, is_aware_utc, kinds_of, unique_name, wait_until

UTC = timezone.utc
CONTEXT_KEYS = {"timer_id", "run_id", "attempt", "scheduled_at", "idempotency_key"}


def test_callback_without_parameter_runs(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback_noctx(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 2)
    assert recorder.n(name) >= 2


def test_context_keys(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), after="100ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") == 1)
    [call] = recorder.calls_of(name)
    ctx = call["ctx"]
    assert isinstance(ctx, dict)
    assert CONTEXT_KEYS <= set(ctx), set(ctx)
    assert ctx["timer_id"] == kron.status(name)["id"]
    assert isinstance(ctx["run_id"], str) and ctx["run_id"].startswith("run_") and len(ctx["run_id"]) > 4
    assert ctx["attempt"] == 1
    assert isinstance(ctx["scheduled_at"], datetime)
    assert ctx["idempotency_key"] == f"{ctx['timer_id']}:{ctx['scheduled_at'].isoformat()}"
    started = events(name, "RUN_STARTED")
    assert [e["run_id"] for e in started] == [ctx["run_id"]]


def test_run_ids_are_unique_and_sortable(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.finished(name) >= 5)
    ids = [c["ctx"]["run_id"] for c in recorder.calls_of(name)]
    assert len(set(ids)) == len(ids)
    assert sorted(ids) == ids, "run ids must sort in creation order"
    keys = [c["ctx"]["idempotency_key"] for c in recorder.calls_of(name)]
    assert len(set(keys)) == len(keys), "each due run has its own idempotency key"


def test_at_with_a_fraction_of_a_millisecond_is_never_called_early(
    names: Any, data_dir: str
) -> None:
    # Kron keeps the exact instant of `at`: the callback comes at or after it (never before), and
    # the run's scheduled instant is it rounded up to the millisecond.
    called: dict[str, tuple[float, datetime]] = {}

    def record(ctx: dict[str, Any]) -> None:
        called[ctx["timer_id"]] = (time.time(), ctx["scheduled_at"])

    base = datetime.now(UTC) + timedelta(seconds=1)
    dues = {names(f"at{i}"): base + timedelta(milliseconds=7 * i, microseconds=1 + 97 * i) for i in range(20)}
    for timer, due in dues.items():
        kron.schedule(timer, record, at=due)
    kron.start(data_dir)
    wait_until(lambda: len(called) == len(dues))
    for timer, due in dues.items():
        at, scheduled = called[timer]
        assert at >= due.timestamp(), f"{timer} called {1e6 * (due.timestamp() - at):.0f} us early"
        whole_ms = math.ceil(due.timestamp() * 1000)
        assert round(scheduled.timestamp() * 1000) == whole_ms
        assert kron.status(timer)["state"] == "completed"


def test_contexts_of_runs_due_at_shared_and_distinct_instants(names: Any, data_dir: str) -> None:
    # Runs due at the same instant come to a worker in a row (their contexts share the instant);
    # every context still names its own timer and its own occurrence.
    contexts: dict[str, dict[str, Any]] = {}

    def record(ctx: dict[str, Any]) -> None:
        contexts[ctx["timer_id"]] = ctx

    base = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    dues = {names(f"i{i}"): base + timedelta(milliseconds=i // 10) for i in range(40)}
    for timer, due in dues.items():
        kron.schedule(timer, record, at=due)
    kron.start(data_dir)
    wait_until(lambda: len(contexts) == len(dues))
    for timer, due in dues.items():
        ctx = contexts[timer]
        assert ctx["scheduled_at"] == due, timer
        assert ctx["idempotency_key"] == f"{timer}:{due.isoformat()}"
    assert len({ctx["idempotency_key"] for ctx in contexts.values()}) == len(dues)


def test_one_shot_after_runs_once_then_completed(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), after="300ms")
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["state"] == "completed")
    hold(1.0)
    assert recorder.n(name) == 1
    st = kron.status(name)
    assert st["state"] == "completed"
    assert st["last_status"] == "OK"
    assert st["next_run_at"] is None
    assert count(name, "RUN_SUCCEEDED") == 1


def test_at_in_the_past_fires_right_after_start(name: str, data_dir: str, recorder: Recorder) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    kron.schedule(name, recorder.callback(name), at=past)
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["state"] == "completed")
    hold(0.5)
    assert recorder.n(name) == 1
    assert count(name, "RUN_SUCCEEDED") == 1


# ---------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------


def test_max_attempts_3_gives_3_attempts_then_dead(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(
        name,
        recorder.callback(name, fail=lambda ctx, n: True, error="always broken"),
        after="50ms",
        max_attempts=3,
    )
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_DEAD") >= 1, timeout=30)
    hold(1.5)  # no 4th attempt
    calls = recorder.calls_of(name)
    assert len(calls) == 3
    assert [c["ctx"]["attempt"] for c in calls] == [1, 2, 3]
    # the idempotency key (and scheduled_at) stay the same for every retry of one due run
    assert len({c["ctx"]["idempotency_key"] for c in calls}) == 1
    assert len({c["ctx"]["scheduled_at"] for c in calls}) == 1

    hist = events(name)
    kinds = [e["kind"] for e in hist]
    assert kinds.count("RUN_DEAD") == 1
    assert kinds.count("RUN_SUCCEEDED") == 0
    assert [e["attempt"] for e in hist if e["kind"] == "RUN_STARTED"] == [1, 2, 3]
    failed = [e for e in hist if e["kind"] == "RUN_FAILED"]
    assert [e["attempt"] for e in failed] == [1, 2, 3]
    for e in failed:
        assert "always broken" in e["error"]
    retrying = [e for e in hist if e["kind"] == "RUN_RETRYING"]
    assert len(retrying) == 2
    for e in retrying:
        assert isinstance(e["next_attempt_at"], datetime)
        assert e["next_attempt_at"] > e["ts"]
    # RUN_DEAD comes last, after the third attempt
    assert kinds.index("RUN_DEAD") > max(i for i, k in enumerate(kinds) if k == "RUN_STARTED")

    # exponential backoff: about 1 s then about 2 s between attempts (with jitter)
    gap1 = calls[1]["start"] - calls[0]["end"]
    gap2 = calls[2]["start"] - calls[1]["end"]
    assert gap1 >= 0.5, gap1
    assert gap2 >= 1.0, gap2

    st = kron.status(name)
    assert st["state"] == "dead"
    assert st["failure_count"] == 3
    assert st["last_status"].startswith("DEAD: "), st["last_status"]
    assert "always broken" in st["last_status"]
    assert "always broken" in st["last_error"]
    assert st["next_run_at"] is None


def test_retry_then_success(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(
        name,
        recorder.callback(name, sleep=0.0, fail=lambda ctx, n: n == 1, error="flaky"),
        after="50ms",
        max_attempts=3,
    )
    kron.start(data_dir)
    # between the attempts the timer is "retrying" and reports the failure
    st = wait_until(lambda: (s := kron.status(name))["state"] == "retrying" and s)
    assert st["last_status"].startswith("FAILED: "), st["last_status"]
    assert "flaky" in st["last_status"]
    assert isinstance(st["next_run_at"], datetime)
    wait_until(lambda: kron.status(name)["state"] == "completed", timeout=20)
    calls = recorder.calls_of(name)
    assert [c["ctx"]["attempt"] for c in calls] == [1, 2]
    assert calls[0]["ctx"]["idempotency_key"] == calls[1]["ctx"]["idempotency_key"]
    ok = events(name, "RUN_SUCCEEDED")
    assert [e["attempt"] for e in ok] == [2]
    assert count(name, "RUN_RETRYING") == 1
    assert count(name, "RUN_DEAD") == 0
    st = kron.status(name)
    assert st["last_status"] == "OK"
    assert st["failure_count"] == 1
    assert st["last_error"] is None or "flaky" in st["last_error"]


def test_max_attempts_1_means_no_retry(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, fail=lambda ctx, n: True), after="50ms", max_attempts=1)
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_DEAD") == 1)
    hold(1.5)
    assert recorder.n(name) == 1
    assert count(name, "RUN_RETRYING") == 0
    st = kron.status(name)
    assert st["state"] == "dead"
    assert st["failure_count"] == 1
    assert st["last_status"].startswith("DEAD: ")


def test_recurring_timer_keeps_running_after_dead_runs(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, fail=lambda ctx, n: True), every="200ms", max_attempts=1)
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_DEAD") >= 3)
    st = kron.status(name)
    assert st["state"] != "dead"  # "dead" is for one-shots
    assert st["next_run_at"] is not None
    assert st["failure_count"] >= 3


# ---------------------------------------------------------------------------
# exceptions
# ---------------------------------------------------------------------------


class CustomFailure(Exception):
    pass


def raising_callback_with_a_distinctive_name() -> None:
    raise CustomFailure("the distinctive message 12345")


def test_exception_recorded_with_type_message_traceback(name: str, data_dir: str) -> None:
    kron.schedule(name, raising_callback_with_a_distinctive_name, after="50ms", max_attempts=1)
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_FAILED") == 1)
    [failed] = events(name, "RUN_FAILED")
    err = failed["error"]
    assert "CustomFailure" in err
    assert "the distinctive message 12345" in err
    assert "raising_callback_with_a_distinctive_name" in err  # a traceback frame
    assert "Traceback" in err or "line " in err
    assert failed["attempt"] == 1
    wait_until(lambda: kron.status(name)["state"] == "dead")
    st = kron.status(name)
    assert "the distinctive message 12345" in st["last_error"]


def test_exception_is_logged_to_kron_logger(
    name: str, data_dir: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kron")
    kron.schedule(name, raising_callback_with_a_distinctive_name, after="50ms", max_attempts=1)
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_FAILED") == 1)

    def text(r: logging.LogRecord) -> str:
        extra = ""
        if r.exc_info:
            extra = logging.Formatter().formatException(r.exc_info)
        return r.getMessage() + (r.exc_text or "") + extra

    def logged() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if (r.name == "kron" or r.name.startswith("kron."))
            and ("the distinctive message 12345" in text(r) or name in text(r))
        ]

    records = wait_until(logged, timeout=10)
    assert any("the distinctive message 12345" in text(r) for r in records), [text(r) for r in records]
    assert any(r.levelno >= logging.WARNING for r in records), [(r.levelname, text(r)) for r in records]


def test_callback_exception_does_not_stop_other_timers(names: Any, data_dir: str, recorder: Recorder) -> None:
    bad, good = names("bad"), names("good")
    kron.schedule(bad, raising_callback_with_a_distinctive_name, every="100ms", max_attempts=1)
    kron.schedule(good, recorder.callback(good), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: count(bad, "RUN_FAILED") >= 3 and recorder.n(good) >= 3)


# ---------------------------------------------------------------------------
# async callbacks
# ---------------------------------------------------------------------------


def test_async_callback_with_context(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.async_callback(name, sleep=0.05), after="50ms")
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["state"] == "completed")
    [call] = recorder.calls_of(name)
    assert call["loop"] is True
    assert call["end"] is not None  # the coroutine ran to the end
    assert call["ctx"]["attempt"] == 1
    assert count(name, "RUN_SUCCEEDED") == 1


def test_async_callback_without_parameter(name: str, data_dir: str, tmp_path: Any) -> None:
    marker = tmp_path / "ran"

    async def ajob() -> None:
        import asyncio

        await asyncio.sleep(0.01)
        marker.write_text("yes")

    kron.schedule(name, ajob, every="200ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 2)
    assert marker.read_text() == "yes"


def test_async_callback_exception_fails_the_run(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(
        name,
        recorder.async_callback(name, fail=lambda ctx, n: True, error="async kaput"),
        after="50ms",
        max_attempts=1,
    )
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_DEAD") == 1)
    [failed] = events(name, "RUN_FAILED")
    assert "ValueError" in failed["error"]
    assert "async kaput" in failed["error"]
    assert kron.status(name)["state"] == "dead"


# ---------------------------------------------------------------------------
# overlap
# ---------------------------------------------------------------------------


def test_overlap_skip(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.7), every="200ms", overlap="skip")
    kron.start(data_dir)
    wait_until(lambda: recorder.finished(name) >= 3 and count(name, "RUN_SKIPPED_OVERLAP") >= 2, timeout=20)
    assert recorder.max_concurrency(name) == 1
    hist = events(name)
    skipped = [e for e in hist if e["kind"] == "RUN_SKIPPED_OVERLAP"]
    started_ids = {e["run_id"] for e in hist if e["kind"] == "RUN_STARTED"}
    for e in skipped:
        assert e["run_id"] is None or e["run_id"] not in started_ids, "a skipped run must not run"
    assert kron.status(name)["overlap"] == "skip"


def test_overlap_allow(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.7), every="200ms", overlap="allow")
    kron.start(data_dir)
    wait_until(lambda: recorder.max_concurrency(name) >= 2, timeout=20)
    assert count(name, "RUN_SKIPPED_OVERLAP") == 0


def test_overlap_delay(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=0.7), every="200ms", overlap="delay")
    kron.start(data_dir)
    wait_until(lambda: recorder.finished(name) >= 3, timeout=20)
    calls = [c for c in recorder.calls_of(name) if c["end"] is not None]
    calls.sort(key=lambda c: c["start"])
    for prev, nxt in zip(calls, calls[1:]):
        gap = nxt["start"] - prev["end"]
        assert gap >= 0.18, f"next run started {gap:.3f}s after the previous finished (interval 200ms)"
    assert recorder.max_concurrency(name) == 1
    assert count(name, "RUN_SKIPPED_OVERLAP") == 0


def test_overlap_default_is_delay(name: str) -> None:
    kron.schedule(name, lambda: None, every="1h")
    assert kron.status(name)["overlap"] == "delay"


# ---------------------------------------------------------------------------
# pause / resume / trigger / remove
# ---------------------------------------------------------------------------


def test_pause_stops_and_resume_restarts(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 2)
    assert kron.pause(name) is None
    assert kron.status(name)["state"] == "paused"
    assert "TIMER_PAUSED" in kinds_of(name)
    hold(0.6)  # let a run that was already in flight settle
    settled = count(name, "RUN_STARTED")
    calls = recorder.n(name)
    hold(1.2)
    assert count(name, "RUN_STARTED") == settled, "a paused timer started a run"
    assert recorder.n(name) == calls
    assert kron.status(name)["state"] == "paused"

    assert kron.resume(name) is None
    assert kron.status(name)["state"] != "paused"
    assert "TIMER_RESUMED" in kinds_of(name)
    wait_until(lambda: count(name, "RUN_STARTED") > settled)
    wait_until(lambda: recorder.n(name) > calls)


def test_trigger_runs_far_future_timer_now(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), at="2099-01-01T00:00:00Z")
    kron.start(data_dir)
    run_id = kron.trigger(name)
    assert isinstance(run_id, str) and run_id.startswith("run_")
    wait_until(lambda: recorder.finished(name) == 1)
    assert recorder.calls_of(name)[0]["ctx"]["run_id"] == run_id
    wait_until(lambda: any(e["run_id"] == run_id for e in events(name, "RUN_SUCCEEDED")))
    due = [e for e in events(name, "RUN_DUE") if e["run_id"] == run_id]
    assert len(due) == 1
    assert due[0].get("manual") is True


def test_trigger_recurring_keeps_schedule(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="24h")
    kron.start(data_dir)
    before = kron.status(name)["next_run_at"]
    a = kron.trigger(name)
    wait_until(lambda: recorder.finished(name) == 1)
    b = kron.trigger(name)
    wait_until(lambda: recorder.finished(name) == 2)
    assert a != b
    assert [c["ctx"]["run_id"] for c in recorder.calls_of(name)] == [a, b]
    after = kron.status(name)["next_run_at"]
    assert after >= before  # never pulled earlier by a manual run
    assert after > datetime.now(UTC) + timedelta(hours=23)


def test_remove(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 2)
    timer_id = kron.status(name)["id"]
    assert kron.remove(name) is None
    assert kron.status(name) is None
    assert timer_id not in {t["id"] for t in kron.list()}
    hold(0.6)
    n = recorder.n(name)
    hold(1.0)
    assert recorder.n(name) == n, "a removed timer ran"
    for op in (kron.pause, kron.resume, kron.trigger, kron.remove):
        with pytest.raises(KeyError):
            op(name)
    try:
        hist = kron.history(name)
    except kron.TimerNotFoundError:
        pass
    else:
        assert "TIMER_REMOVED" in [e["kind"] for e in hist]


def test_remove_then_schedule_again_creates_anew(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="1h")
    kron.start(data_dir)
    kron.remove(name)
    kron.schedule(name, recorder.callback(name), after="50ms")
    wait_until(lambda: recorder.n(name) == 1)
    st = wait_until(lambda: (s := kron.status(name)) is not None and s["state"] == "completed" and s)
    assert st["schedule"].startswith("after")


@pytest.mark.parametrize("op", ["pause", "resume", "trigger", "remove"])
def test_unknown_name_raises_key_error(op: str, data_dir: str) -> None:
    kron.start(data_dir)
    missing = "no-such-timer-anywhere-42"
    with pytest.raises(KeyError) as info:
        getattr(kron, op)(missing)
    assert isinstance(info.value, kron.TimerNotFoundError)
    assert missing in str(info.value)


# ---------------------------------------------------------------------------
# schedule() after start()
# ---------------------------------------------------------------------------


def test_schedule_after_start(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.start(data_dir)
    kron.schedule(name, recorder.callback(name), every="200ms")
    wait_until(lambda: recorder.n(name) >= 2)
    assert kinds_of(name)[0] == "TIMER_CREATED"


def test_reschedule_after_start_changed_and_same_definition(
    name: str, data_dir: str, recorder: Recorder
) -> None:
    cb = recorder.callback(name)
    kron.schedule(name, cb, every="24h")
    kron.start(data_dir)
    first = kron.status(name)["next_run_at"]
    hold(0.05)
    kron.schedule(name, cb, every="24h")  # same definition: nothing changes
    assert kron.status(name)["next_run_at"] == first
    assert "TIMER_UPDATED" not in kinds_of(name)

    t0 = datetime.now(UTC)
    kron.schedule(name, cb, every="12h")  # changed definition
    t1 = datetime.now(UTC)
    assert kinds_of(name).count("TIMER_UPDATED") == 1
    st = kron.status(name)
    nxt = st["next_run_at"]
    assert is_aware_utc(nxt)
    assert t0 + timedelta(hours=12) - timedelta(seconds=1) <= nxt <= t1 + timedelta(hours=12, seconds=1)
    assert "12h" in st["schedule"]


# ---------------------------------------------------------------------------
# robustness of callbacks
# ---------------------------------------------------------------------------


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


def raise_system_exit() -> None:
    raise SystemExit(3)


def raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def raise_unprintable() -> None:
    raise UnprintableError


def raise_unicode() -> None:
    raise ValueError("caf\u00e9 \U0001f525 \u65e5\u672c a\x00b")


@pytest.mark.parametrize(
    ("fn", "needle"),
    [
        pytest.param(raise_system_exit, "SystemExit", id="SystemExit"),
        pytest.param(raise_keyboard_interrupt, "KeyboardInterrupt", id="KeyboardInterrupt"),
        pytest.param(raise_unprintable, "", id="unprintable-exception"),
        pytest.param(raise_unicode, "caf\u00e9 \U0001f525 \u65e5\u672c", id="unicode-and-NUL-message"),
    ],
)
def test_odd_exceptions_fail_the_run_and_runtime_survives(
    names: Any, data_dir: str, recorder: Recorder, fn: Any, needle: str
) -> None:
    bad, good = names("bad"), names("good")
    kron.schedule(bad, fn, after="50ms", max_attempts=1)
    kron.schedule(good, recorder.callback(good), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: kron.status(bad)["state"] == "dead")
    [failed] = events(bad, "RUN_FAILED")
    assert isinstance(failed["error"], str) and failed["error"]
    assert needle in failed["error"]
    n = recorder.n(good)
    wait_until(lambda: recorder.n(good) >= n + 2)  # the runtime goes on


def test_callback_can_use_the_api(names: Any, data_dir: str, recorder: Recorder) -> None:
    """Callbacks may call kron themselves (no deadlock): status, list, history, trigger,
    schedule, pause."""
    me, other, made = names("me"), names("other"), names("made")
    seen: dict[str, Any] = {}

    def job(ctx: dict[str, Any]) -> None:
        seen["state"] = kron.status(me)["state"]
        seen["listed"] = any(t["id"] == ctx["timer_id"] for t in kron.list())
        seen["history"] = [e["kind"] for e in kron.history(me)]
        seen["trigger"] = kron.trigger(other)
        kron.schedule(made, recorder.callback(made), after="50ms")
        kron.pause(me)

    kron.schedule(me, job, every="200ms")
    kron.schedule(other, recorder.callback(other), at="2099-01-01T00:00:00Z")
    kron.start(data_dir)
    wait_until(lambda: "trigger" in seen and recorder.n(other) == 1 and recorder.n(made) == 1)
    assert seen["state"] == "running"
    assert seen["listed"] is True
    assert "RUN_STARTED" in seen["history"]
    assert recorder.calls_of(other)[0]["ctx"]["run_id"] == seen["trigger"]
    wait_until(lambda: kron.status(me)["state"] == "paused")


def test_concurrent_schedule_from_threads(data_dir: str) -> None:
    import threading

    base = unique_name("threads")
    errors: list[BaseException] = []
    kron.start(data_dir)

    def worker(k: int) -> None:
        try:
            for j in range(25):
                kron.schedule(f"{base}-{k}-{j}", lambda: None, every="1h")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    mine = [t for t in kron.list() if t["id"].startswith(base)]
    assert len(mine) == 200
    for k in range(8):
        for j in range(25):
            n = f"{base}-{k}-{j}"
            assert count(n, "TIMER_CREATED") == 1
    for k in range(8):
        for j in range(25):
            kron.remove(f"{base}-{k}-{j}")
