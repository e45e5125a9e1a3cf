"""Callbacks that misbehave: raise SystemExit / KeyboardInterrupt and other odd exceptions, call
kron.shutdown(), kron.schedule() or kron.start() from inside, never return, or fork. The runtime
survives each and records what happened.

Cases that leave a thread stuck forever, or a forked process behind, run in child processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import kron
from conftest import Children, Recorder, events, kinds_of, read_json, wait_until

# ---------------------------------------------------------------------------
# exceptions a callback should never be able to escape with
# ---------------------------------------------------------------------------


def _system_exit() -> None:
    sys.exit(3)


def _system_exit_none() -> None:
    raise SystemExit


def _keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def _generator_exit() -> None:
    raise GeneratorExit


def _memory_error() -> None:
    raise MemoryError("pretend the heap is gone")


def _recursion() -> None:
    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)


class _Weird(BaseException):
    def __str__(self) -> str:
        raise RuntimeError("even my message is broken")


def _weird_base_exception() -> None:
    raise _Weird


def _signal_to_self() -> None:
    # SIGINT delivered to the process while a callback runs: Python's handler raises
    # KeyboardInterrupt in the main thread, never in the worker; the callback itself finishes.
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)


EXCEPTIONS: list[tuple[str, Callable[[], None], str]] = [
    ("SystemExit", _system_exit, "SystemExit"),
    ("SystemExit-no-code", _system_exit_none, "SystemExit"),
    ("KeyboardInterrupt", _keyboard_interrupt, "KeyboardInterrupt"),
    ("GeneratorExit", _generator_exit, "GeneratorExit"),
    ("MemoryError", _memory_error, "MemoryError"),
    ("RecursionError", _recursion, "RecursionError"),
    ("BaseException-with-broken-str", _weird_base_exception, ""),
]


def test_an_unprintable_exception_does_not_fail_other_callbacks_of_its_batch(
    names: Any, data_dir: str, recorder: Recorder
) -> None:
    """With one worker, runs due together are handed over as one batch. One callback raising an
    exception whose str() raises must fail only its own attempt: the others run once and succeed
    (none is recorded as failed without running, none is run again)."""
    bad = names("bad")
    goods = [names(f"good{i}") for i in range(6)]
    at = "2000-01-01T00:00:00Z"  # in the past: all due right after start, in one poll
    kron.schedule(bad, _weird_base_exception, at=at, max_attempts=1)
    for g in goods:
        kron.schedule(g, recorder.callback(g), at=at, max_attempts=1)
    kron.start(data_dir, max_workers=1)
    wait_until(lambda: all(kron.status(n)["state"] in ("completed", "dead") for n in [bad, *goods]))
    assert kron.status(bad)["state"] == "dead"
    outcome = {g: (recorder.n(g), kron.status(g)["state"]) for g in goods}
    assert all(v == (1, "completed") for v in outcome.values()), outcome
    [failed] = events(bad, "RUN_FAILED")
    assert "_Weird" in failed["error"], failed["error"]


@pytest.mark.parametrize(("fn", "needle"), [pytest.param(f, n, id=i) for i, f, n in EXCEPTIONS])
# (BaseException-with-broken-str: the error text loses the type; see the batch test below.)
def test_escaping_exceptions_fail_the_attempt_and_the_runtime_goes_on(
    names: Any, data_dir: str, recorder: Recorder, fn: Callable[[], None], needle: str
) -> None:
    bad, good = names("bad"), names("good")
    kron.schedule(bad, fn, after="50ms", max_attempts=2)
    kron.schedule(good, recorder.callback(good), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: kron.status(bad)["state"] == "dead")
    failed = events(bad, "RUN_FAILED")
    assert len(failed) == 2  # both attempts ran and failed; the retry was not lost
    assert all(needle in (f["error"] or "") for f in failed), failed[0]["error"]
    assert kinds_of(bad)[-1] == "RUN_DEAD"
    n = recorder.n(good)
    wait_until(lambda: recorder.n(good) >= n + 3)
    assert kron.status(good)["storage_error"] is None


def test_sigint_to_the_process_during_a_callback_does_not_break_the_run(
    children: Children, tmp_path: Path
) -> None:
    """SIGINT lands in the main thread as KeyboardInterrupt (the application's to handle); the
    callback's run is recorded normally."""
    out = tmp_path / "out.json"
    children.run(
        """
        import signal, sys
        # Python's own SIGINT handling, whatever the parent left (a shell without job control
        # starts background commands with SIGINT ignored, and the ignore is inherited).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        data_dir, out = sys.argv[1], sys.argv[2]
        got = []
        def job():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        kron.schedule("sig", job, after="50ms", max_attempts=1)
        kron.start(data_dir)
        try:
            time.sleep(3)
        except KeyboardInterrupt:
            got.append("main")
        wait_for(lambda: kron.status("sig")["state"] in ("completed", "dead"))
        kinds = [e["kind"] for e in history_of("sig")]
        kron.shutdown()
        dump(out, {"got": got, "kinds": kinds})
        finish()
        """,
        tmp_path / "data",
        out,
    )
    result = read_json(out)
    assert result["got"] == ["main"]
    assert result["kinds"][-1] == "RUN_SUCCEEDED", result["kinds"]


# ---------------------------------------------------------------------------
# calling the API from inside
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("main_then", ["waits-for-shutdown-thread", "exits-normally"])
def test_shutdown_from_inside_a_callback(
    children: Children, tmp_path: Path, names: Any, main_then: str
) -> None:
    """A callback asks for shutdown (kron.shutdown() returns at once inside a callback and shuts
    down from another thread, which "waits for this callback to return and records its outcome").
    The application's main thread then ends: the callback's own outcome must be recorded, not
    found interrupted (and run again) at the next start."""
    out = tmp_path / "out.json"
    data = tmp_path / "data"
    name = names("stopper")
    children.run(
        """
        import sys, threading
        data_dir, out, name, main_then = sys.argv[1:5]
        asked = threading.Event()
        def stopper(ctx):
            kron.shutdown(timeout=5)   # returns at once inside a callback
            asked.set()
            time.sleep(0.2)            # the callback goes on; its outcome must still be recorded
        kron.schedule(name, stopper, after="100ms")
        kron.start(data_dir)
        asked.wait(10)
        if main_then == "waits-for-shutdown-thread":
            for t in threading.enumerate():
                if t.name == "kron-shutdown":
                    t.join(10)
        dump(out, {"asked": asked.is_set()})
        # then the interpreter exits normally
        """,
        data,
        out,
        name,
        main_then,
    )
    assert read_json(out)["asked"] is True
    kron.schedule(name, lambda ctx: None, after="100ms")
    try:
        kron.start(data)
        kinds = kinds_of(name)
        assert "RUN_INTERRUPTED" not in kinds, kinds
        assert "RUN_SUCCEEDED" in kinds, kinds
        assert kron.status(name)["state"] == "completed"
    finally:
        kron.shutdown()


@pytest.mark.parametrize("how", ["shutdown", "ashutdown"])
def test_shutdown_from_inside_an_async_callback(names: Any, data_dir: str, how: str) -> None:
    """An ``async def`` callback asks for shutdown: it returns at once, as from a plain callback,
    the runtime stops once the callback returned, and the callback's outcome is recorded (not
    found interrupted, retried and shutting the runtime down again at the next start)."""
    name = names("astopper")
    took: dict[str, float] = {}

    async def stopper(ctx: Any) -> None:
        if "s" in took:
            return  # the timer stays registered in this process: stop only this test's runtime
        began = time.monotonic()
        if how == "shutdown":
            kron.shutdown(timeout=30)
        else:
            await kron.ashutdown(timeout=30)
        took["s"] = time.monotonic() - began
        await asyncio.sleep(0.1)  # the callback goes on; its outcome must still be recorded

    kron.schedule(name, fn=stopper, after="100ms")
    kron.start(data_dir)
    wait_until(lambda: "s" in took, timeout=25, message="the callback's shutdown() to return")
    assert took["s"] < 10, f"shutdown() inside an async callback took {took['s']:.1f}s"
    kron.shutdown(timeout=20)  # waits for the shutdown the callback began
    assert kron.status(name)["state"] == "completed"
    kron.start(data_dir)
    try:
        kinds = kinds_of(name)
        assert "RUN_INTERRUPTED" not in kinds, kinds
        assert kinds.count("RUN_STARTED") == 1 and kinds.count("RUN_SUCCEEDED") == 1, kinds
        kron.remove(name)
    finally:
        kron.shutdown()


def test_schedule_from_inside_creates_and_updates_timers(
    names: Any, data_dir: str, recorder: Recorder
) -> None:
    me, child = names("me"), names("child")
    calls = {"n": 0}

    def job(ctx: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            kron.schedule(child, recorder.callback(child), every="100ms")
            # Re-register itself with a different definition from inside its own run.
            kron.schedule(me, job, every="150ms", max_attempts=2)
            kron.schedule(me, job, every="150ms", max_attempts=2)  # and again, unchanged

    kron.schedule(me, job, every="200ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(child) >= 3 and calls["n"] >= 3)
    kinds = kinds_of(me)
    assert kinds.count("TIMER_UPDATED") == 1
    assert kron.status(me)["max_attempts"] == 2
    assert kron.status(me)["storage_error"] is None
    # The run that re-registered its own timer finished normally.
    assert "RUN_FAILED" not in kinds and "RUN_INTERRUPTED" not in kinds


def test_start_from_inside_a_callback_fails_that_attempt_only(
    names: Any, data_dir: str, recorder: Recorder, tmp_path: Path
) -> None:
    me, good = names("me"), names("good")

    def job() -> None:
        kron.start(tmp_path / "elsewhere")

    kron.schedule(me, job, after="50ms", max_attempts=1)
    kron.schedule(good, recorder.callback(good), every="100ms")
    kron.start(data_dir)
    wait_until(lambda: kron.status(me)["state"] == "dead")
    [failed] = events(me, "RUN_FAILED")
    assert "AlreadyStartedError" in failed["error"]
    n = recorder.n(good)
    wait_until(lambda: recorder.n(good) >= n + 2)


# ---------------------------------------------------------------------------
# never returns
# ---------------------------------------------------------------------------


def test_callback_that_never_returns(children: Children, tmp_path: Path, names: Any) -> None:
    """shutdown(timeout) returns on time although a callback never returns, the process can still
    exit, and the next start records the run as interrupted and retries it."""
    out = tmp_path / "out.json"
    data = tmp_path / "data"
    proc = children.spawn(
        """
        import sys, threading
        data_dir, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
        def stuck(ctx):
            append(out + ".calls", ctx["attempt"])
            threading.Event().wait()   # forever
        kron.schedule(name, stuck, after="50ms", max_attempts=3)
        kron.start(data_dir)
        wait_for(lambda: os.path.exists(out + ".calls"))
        t0 = time.monotonic()
        kron.shutdown(timeout=1.0)
        took = time.monotonic() - t0
        dump(out, {"took": took})
        # No os._exit: the interpreter must be able to exit with a worker stuck in Python code.
        """,
        data,
        out,
        name := names("stuck"),
    )
    children.wait(proc, timeout=30)
    took = read_json(out)["took"]
    assert 0.9 <= took <= 3.0, took
    kron.schedule(name, lambda ctx: None, after="50ms", max_attempts=3)
    try:
        kron.start(data)
        wait_until(lambda: kron.status(name)["state"] == "completed")
        kinds = kinds_of(name)
        assert kinds[kinds.index("RUN_STARTED") :] == [
            "RUN_STARTED",
            "RUN_INTERRUPTED",
            "RUN_RETRYING",
            "RUN_STARTED",
            "RUN_SUCCEEDED",
        ], kinds
    finally:
        kron.shutdown()


def test_slow_callback_past_the_shutdown_timeout_does_not_record_a_late_outcome(
    children: Children, tmp_path: Path, names: Any
) -> None:
    """A callback that finishes after shutdown gave up: its late outcome is not written (the
    directory is released); the next start says interrupted, not succeeded twice."""
    out = tmp_path / "out.json"
    data = tmp_path / "data"
    children.run(
        """
        import sys
        data_dir, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
        def slow(ctx):
            time.sleep(1.5)
            append(out + ".done", ctx["attempt"])
        kron.schedule(name, slow, after="50ms", max_attempts=3)
        kron.start(data_dir)
        time.sleep(0.3)
        kron.shutdown(timeout=0.2)
        time.sleep(2.0)   # the callback returns here, after the runtime stopped
        dump(out, {"done": os.path.exists(out + ".done")})
        finish()
        """,
        data,
        out,
        name := names("slow"),
    )
    assert read_json(out)["done"] is True
    kron.schedule(name, lambda ctx: None, after="50ms", max_attempts=3)
    try:
        kron.start(data)
        wait_until(lambda: kron.status(name)["state"] == "completed")
        kinds = kinds_of(name)
        assert kinds.count("RUN_SUCCEEDED") == 1
        assert kinds.count("RUN_INTERRUPTED") == 1
    finally:
        kron.shutdown()


# ---------------------------------------------------------------------------
# fork
# ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("child_does", ["exit", "exec", "return"])
def test_callback_that_forks(children: Children, tmp_path: Path, names: Any, child_does: str) -> None:
    """The callback forks. The forked child exits at once (`os._exit`), execs another program, or
    returns from the callback as if it were the parent. The parent's runtime survives and records
    the run exactly once; the forked copy writes nothing to the data directory."""
    out = tmp_path / "out.json"
    data = tmp_path / "data"
    children.run(
        """
        import sys, warnings
        warnings.simplefilter("ignore")  # fork() in a multi-threaded process warns on 3.12+
        data_dir, out, child_does, name, beat = sys.argv[1:6]
        def forker(ctx):
            pid = os.fork()
            if pid == 0:
                if child_does == "exit":
                    os._exit(0)
                if child_does == "exec":
                    os.execv("/bin/sh", ["sh", "-c", "exit 0"])
                with open(out + ".grandchild", "w") as f:
                    f.write(str(os.getpid()))
                return   # the copy goes on as if it were the worker
            if child_does != "return":
                os.waitpid(pid, 0)
        kron.schedule(name, forker, after="50ms", max_attempts=1)
        kron.schedule(beat, lambda: None, every="50ms")
        kron.start(data_dir)
        wait_for(lambda: kron.status(name)["state"] in ("completed", "dead"), timeout=10)
        beats = kron.status(beat)["run_count"]
        time.sleep(0.5)
        beats_later = kron.status(beat)["run_count"]
        kinds = [e["kind"] for e in history_of(name)]
        kron.shutdown()
        dump(out, {"state": kron.status(name)["state"], "kinds": kinds,
                   "beats": [beats, beats_later]})
        finish()
        """,
        data,
        out,
        child_does,
        name := names("forker"),
        beat := names("beat"),
        timeout=60,
    )
    grandchild = tmp_path / "out.json.grandchild"
    try:
        result = read_json(out)
        assert result["state"] == "completed", result
        assert result["kinds"].count("RUN_SUCCEEDED") == 1, result["kinds"]
        assert result["beats"][1] > result["beats"][0]  # other timers kept running
        # The directory is consistent and free: a new runtime opens it and sees one success.
        kron.schedule(name, lambda ctx: None, after="50ms", max_attempts=1)
        kron.schedule(beat, lambda: None, every="1h")
        kron.start(data)
        try:
            assert kinds_of(name).count("RUN_SUCCEEDED") == 1
            assert "RUN_INTERRUPTED" not in kinds_of(name)
        finally:
            kron.shutdown()
    finally:
        if grandchild.exists():
            pid = int(grandchild.read_text() or 0)
            if pid > 0:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
