"""history_limit: the runtime keeps only the latest N runs of each timer."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import pytest

import kron


def wait_until(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def run_ids(name: str) -> set[str]:
    return {e["run_id"] for e in kron.history(name, limit=100_000) if e["run_id"]}


def test_history_limit_keeps_latest_runs_per_timer(tmp_path: Path) -> None:
    name = "history-limit-every"
    calls: list[int] = []
    kron.schedule(name, fn=lambda: calls.append(1), every="20ms", overlap="skip")
    kron.start(tmp_path / "d")
    assert wait_until(lambda: len(calls) >= 30)
    kron.pause(name)  # so that no new runs happen around the restart below
    kron.shutdown()
    assert len(run_ids(name)) >= 30
    # The limit applies from start on, in the background: only the latest 5 runs' events remain.
    kron.start(tmp_path / "d", history_limit=5)
    # Retention cuts at the RUN_DUE of the 5th most recent run: later outcome events of older runs
    # may remain, and a run still in flight (held by the pause) is never cut.
    assert wait_until(lambda: run_due_count(name) <= 6)
    kron.shutdown()
    assert 5 <= run_due_count(name) <= 6
    assert len(run_ids(name)) < 15


def run_due_count(name: str) -> int:
    return sum(1 for e in kron.history(name, limit=100_000) if e["kind"] == "RUN_DUE")


def test_default_history_limit_is_public_and_bounded() -> None:
    assert kron.DEFAULT_HISTORY_LIMIT == 1_000
    for start in (kron.start, kron.astart):
        assert inspect.signature(start).parameters["history_limit"].default == kron.DEFAULT_HISTORY_LIMIT


def test_default_bounds_history_and_none_keeps_everything(tmp_path: Path) -> None:
    """More runs than the default keeps: ``None`` keeps them all, the default trims them."""
    name = "history-limit-default"
    calls: list[int] = []
    target = kron.DEFAULT_HISTORY_LIMIT + 100
    kron.schedule(name, fn=lambda: calls.append(1), every="1ms", overlap="skip")
    data = tmp_path / "d"
    kron.start(data, history_limit=None)
    assert wait_until(lambda: len(calls) >= target, timeout=120)
    kron.pause(name)
    kron.shutdown()
    runs = run_due_count(name)
    assert runs >= target
    kinds_before = [e["kind"] for e in kron.history(name, limit=100_000)]

    # history_limit=None, passed explicitly, keeps everything: a retention pass would run at once.
    kron.start(data, history_limit=None)
    time.sleep(1.5)
    kron.shutdown()
    kinds = [e["kind"] for e in kron.history(name, limit=100_000)]
    assert kinds[: len(kinds_before)] == kinds_before
    assert kinds[0] == "TIMER_CREATED"

    # The default keeps the latest DEFAULT_HISTORY_LIMIT runs (and a run held in flight).
    kron.start(data)
    assert wait_until(lambda: run_due_count(name) <= kron.DEFAULT_HISTORY_LIMIT + 1, timeout=60)
    kron.shutdown()
    assert kron.DEFAULT_HISTORY_LIMIT <= run_due_count(name) <= kron.DEFAULT_HISTORY_LIMIT + 1
    assert kron.history(name, limit=100_000)[0]["kind"] != "TIMER_CREATED"


@pytest.mark.parametrize("bad", [0, -1])
def test_history_limit_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError, match="history_limit"):
        kron.start(tmp_path / "d", history_limit=bad)
    assert not (tmp_path / "d").exists()


def test_history_limit_type_is_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="history_limit"):
        kron.start(tmp_path / "d", history_limit="5")  # type: ignore[arg-type]
