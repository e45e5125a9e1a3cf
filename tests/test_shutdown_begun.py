"""shutdown(timeout) against a burst: attempts handed to the workers that have not begun are
stopped and recorded as not started (due again at the next start, without counting as an
attempt); after shutdown() returns no callback of the runtime begins."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import kron
from conftest import events, wait_until

BURST = 600


def _has(history: list[dict[str, Any]], kind: str) -> bool:
    return any(e["kind"] == kind for e in history)


def test_no_callback_begins_after_shutdown_returns(names: Any, data_dir: str) -> None:
    ledger: list[tuple[str, int, float]] = []  # (timer, attempt, when it began)
    lock = threading.Lock()
    release = threading.Event()
    slow: list[str] = []  # the first callback to begin outlives the shutdown timeout
    # The timers stay registered in this process: their callbacks do nothing after this test.
    over = threading.Event()

    def callback(first_is_slow: bool) -> Callable[[dict[str, Any]], None]:
        def run(ctx: dict[str, Any]) -> None:
            if over.is_set():
                return
            with lock:
                ledger.append((ctx["timer_id"], ctx["attempt"], time.monotonic()))
                stuck = first_is_slow and not slow
                if stuck:
                    slow.append(ctx["timer_id"])
            if stuck:
                release.wait(10)  # abandoned by shutdown: interrupted, retried at the next start
            else:
                time.sleep(0.005)

        return run

    at = datetime.now(timezone.utc) + timedelta(seconds=1)
    timers = [names("burst") for _ in range(BURST)]
    for name in timers:
        kron.schedule(name, fn=callback(True), at=at)
    try:
        kron.start(data_dir, max_workers=2)
        wait_until(lambda: len(ledger) >= 20, timeout=30, message="the burst to begin")
        kron.shutdown(timeout=0.5)
        returned = time.monotonic()
        with lock:
            first = list(ledger)
        late = [entry for entry in first if entry[2] > returned]
        assert not late, f"{len(late)} callbacks began after shutdown() returned"
        time.sleep(0.5)
        assert len(ledger) == len(first), "callbacks began after shutdown() returned"
        assert len(first) < BURST, "the burst ended before shutdown: nothing was tested"
        release.set()

        for name in timers:
            kron.schedule(name, fn=callback(False), at=at)
        kron.start(data_dir, max_workers=2)
        try:
            wanted = set(timers)
            wait_until(
                lambda: all(t["state"] == "completed" for t in kron.list() if t["id"] in wanted),
                timeout=60,
                message="every occurrence to complete",
            )
            runs = Counter(name for name, _, _ in ledger)
            assert set(runs) == wanted, "an occurrence never ran"
            twice = {name for name, n in runs.items() if n > 1}
            history = {name: events(name) for name in timers}
            interrupted = {name for name, evs in history.items() if _has(evs, "RUN_INTERRUPTED")}
            # Only the abandoned callback ran again, as a retry that history shows.
            assert twice == interrupted == set(slow), (twice, interrupted)
            assert [a for name, a, _ in ledger if name in slow] == [1, 2]
            not_started = {name for name, evs in history.items() if _has(evs, "RUN_NOT_STARTED")}
            assert not_started, "no attempt was stopped before it began"
            assert not_started.isdisjoint(name for name, _, _ in first), "began, yet recorded as not started"
            for name in not_started:
                kinds = [(e["kind"], e["attempt"]) for e in history[name] if e["run_id"]]
                # Not started does not count: the run starts again as attempt 1.
                assert kinds == [
                    ("RUN_DUE", 1),
                    ("RUN_STARTED", 1),
                    ("RUN_NOT_STARTED", 1),
                    ("RUN_STARTED", 1),
                    ("RUN_SUCCEEDED", 1),
                ], (name, kinds)
                status = kron.status(name)
                assert status is not None and (status["run_count"], status["failure_count"]) == (1, 0)
            for name in timers:
                kron.remove(name)
        finally:
            kron.shutdown()
    finally:
        over.set()
        release.set()
