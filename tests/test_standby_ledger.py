"""The standby ledger (tools/standby_ledger.py) at CI size, and proof that its checks bite.

The long run is ``python tools/standby_ledger.py --kills 150 --seed 1`` (see docs/reliability.md).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import run_tool


def run_harness(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return run_tool("standby_ledger.py", *args, timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_standby_ledger_ci_size_has_no_violation(tmp_path: Path) -> None:
    """10 cycles of three processes on one directory, the owner killed each time: no violation."""
    summary = tmp_path / "summary.json"
    proc = run_harness(
        "--kills",
        "10",
        "--seed",
        "20261204",
        "--takeover-limit",
        "3",
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
    stats, history = report["stats"], report["history"]
    # The run did exercise what it claims to: kills, take-overs, interruptions, retries.
    assert stats["owner_kills"] >= 5
    assert stats["takeovers"] == stats["owner_kills"] + stats["handovers"]
    assert stats["processes_that_owned"] == stats["takeovers"] + 1
    assert stats["takeover_ms"]["kill_to_lock"]["n"] == stats["owner_kills"]
    assert stats["interrupted"] > 0
    assert stats["retried_after_interruption"] > 0
    assert history["succeeded"] > 100
    assert history["failed"] > 0 and history["skipped_overlap"] > 0
    assert "VIOLATIONS" in proc.stdout


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short run, kept for the tamper tests below."""
    work = tmp_path_factory.mktemp("standby-ledger") / "work"
    proc = run_harness(
        "--kills",
        "3",
        "--seed",
        "7",
        "--graceful",
        "0",
        "--standby-kills",
        "0",
        "--takeover-limit",
        "3",
        "--final-seconds",
        "1",
        "--workdir",
        str(work),
        "--keep",
        "--quiet",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return work


def verify(work: Path) -> subprocess.CompletedProcess[str]:
    return run_harness("--verify-only", str(work), timeout=120)


def copy_work(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["data_dir"] = str(dst / "data")
    cfg["ledger"] = str(dst / "ledger.jsonl")
    cfg["procs"] = str(dst / "procs.jsonl")
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_verify_only_passes_on_an_untouched_run(short_run: Path) -> None:
    proc = verify(short_run)
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.timeout(180)
def test_checker_catches_two_active_processes(short_run: Path, tmp_path: Path) -> None:
    """A callback of an earlier owner, written while the last owner held the directory."""
    work = copy_work(short_run, tmp_path / "w")
    owners = [rec["p"] for rec in read_lines(work / "procs.jsonl") if rec["e"] == "owner"]
    assert len(owners) >= 2
    earlier, last = owners[-2], owners[-1]
    begins = [rec for rec in read_lines(work / "ledger.jsonl") if rec["e"] == "b" and rec["p"] == last]
    fake = dict(begins[len(begins) // 2], p=earlier)
    with open(work / "ledger.jsonl", "a") as f:
        f.write(json.dumps(fake) + "\n")
    proc = verify(work)
    assert proc.returncode == 1
    assert f"two active processes: pid {earlier} began" in proc.stdout


@pytest.mark.timeout(180)
def test_checker_catches_an_occurrence_made_due_late(short_run: Path, tmp_path: Path) -> None:
    """An occurrence of the 100 ms timer made due 5 s after its time, with no take-over between."""
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        changed = db.execute(
            "UPDATE events SET ts = ts + 5000 WHERE seq = (SELECT max(seq) FROM events "
            "WHERE kind = 'RUN_DUE' AND timer_id = 'every-0100')"
        ).rowcount
    db.close()
    assert changed == 1
    proc = verify(work)
    assert proc.returncode == 1
    assert "every-0100 occurrence" in proc.stdout and "late" in proc.stdout


@pytest.mark.timeout(180)
def test_checker_catches_an_interrupted_run_not_retried(short_run: Path, tmp_path: Path) -> None:
    """The retry that follows an interruption turned into a retry of a later attempt."""
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        row = db.execute(
            "SELECT r.seq FROM events i JOIN events r ON r.run_id = i.run_id AND r.seq > i.seq "
            "AND r.kind = 'RUN_RETRYING' WHERE i.kind = 'RUN_INTERRUPTED' ORDER BY i.seq LIMIT 1"
        ).fetchone()
        if row is None:
            pytest.skip("no interrupted run was retried in this short run")
        db.execute("UPDATE events SET attempt = attempt + 1 WHERE seq = ?", (row[0],))
    db.close()
    proc = verify(work)
    assert proc.returncode == 1
    assert "was interrupted, then" in proc.stdout


@pytest.mark.timeout(180)
def test_checker_catches_a_lost_run(short_run: Path, tmp_path: Path) -> None:
    """A due run whose outcome vanished (turned into another run's event) and is not waiting."""
    work = copy_work(short_run, tmp_path / "w")
    db = sqlite3.connect(work / "data" / "kron.db")
    with db:
        db.execute(
            "UPDATE events SET run_id = 'run_GONE' WHERE seq = "
            "(SELECT min(seq) FROM events WHERE kind = 'RUN_SUCCEEDED')"
        )
    db.close()
    proc = verify(work)
    assert proc.returncode == 1
    assert "has no outcome and is not in the runs table" in proc.stdout
