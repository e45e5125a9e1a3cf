"""A short smoke test of an installed Kron, run from outside the source tree.

Usage: python wheel_smoke.py VERSION

Checks that `kron` is imported from the installed package (not a clone), that its version is
VERSION, and that the embedded API works end to end: a timer fires, its outcome is durable, a
restart finds it, and bad input is refused.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import kron


def main(version: str) -> None:
    location = Path(kron.__file__).resolve()
    print(f"kron {kron.__version__} from {location.parent}")
    if "site-packages" not in location.parts:
        raise SystemExit(f"kron was imported from {location}, not from an installed package")
    if kron.__version__ != version:
        raise SystemExit(f"kron.__version__ is {kron.__version__}, expected {version}")

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = str(Path(tmp) / ".kron")
        ran = threading.Event()

        def tick(context: dict[str, object]) -> None:
            ran.set()

        kron.schedule("smoke", fn=tick, every="200ms")
        kron.start(data_dir=data_dir)
        try:
            if not ran.wait(timeout=30):
                raise SystemExit("the timer did not fire within 30 s")
            # The callback has begun; its outcome is committed right after it returns.
            wanted = {"TIMER_CREATED", "RUN_DUE", "RUN_STARTED", "RUN_SUCCEEDED"}
            deadline = time.monotonic() + 30
            while not wanted <= (kinds := {event["kind"] for event in kron.history("smoke")}):
                if time.monotonic() > deadline:
                    raise SystemExit(f"history lacks the expected events: {sorted(kinds)}")
                time.sleep(0.05)
        finally:
            kron.shutdown(timeout=5.0)

        # A restart finds the timer and its runs where the first process left them.
        kron.schedule("smoke", fn=tick, every="200ms")
        kron.start(data_dir=data_dir)
        try:
            restored: dict[str, object] = dict(kron.status("smoke") or {})
        finally:
            kron.shutdown(timeout=5.0)
        runs = restored.get("run_count")
        if not isinstance(runs, int) or runs < 1:
            raise SystemExit(f"the restart lost the recorded runs: {restored}")

        try:
            kron.schedule("bad", fn=tick, cron="0 25 * * *")
        except ValueError as error:
            print(f"bad input refused: {error}")
        else:
            raise SystemExit("an invalid cron expression was accepted")
    print("smoke test passed")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
