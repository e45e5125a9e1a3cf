"""astart / astatus / alist / ashutdown: same behaviour as the sync calls, without blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import STATUS_KEYS, Children, Recorder, count, wait_until


def noop() -> None:
    pass


class Ticker:
    """An asyncio task that counts loop iterations while something else is awaited."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.005)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def test_astart_astatus_alist_ashutdown(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")

    async def main() -> dict[str, Any]:
        ticker = Ticker()
        ticker.start()
        await kron.astart(data_dir)
        await asyncio.sleep(0.05)
        assert ticker.ticks > 0  # the loop kept running
        # awaiting the runtime does not block the loop: callbacks run meanwhile
        for _ in range(400):
            if recorder.n(name) >= 2:
                break
            await asyncio.sleep(0.03)
        st = await kron.astatus(name)
        unknown = await kron.astatus("unknown-timer-in-async-test")
        listed = await kron.alist()
        await kron.ashutdown(5)
        await ticker.stop()
        return {"status": st, "unknown": unknown, "list": listed}

    res = asyncio.run(main())
    assert recorder.n(name) >= 2
    st = res["status"]
    assert STATUS_KEYS <= set(st)
    assert st["schedule"] == "every 200ms"
    assert res["unknown"] is None
    ids = [t["id"] for t in res["list"]]
    assert ids == sorted(ids)
    assert st["id"] in ids


def test_astart_keeps_the_loop_running(name: str, data_dir: str) -> None:
    kron.schedule(name, noop, every="1h")

    async def main() -> tuple[int, int]:
        ticker = Ticker()
        ticker.start()
        await asyncio.sleep(0.02)
        before = ticker.ticks
        await asyncio.gather(kron.astart(data_dir), asyncio.sleep(0.1))
        during = ticker.ticks - before
        await ticker.stop()
        return before, during

    before, during = asyncio.run(main())
    assert before > 0
    assert during > 0
    assert kron.status(name)["state"] == "scheduled"


def test_ashutdown_does_not_block_the_loop(name: str, data_dir: str) -> None:
    """ashutdown waits for an active run; the run is released by the event loop itself, which
    can only happen if the loop keeps running while ashutdown is awaited."""
    release = threading.Event()
    entered = threading.Event()
    finished = threading.Event()

    def blocker() -> None:
        entered.set()
        if release.wait(20):
            finished.set()

    kron.schedule(name, blocker, after="50ms")

    async def main() -> int:
        await kron.astart(data_dir)
        for _ in range(500):
            if entered.is_set():
                break
            await asyncio.sleep(0.02)
        assert entered.is_set()
        ticker = Ticker()
        ticker.start()
        asyncio.get_running_loop().call_later(0.5, release.set)
        await kron.ashutdown(timeout=15)
        ticks = ticker.ticks
        await ticker.stop()
        return ticks

    try:
        ticks = asyncio.run(main())
    finally:
        release.set()
    assert finished.is_set(), "the active run was not allowed to finish"
    assert ticks >= 5


def test_astart_errors_propagate(data_dir: str, tmp_path: Path) -> None:
    async def main() -> None:
        await kron.astart(data_dir)
        with pytest.raises(kron.AlreadyStartedError, match=r"(?i)already started"):
            await kron.astart(str(tmp_path / "other"))
        await kron.ashutdown(5)
        await kron.ashutdown(5)  # twice is safe

    asyncio.run(main())


def test_astart_refused_by_other_process(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    ready = tmp_path / "ready"
    owner = children.spawn(
        """
data_dir, ready = sys.argv[1:3]
kron.start(data_dir)
touch(ready)
time.sleep(120)
""",
        data_dir,
        ready,
    )
    children.wait_for_file(owner, ready)

    async def main() -> None:
        with pytest.raises(kron.DataDirLockedError) as info:
            await kron.astart(data_dir)
        assert info.value.pid == owner.pid

    asyncio.run(main())


def test_async_callback_under_async_api(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.async_callback(name, sleep=0.01), every="200ms")

    async def main() -> None:
        await kron.astart(data_dir)
        for _ in range(500):
            if recorder.finished(name) >= 2:
                break
            await asyncio.sleep(0.02)

    asyncio.run(main())
    assert recorder.finished(name) >= 2
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 2)
