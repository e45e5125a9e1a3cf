"""history_limit: the runtime keeps only the latest N runs of each timer."""

from __future__ import annotations

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
    # The limit applies at start: only the latest 5 runs' events remain.
    kron.start(tmp_path / "d", history_limit=5)
    kron.shutdown()
    # Retention cuts at the RUN_DUE of the 5th most recent run: later outcome events of older runs
    # may remain, and a run still in flight (held by the pause) is never cut.
    kinds = [e["kind"] for e in kron.history(name, limit=100_000)]
    assert 5 <= kinds.count("RUN_DUE") <= 6
    assert len(run_ids(name)) < 15


@pytest.mark.parametrize("bad", [0, -1])
def test_history_limit_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError, match="history_limit"):
        kron.start(tmp_path / "d", history_limit=bad)
    assert not (tmp_path / "d").exists()


def test_history_limit_type_is_checked(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="history_limit"):
        kron.start(tmp_path / "d", history_limit="5")  # type: ignore[arg-type]
