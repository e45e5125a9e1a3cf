"""The crash-consistency harness (tools/crashloop.py) at CI size, and proof that its checker bites.

The long run is ``python tools/crashloop.py --cycles 200`` (see docs/reliability.md).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import run_tool


def run_harness(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return run_tool("crashloop.py", *args, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_crash_loop_ci_size_has_no_violation(tmp_path: Path) -> None:
    """20 kill/restart cycles of a 300-timer workload: zero violations."""
    summary = tmp_path / "summary.json"
    proc = run_harness(
        "--cycles",
        "20",
        "--seed",
        "20261126",
        "--workdir",
        str(tmp_path / "work"),
        "--json",
        str(summary),
        "--quiet",
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    report = json.loads(summary.read_text())
    assert report["violations"] == []
    stats = report["stats"]
    # The run did exercise what it claims to: kills, interruptions, retries, all outcomes.
    assert stats["kills"] >= 10
    assert stats["interrupted"] > 0
    assert stats["retries_after_interrupt"] > 0
    assert stats["succeeded"] > 1000
    assert stats["failed"] > 0 and stats["dead"] > 0 and stats["skipped_overlap"] > 0
    assert stats["missed_events"] > 0 or stats["coalesced_runs"] > 0
    assert stats["runs_manual"] > 0
    assert "VIOLATIONS" in proc.stdout


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short run, kept for the tamper tests below."""
    work = tmp_path_factory.mktemp("crashloop") / "work"
    proc = run_harness(
        "--cycles",
        "3",
        "--timers",
        "80",
        "--seed",
        "7",
        "--max-alive",
        "2",
        "--final-seconds",
        "2",
        "--workdir",
        str(work),
        "--keep",
        "--quiet",
        "--no-doctor",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return work


def verify(work: Path) -> subprocess.CompletedProcess[str]:
    return run_harness("--verify-only", str(work), timeout=120)


def copy_work(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["data_dir"] = str(dst / "data")
    cfg["ledger"] = str(dst / "ledger.jsonl")
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_verify_only_passes_on_an_untouched_run(short_run: Path) -> None:
    proc = verify(short_run)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_checker_catches_a_vanished_occurrence(short_run: Path, tmp_path: Path) -> None:
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        seq = db.execute(
            "SELECT seq FROM events WHERE kind = 'RUN_MISSED' "
            "OR (kind = 'RUN_DUE' AND timer_id LIKE 'every-%' AND detail NOT LIKE '%manual%') "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()[0]
        db.execute(
            "UPDATE events SET detail = "
            "json_set(detail, '$.scheduled_at', json_extract(detail, '$.scheduled_at') + 1) WHERE seq = ?",
            (seq,),
        )
    db.close()
    proc = verify(work)
    assert proc.returncode == 1
    assert "does not continue its schedule" in proc.stdout


def test_checker_catches_a_callback_without_run_started(short_run: Path, tmp_path: Path) -> None:
    work = copy_work(short_run, tmp_path / "w")
    with open(work / "ledger.jsonl", "a") as f:
        f.write(
            json.dumps({"t": "every-0001", "r": "run_FAKE", "a": 1, "s": 0, "p": 1, "w": 0, "e": "b"}) + "\n"
        )
    proc = verify(work)
    assert proc.returncode == 1
    assert "its RUN_STARTED is not in history" in proc.stdout


def test_checker_catches_a_moved_next_fire_time(short_run: Path, tmp_path: Path) -> None:
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        changed = db.execute(
            "UPDATE timer_state SET next_scheduled_at = next_scheduled_at + 1000, "
            "next_fire_at = next_fire_at + 1000 WHERE id = "
            "(SELECT id FROM timer_state WHERE next_scheduled_at IS NOT NULL ORDER BY id LIMIT 1)"
        ).rowcount
    db.close()
    assert changed == 1
    proc = verify(work)
    assert proc.returncode == 1
    assert "next_scheduled_at" in proc.stdout


def test_checker_catches_a_lost_outcome(short_run: Path, tmp_path: Path) -> None:
    """A RUN_SUCCEEDED turned into a RUN_FAILED: the ledger says the callback returned."""
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        db.execute(
            "UPDATE events SET kind = 'RUN_FAILED', "
            "detail = json_set(detail, '$.error', 'planned failure of x') "
            "WHERE seq = (SELECT min(seq) FROM events WHERE kind = 'RUN_SUCCEEDED')"
        )
    db.close()
    proc = verify(work)
    assert proc.returncode == 1
    assert "VIOLATION" in proc.stdout
