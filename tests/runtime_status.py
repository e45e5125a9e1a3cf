"""``kron runtime status`` for the tests: the console script installed next to this Python (or
``KRON_BIN``), run on a data directory, its ``--json`` answer parsed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

from conftest import find_kron, wait_until

kron_bin = find_kron


def runtime_status(data_dir: str | Path, *extra: str) -> str:
    """The output of ``kron --data-dir DIR runtime status [extra]`` (which must succeed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("KRON_HOME", "COLUMNS")}
    env.update(TZ="UTC", NO_COLOR="1")
    result = subprocess.run(
        [kron_bin(), "--data-dir", str(data_dir), "runtime", "status", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "panicked" not in result.stderr
    return result.stdout


def runtime_status_json(data_dir: str | Path) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(runtime_status(data_dir, "--json"))
    return status


def standby_pids(status: dict[str, Any]) -> set[int]:
    """The pids of the standbys in a ``--json`` answer."""
    return {s["pid"] for s in status["standbys"]}


def text_standby_pids(data_dir: str | Path) -> set[int]:
    """The pids of the ``standby  pid N, waiting since T`` lines of the text answer."""
    lines = re.findall(r"^\s*standby\s+pid (\d+),? (?:waiting )?since \S", runtime_status(data_dir), re.M)
    return {int(pid) for pid in lines}


def status_when(
    data_dir: str | Path, wanted: Callable[[dict[str, Any]], bool], what: str, timeout: float = 15.0
) -> dict[str, Any]:
    """The first ``--json`` answer for which ``wanted`` holds (waits for it)."""

    def probe() -> dict[str, Any] | None:
        status = runtime_status_json(data_dir)
        return status if wanted(status) else None

    found: dict[str, Any] = wait_until(probe, timeout=timeout, message=what)
    return found
