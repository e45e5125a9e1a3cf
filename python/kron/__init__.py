"""Kron: a durable, observable scheduler for Python applications.

Register timers with Python callbacks, start the embedded runtime, and Kron keeps timers, run
history, retries and state in a data directory, so that nothing is lost when the process dies::

    import kron

    @kron.schedule("cleanup", every="30m")
    def cleanup() -> None:
        ...

    kron.start(data_dir=".kron")

Delivery is at-least-once: make callbacks idempotent (see ``context["idempotency_key"]``).
"""

from __future__ import annotations

import asyncio
import atexit
import builtins
import contextlib
import math
import os
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Final, Literal, TypedDict, TypeVar, Union, overload

from . import _kron, _runner
from ._args import TimerOptions, check_name, describe_function, timer_options
from ._errors import (
    AlreadyStartedError,
    CorruptStorageError,
    DataDirLockedError,
    ForkedProcessError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    KronError,
    NotStartedError,
    RuntimeUnreachableError,
    SchemaVersionError,
    StorageError,
    TimerNotFoundError,
    TimerNotRunnableError,
)

__version__: str = _kron.__version__

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "AlreadyStartedError",
    "CorruptStorageError",
    "DataDirLockedError",
    "ForkedProcessError",
    "HistoryEvent",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "KronError",
    "NotStartedError",
    "RuntimeInfo",
    "RuntimeUnreachableError",
    "SchemaVersionError",
    "StandbyInfo",
    "StorageError",
    "TimerNotFoundError",
    "TimerNotRunnableError",
    "TimerStatus",
    "__version__",
    "alist",
    "ashutdown",
    "astart",
    "astatus",
    "history",
    "list",
    "pause",
    "remove",
    "resume",
    "runtime_info",
    "schedule",
    "shutdown",
    "start",
    "status",
    "trigger",
]

F = TypeVar("F", bound=Callable[..., Any])

#: How many runs of each timer ``start()`` keeps in history unless told otherwise (its
#: ``history_limit``): enough to look back at 1,000 runs when debugging, bounded at about 0.5 MB
#: per timer (a run writes ~4 events of ~120 bytes). ``history_limit=None`` keeps everything.
DEFAULT_HISTORY_LIMIT: Final[int] = _kron.DEFAULT_HISTORY_LIMIT
Duration = Union[str, timedelta]
Overlap = Literal["delay", "skip", "allow"]
Catchup = Literal["once", "skip", "all"]


class TimerStatus(TypedDict):
    """What ``status()`` and ``list()`` return for a timer. Instants are aware UTC datetimes."""

    id: str
    state: Literal["scheduled", "running", "retrying", "paused", "orphaned", "completed", "dead"]
    schedule: str
    timezone: str
    fn_name: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None
    last_error: str | None
    last_duration_ms: int | None
    run_count: int
    failure_count: int
    max_attempts: int
    overlap: str
    catchup: str
    jitter_ms: int
    active_runs: int
    created_at: datetime
    updated_at: datetime
    storage_error: str | None
    #: The process that owns the data directory and runs the timers (this one while active).
    active_pid: int | None


class StandbyInfo(TypedDict):
    """A process waiting to take the data directory over (see ``start(standby=True)``)."""

    pid: int
    since: datetime | None


class RuntimeInfo(TypedDict):
    """What ``runtime_info()`` returns."""

    #: "active": this process owns the data directory and runs the timers; "standby": another
    #: process owns it and this one takes over when it goes; "stopped": not started or shut down.
    role: Literal["active", "standby", "stopped"]
    pid: int
    #: When this process became active or standby.
    since: datetime | None
    data_dir: str | None
    #: The process that owns the data directory now (None when nobody does).
    active_pid: int | None
    #: The live standbys of the data directory, oldest first (this process too if it is one).
    standbys: builtins.list[StandbyInfo]
    #: Why the last take-over failed (the standby then stopped waiting), or None.
    error: str | None


class HistoryEvent(TypedDict):
    """One entry of ``history()``, oldest first."""

    seq: int
    ts: datetime
    timer_id: str
    kind: str
    run_id: str | None
    attempt: int | None
    scheduled_at: datetime | None
    error: str | None
    duration_ms: int | None
    next_attempt_at: datetime | None
    count: int | None
    until: datetime | None
    manual: bool
    schedule: str | None
    next_run_at: datetime | None


