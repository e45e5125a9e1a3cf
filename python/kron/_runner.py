"""Runs callbacks for the native runtime: called on a worker thread with a batch of jobs.

Every exception a callback raises (``SystemExit`` and ``KeyboardInterrupt`` included) becomes a
failed attempt with its type, message and traceback, logged to the ``kron`` logger; nothing a
callback does can kill a worker.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Protocol

logger = logging.getLogger("kron")

#: Longest error text kept per failed attempt (type, message and traceback).
MAX_ERROR_CHARS = 4096

Job = tuple[Callable[..., Any], bool, bool, str, str, int, int]
Result = tuple[bool, float, "str | None"]


def context_for(timer_id: str, run_id: str, attempt: int, scheduled_ms: int) -> dict[str, Any]:
    scheduled_at, iso = _instant(scheduled_ms)
    return {
        "timer_id": timer_id,
        "run_id": run_id,
        "attempt": attempt,
        "scheduled_at": scheduled_at,
        "idempotency_key": f"{timer_id}:{iso}",
    }


_instants = threading.local()


def _instant(scheduled_ms: int) -> tuple[datetime, str]:
    """The occurrence's aware UTC datetime and its ISO text. Runs due at the same instant (a
    burst, timers sharing a schedule) come in a row, so each worker thread keeps the last one:
    building and formatting a datetime was a tenth of a burst callback's cost."""
    last: tuple[int, datetime, str] | None = getattr(_instants, "last", None)
    if last is not None and last[0] == scheduled_ms:
        return last[1], last[2]
    scheduled_at = datetime.fromtimestamp(scheduled_ms / 1000, tz=timezone.utc)
    iso = scheduled_at.isoformat()
    _instants.last = (scheduled_ms, scheduled_at, iso)
    return scheduled_at, iso


_local = threading.local()

#: Set inside the task that runs an ``async def`` callback on the runtime's event loop (and so
#: in every task or ``asyncio.to_thread`` call it starts, which copy its context). The worker
#: that waits for the coroutine is another thread, so the thread-local flag cannot tell.
_in_async_callback: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kron_in_async_callback", default=False
)


def in_callback() -> bool:
    """Whether the caller is running inside a Kron callback right now: on the worker thread of a
    plain callback, or in the context of an ``async def`` one."""
    return bool(getattr(_local, "active", False)) or _in_async_callback.get()


class Gate(Protocol):
    """Asked right before each callback of a batch whether it may begin (false once the runtime
    is shutting down: then neither it nor any later callback of the batch is called)."""

    def begin(self) -> bool: ...


def run_batch(jobs: list[Job], gate: Gate) -> list[Result]:
    """Runs the jobs in order; returns one result per job called."""
    begin = gate.begin
    results: list[Result] = []
    _local.active = True
    try:
        for job in jobs:
            if not begin():
                break
            results.append(_run_isolated(job))
        return results
    finally:
        _local.active = False


def _run_isolated(job: Job) -> Result:
    # `_run_one` records every exception of the callback; this guards against failures in the
    # recording itself (an exception whose __str__ raises, a logging handler that fails), so one
    # job can never fail the others of its batch.
    try:
        return _run_one(job)
    except BaseException as exc:  # noqa: BLE001
        return (False, 0.0, f"{type(exc).__qualname__} while recording the callback's outcome")


def _run_one(job: Job) -> Result:
    fn, takes_context, is_async, timer_id, run_id, attempt, scheduled_ms = job
    started = time.perf_counter()
    try:
        if takes_context:
            result = fn(context_for(timer_id, run_id, attempt, scheduled_ms))
        else:
            result = fn()
        # Most callbacks return None: skip the awaitable check (a few isinstance tests) for them.
        if is_async or (result is not None and inspect.isawaitable(result)):
            _event_loop().run(result)
        elif result is not None and (inspect.isgenerator(result) or inspect.isasyncgen(result)):
            # A wrapped generator function that schedule() could not recognise: its body never
            # ran, so the run must not count as a success.
            raise TypeError(
                f"the callback returned a {type(result).__name__} instead of running: "
                "a generator function's body runs only when iterated; use a plain function"
            )
    except BaseException as exc:  # noqa: BLE001 - a callback must never take a worker down
        elapsed = (time.perf_counter() - started) * 1000
        error = _describe(exc)
        try:
            logger.error(
                "timer %r run %s attempt %d failed: %s",
                timer_id,
                run_id,
                attempt,
                error.splitlines()[0] if error else type(exc).__name__,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        except BaseException:  # noqa: BLE001 - the outcome is recorded even if logging fails
            pass
        return (False, elapsed, error)
    return (True, (time.perf_counter() - started) * 1000, None)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 - an exception's __str__ may itself raise
        return f"<unprintable {type(exc).__qualname__}>"


def _describe(exc: BaseException) -> str:
    head = f"{type(exc).__qualname__}: {_safe_str(exc)}".rstrip(": ").strip()
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except BaseException:  # noqa: BLE001
        tb = "(traceback unavailable)"
    text = f"{head}\n{tb}"
    if len(text) > MAX_ERROR_CHARS:
        keep = MAX_ERROR_CHARS - 40
        text = text[: keep // 2] + "\n... (truncated) ...\n" + text[-keep // 2 :]
    return text


def log(level: int, message: str) -> None:
    logger.log(level, message)


class _EventLoop:
    """The runtime's own asyncio loop, in a daemon thread, for ``async def`` callbacks."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kron-asyncio", daemon=True)
        self._thread.start()

    def run(self, awaitable: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(_as_callback(awaitable), self._loop).result()


async def _as_callback(awaitable: Awaitable[Any]) -> Any:
    # The task has its own copy of the context: the flag stays inside this callback.
    _in_async_callback.set(True)
    return await awaitable


_loop_lock = threading.Lock()
_loop: _EventLoop | None = None


def _event_loop() -> _EventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = _EventLoop()
        return _loop
