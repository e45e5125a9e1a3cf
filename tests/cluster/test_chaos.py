"""Item 8 of the failure matrix in its short form: tools/cluster_chaos.py with a fixed seed and
a short stretch of faults (the long local run is in docs/cluster.md)."""

from __future__ import annotations

import importlib
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from conftest import ROOT, run_tool

#: The CI seed and how long its faults last; the whole run stays well under two minutes.
SEED = 7
FAULT_SECONDS = 20


@pytest.mark.slow
@pytest.mark.timeout(170)
def test_8_seeded_chaos_run_short() -> None:
    done = run_tool("cluster_chaos.py", "--seed", str(SEED), "--duration", str(FAULT_SECONDS), timeout=160)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-6000:]}"
    report = json.loads(done.stdout)
    assert report["violations"] == []
    # The run did something: writes were acknowledged, runs claimed and completed, faults made.
    assert report["timers_acknowledged"] > 0 and report["completions_accepted"] > 0, report
    assert report["faults"] > 0, report


# The checker itself, on made-up histories: it must catch what it is there to catch.


def _checker() -> ModuleType:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return importlib.import_module("cluster_chaos")
    finally:
        sys.path.pop(0)


def _ev(kind: str, attempt: int = 1, token: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "run_id": "r1", "attempt": attempt, "fencing_token": token}


GOOD = [
    _ev("RUN_DUE"),
    _ev("RUN_CLAIMED", 1, 1),
    _ev("RUN_LEASE_EXPIRED", 1, 1),
    _ev("RUN_RETRYING", 2),
    _ev("RUN_CLAIMED", 2, 2),
    _ev("RUN_SUCCEEDED", 2),
]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (GOOD, None),
        ([_ev("RUN_CLAIMED", 1, 1), _ev("RUN_CLAIMED", 1, 2), _ev("RUN_SUCCEEDED")], "claimed twice"),
        ([_ev("RUN_CLAIMED", 1, 1), _ev("RUN_LEASE_EXPIRED"), _ev("RUN_SUCCEEDED")], "without a live claim"),
        ([_ev("RUN_CLAIMED", 1, 1), _ev("RUN_SUCCEEDED"), _ev("RUN_SUCCEEDED")], "without a live claim"),
        ([_ev("RUN_DUE"), _ev("RUN_CLAIMED", 1, 1)], "never reached an outcome"),
    ],
)
def test_8_checker_catches_violations(events: list[dict[str, Any]], expected: str | None) -> None:
    found = _checker()._check_history("t", events)
    if expected is None:
        assert found == []
    else:
        assert any(expected in v for v in found), found


def test_8_checker_refuses_a_stale_completion_from_a_ledger() -> None:
    chaos = _checker()
    ended = chaos._ended_by_outcome(GOOD)
    assert ("r1", 2) in ended
    assert ("r1", 1) not in ended  # a completion accepted under token 1 would be reported