_STATUS_INSTANTS = ("next_run_at", "last_run_at", "created_at", "updated_at")
_EVENT_INSTANTS = ("ts", "scheduled_at", "next_attempt_at", "until", "next_run_at")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_INSTANT = datetime.max.replace(tzinfo=timezone.utc)
_MIN_INSTANT = datetime.min.replace(tzinfo=timezone.utc)


def _instant(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # beyond what datetime represents (years 1 to 9999): clamp
        return _MAX_INSTANT if ms > 0 else _MIN_INSTANT


def _with_datetimes(raw: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        raw[key] = _instant(raw[key])
    return raw


#: In a child forked from a process that had started Kron: that parent's pid.
_forked_from: int | None = None
#: Taken just before a fork: whether Kron was started, by which pid, and the descriptors that
#: hold the data directory's locks (the child closes them, see `kron_store::fork_fds`).
_at_fork: tuple[bool, int, builtins.list[int]] = (False, 0, [])


def _before_fork() -> None:
    global _at_fork
    _at_fork = (_kron.is_running(), os.getpid(), _kron.fork_fds())


def _after_fork_in_child() -> None:
    global _forked_from
    started, parent, fds = _at_fork
    # Kept open, these would keep the directory locked after the parent died: no standby could
    # take over while this child lives. Closing them here releases nothing in the parent.
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if started:
        _forked_from = parent


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _check_not_forked() -> None:
    if _forked_from is not None:
        raise ForkedProcessError(
            f"kron was started in process {_forked_from} before this process (pid {os.getpid()}) "
            "was forked from it, and a runtime's threads do not survive a fork. Call "
            "kron.start(..., standby=True) after the fork, in each process (gunicorn: at app "
            "start-up without --preload, or in the post_fork hook), not before it"
        )


def _register(name: str, fn: Callable[..., Any], options: TimerOptions) -> None:
    _check_not_forked()
    _kron.register(name, options, describe_function(fn))


@overload
def schedule(
    name: str,
    fn: None = None,
    *,
    cron: str | None = None,
    every: Duration | None = None,
    after: Duration | None = None,
    at: datetime | str | None = None,
    timezone: str = "UTC",
    max_attempts: int = 3,
    overlap: Overlap = "delay",
    catchup: Catchup = "once",
    jitter: Duration | None = None,
) -> Callable[[F], F]: ...


@overload
def schedule(
    name: str,
    fn: F,
    *,
    cron: str | None = None,
    every: Duration | None = None,
    after: Duration | None = None,
    at: datetime | str | None = None,
    timezone: str = "UTC",
    max_attempts: int = 3,
    overlap: Overlap = "delay",
    catchup: Catchup = "once",
    jitter: Duration | None = None,
) -> F: ...


def schedule(
    name: str,
    fn: Callable[..., Any] | None = None,
    *,
    cron: str | None = None,
    every: Duration | None = None,
    after: Duration | None = None,
    at: datetime | str | None = None,
    timezone: str = "UTC",
    max_attempts: int = 3,
    overlap: Overlap = "delay",
    catchup: Catchup = "once",
    jitter: Duration | None = None,
) -> Any:
    """Registers (or re-registers) the timer ``name`` to call ``fn``.

    Give exactly one of ``cron`` (5 fields, or 6 with seconds first, read in ``timezone``),
    ``every`` / ``after`` (``"500ms"``, ``"30m"``, ``"1h30m"``, ``"2d"`` or a ``timedelta``) or
    ``at`` (an aware datetime, an ISO 8601 string, or a naive value read in ``timezone``).
    Without ``fn`` it returns a decorator. Works before and after :func:`start`; registering the
    same definition again keeps the persisted state, a changed one is recorded as
    ``TIMER_UPDATED`` and its next run recomputed. Bad arguments raise ``ValueError`` or
    ``TypeError`` naming the argument; nothing is written.
    """
    if type(name) is not str:
        check_name(name)
    # Checked here in both forms, so a bad decorator fails at the line that wrote it.
    options = timer_options(
        cron=cron,
        every=every,
        after=after,
        at=at,
        timezone=timezone,
        max_attempts=max_attempts,
        overlap=overlap,
        catchup=catchup,
        jitter=jitter,
    )
    if fn is not None:
        _register(name, fn, options)
        return fn

    def decorator(func: F) -> F:
        _register(name, func, options)
        return func

    return decorator


#: Largest ``max_workers`` (threads the runtime starts).
_MAX_WORKERS = 1024
_I64_MAX = 2**63 - 1


def start(
    data_dir: str | os.PathLike[str] = ".kron",
    *,
    max_workers: int = 8,
    durability: Literal["normal", "full"] = "normal",
    history_limit: int | None = DEFAULT_HISTORY_LIMIT,
    standby: bool = False,
) -> None:
    """Opens ``data_dir``, recovers, and starts the runtime in background threads; returns at once.

    Raises ``AlreadyStartedError`` if this process already started it, and ``DataDirLockedError``
    (naming the directory and the owner's pid) if another process owns the directory, unless
    ``standby=True``: then this process becomes a *standby* of the owner. It runs nothing, and
    takes over within a second when the owner shuts down, exits or dies (SIGKILL included),
    running the timers registered in this process; runs the owner left unfinished are recorded
    as interrupted and retried, as after any crash. Meanwhile ``status``, ``list`` and
    ``history`` read the directory, and ``pause``, ``resume``, ``trigger`` and ``remove`` are
    sent to the owner. Call it in every process of an application (every gunicorn or uvicorn
    worker, both sides of a rolling deploy): exactly one runs the timers. See
    :func:`runtime_info`.
    ``durability="normal"`` survives any crash of the process; ``"full"`` also survives power
    loss, with an fsync per commit (see docs/guarantees.md).

    ``history_limit=N`` keeps the latest N runs of each timer in history, and the latest N of its
    events that belong to no run (registered, updated, paused, ...); events of runs in flight
    always stay. The default, ``DEFAULT_HISTORY_LIMIT`` = 1,000 runs, is a debugging aid (the
    last 17 minutes of a timer firing every second, 3 years of a daily one) with a bound: about
    0.5 MB per timer, where keeping everything grows by ~40 MB a day for one ``every="1s"``
    timer. ``history_limit=None`` keeps everything (until ``kron log compact`` removes it).
    Retention runs in a background thread from start on (start does not wait for it) and again
    as history grows, in transactions short enough never to delay a due run.
    """
    _check_not_forked()
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise InvalidArgumentTypeError(
            f"max_workers must be an int, got {type(max_workers).__name__}", "max_workers"
        )
    if not isinstance(standby, bool):
        raise InvalidArgumentTypeError(f"standby must be a bool, got {type(standby).__name__}", "standby")
    if not isinstance(data_dir, (str, os.PathLike)):
        raise InvalidArgumentTypeError(
            f"data_dir must be a path, got {type(data_dir).__name__} {data_dir!r}", "data_dir"
        )
    path = os.fspath(data_dir)
    if not path or "\x00" in path:
        raise InvalidArgumentError(f"invalid data_dir {path!r}: must be a non-empty path", "data_dir", path)
    if not isinstance(durability, str):
        raise InvalidArgumentTypeError("durability must be 'normal' or 'full'", "durability")
    if history_limit is not None and (isinstance(history_limit, bool) or not isinstance(history_limit, int)):
        raise InvalidArgumentTypeError(
            f"history_limit must be an int or None, got {type(history_limit).__name__}", "history_limit"
        )
    # Ints beyond 64 bits would fail in the native conversion with a bare OverflowError.
    if not 1 <= max_workers <= _MAX_WORKERS:
        raise InvalidArgumentError(
            f"invalid max_workers {max_workers}: must be between 1 and {_MAX_WORKERS}",
            "max_workers",
            max_workers,
        )
    if history_limit is not None and history_limit > _I64_MAX:
        raise InvalidArgumentError(
            f"invalid history_limit {history_limit}: must be between 1 and {_I64_MAX} (2**63 - 1), or None",
            "history_limit",
            history_limit,
        )
    _kron.start(path, max_workers, durability, _runner.run_batch, _runner.log, history_limit, standby)


def shutdown(timeout: float = 5.0) -> None:
    """Starts no new runs, waits up to ``timeout`` seconds for active ones, flushes and releases
    the data directory. Safe when not started and when called twice. A run still going at the
    timeout is recorded as interrupted at the next start (and retried). ``timeout=0`` does not
    wait; ``math.inf`` waits as long as the runs take; a negative or NaN timeout is a
    ``ValueError``. A standby stops waiting: it will not take over."""
    _check_not_forked()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidArgumentTypeError(
            f"timeout must be a number of seconds, got {type(timeout).__name__} {timeout!r}", "timeout"
        )
    try:
        seconds = float(timeout)
    except OverflowError:  # an int too large for a float: longer than any run
        seconds = math.inf
    if not seconds >= 0.0:  # also catches NaN
        raise InvalidArgumentError(
            f"invalid timeout {timeout!r}: must be a number of seconds >= 0 (math.inf waits without limit)",
            "timeout",
            timeout,
        )
    if _runner.in_callback():
        # A callback cannot wait for itself to finish: shut down from another thread, which
        # waits for this callback to return and records its outcome.
        threading.Thread(target=_kron.shutdown, args=(seconds,), name="kron-shutdown", daemon=True).start()
        return
    _kron.shutdown(seconds)


#: How long an exiting interpreter waits for active runs (see `_shutdown_at_exit`).
EXIT_TIMEOUT_S = 5.0


@atexit.register
def _shutdown_at_exit() -> None:
    # An application that exits without calling shutdown() still gets a graceful stop: active
    # runs may finish (up to EXIT_TIMEOUT_S) and their outcomes are committed, instead of being
    # found interrupted at the next start. A standby stops waiting, so it cannot take over while
    # the interpreter finalizes. A forked child has no runtime of its own to stop.
    if _forked_from is None and _kron.is_running():
        _kron.shutdown(EXIT_TIMEOUT_S)


def status(name: str) -> TimerStatus | None:
    """The timer's status, or ``None`` if there is no such timer."""
    _check_not_forked()
    raw = _kron.status(check_name(name))
    if raw is None:
        return None
    result: TimerStatus = _with_datetimes(raw, _STATUS_INSTANTS)
    return result


def list() -> builtins.list[TimerStatus]:
    """Every timer's status, sorted by id."""
    _check_not_forked()
    return [_with_datetimes(raw, _STATUS_INSTANTS) for raw in _kron.list()]


#: Largest ``history(limit=...)``: the native layer counts events in a signed 64-bit integer.
_MAX_HISTORY_LIMIT = _I64_MAX


def history(name: str, limit: int = 100) -> builtins.list[HistoryEvent]:
    """The timer's latest ``limit`` events (an int from 0 to 2**63 - 1), oldest first."""
    _check_not_forked()
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidArgumentTypeError(f"limit must be an int, got {type(limit).__name__}", "limit")
    if not 0 <= limit <= _MAX_HISTORY_LIMIT:
        raise InvalidArgumentError(
            f"invalid limit {limit}: must be between 0 and {_MAX_HISTORY_LIMIT} (2**63 - 1)", "limit", limit
        )
    return [_with_datetimes(raw, _EVENT_INSTANTS) for raw in _kron.history(check_name(name), limit)]


def pause(name: str) -> None:
    """Stops the timer from starting runs (``TIMER_PAUSED``) until :func:`resume`."""
    _check_not_forked()
    _kron.pause(check_name(name))


def resume(name: str) -> None:
    """Resumes a paused timer (``TIMER_RESUMED``)."""
    _check_not_forked()
    _kron.resume(check_name(name))


def trigger(name: str) -> str:
    """Runs the timer now, off-schedule; returns the new run's id."""
    _check_not_forked()
    return _kron.trigger(check_name(name))


def remove(name: str) -> None:
    """Deletes the timer (``TIMER_REMOVED``); its history stays. In a standby, also forgets the
    timer here, so that taking over does not bring it back."""
    _check_not_forked()
    _kron.remove(check_name(name))


def runtime_info() -> RuntimeInfo:
    """Whether this process is the active runtime of its data directory or a standby (or
    stopped), since when, which process is active, and the standbys waiting."""
    _check_not_forked()
    raw = _kron.runtime_info()
    for standby in raw["standbys"]:
        standby["since"] = _instant(standby["since"])
    info: RuntimeInfo = _with_datetimes(raw, ("since",))
    return info


async def astart(
    data_dir: str | os.PathLike[str] = ".kron",
    *,
    max_workers: int = 8,
    durability: Literal["normal", "full"] = "normal",
    history_limit: int | None = DEFAULT_HISTORY_LIMIT,
    standby: bool = False,
) -> None:
    """:func:`start`, run in a thread so the event loop never blocks."""
    await asyncio.to_thread(
        start,
        data_dir,
        max_workers=max_workers,
        durability=durability,
        history_limit=history_limit,
        standby=standby,
    )


async def ashutdown(timeout: float = 5.0) -> None:
    """:func:`shutdown`, run in a thread so the event loop never blocks."""
    await asyncio.to_thread(shutdown, timeout)


async def astatus(name: str) -> TimerStatus | None:
    """:func:`status`, run in a thread."""
    return await asyncio.to_thread(status, name)


async def alist() -> builtins.list[TimerStatus]:
    """:func:`list`, run in a thread."""
    return await asyncio.to_thread(list)
