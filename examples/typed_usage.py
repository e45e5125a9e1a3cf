"""A typed use of the public API; `mypy --strict` checks it (see `make lint`)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import kron


@kron.schedule("typed-cleanup", every="30m", overlap="skip")
def cleanup() -> None:
    pass


def report(context: dict[str, Any]) -> None:
    key: str = context["idempotency_key"]
    print(key)


async def refresh(context: dict[str, Any]) -> None:
    await asyncio.sleep(0)


def main() -> None:
    kron.schedule("typed-report", fn=report, cron="0 8 * * MON-FRI", timezone="Europe/Berlin", max_attempts=5)
    kron.schedule("typed-refresh", fn=refresh, every=timedelta(minutes=5), jitter="30s")
    kron.schedule(
        "typed-once", fn=cleanup, at=datetime.now(timezone.utc) + timedelta(hours=1), catchup="skip"
    )
    kron.start(data_dir=".kron", max_workers=4)
    status = kron.status("typed-report")
    if status is not None:
        next_run: datetime | None = status["next_run_at"]
        print(status["state"], status["schedule"], next_run)
    for timer in kron.list():
        print(timer["id"], timer["run_count"], timer["failure_count"])
    for event in kron.history("typed-report", limit=10):
        print(event["seq"], event["kind"], event["attempt"])
    kron.shutdown(timeout=5.0)


async def amain() -> None:
    await kron.astart(data_dir=".kron")
    timers = await kron.alist()
    print(len(timers), await kron.astatus("typed-refresh"))
    await kron.ashutdown(timeout=5.0)


if __name__ == "__main__":
    main()
