"""``kron.Worker``: runs the tasks of a Kron server's timers, anywhere.

A worker registers the task names it serves, then polls: a poll claims due runs of those tasks
under a lease and answers each with a fencing token. The worker runs the task's function with
the run's JSON payload and reports success or failure with that token; the server refuses a
report whose token is stale (the lease expired and the run went to another worker). While
tasks run, heartbeats extend their leases, so a long task keeps its run.

Delivery is at-least-once: a worker that dies mid-task loses its lease and the run is retried
elsewhere. Make tasks idempotent (``context["idempotency_key"]`` is the same for every attempt
of one due run).
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from types import FrameType
from typing import Any, TypeVar

from ._client import parse_instant
from ._errors import InvalidArgumentError, InvalidArgumentTypeError, KronError
from ._http import Transport
from ._reports import Reporter
from ._runner import MAX_ERROR_CHARS, _event_loop

logger = logging.getLogger("kron")

F = TypeVar("F", bound=Callable[..., Any])

#: Longest a poll waits on the server for work before asking again.
POLL_WAIT_S = 5.0


class _Task:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
            self.takes_context = len(params) >= 2
        except (TypeError, ValueError):
            self.takes_context = False


class Worker:
    """Claims and runs due runs of the tasks registered with :meth:`task`.

    ``concurrency`` tasks run at once (threads); ``lease_seconds`` is how long a claim holds a
    run without a heartbeat (the server's default, 30 s, when ``None``; the server counts whole
    seconds, so a fraction is rounded up); ``worker_id``
    defaults to ``host-pid-random``. ``token`` defaults to the ``KRON_TOKEN`` environment
    variable.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        worker_id: str | None = None,
        concurrency: int = 1,
        lease_seconds: float | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise InvalidArgumentTypeError(
                f"concurrency must be an int, got {type(concurrency).__name__}", "concurrency"
            )
        if not 1 <= concurrency <= 1024:
            raise InvalidArgumentError(
                f"invalid concurrency {concurrency}: must be between 1 and 1024", "concurrency", concurrency
            )
        if lease_seconds is not None and (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, (int, float))
            or not lease_seconds > 0
        ):
            raise InvalidArgumentError(
                f"invalid lease_seconds {lease_seconds!r}: must be a number of seconds > 0",
                "lease_seconds",
                lease_seconds,
            )
        if worker_id is None:
            worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        elif not isinstance(worker_id, str) or not worker_id:
            raise InvalidArgumentError(
                f"invalid worker_id {worker_id!r}: must be a non-empty str", "worker_id", worker_id
            )
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self._http = Transport(url, token, timeout=POLL_WAIT_S + 10.0)
        # Outcomes go in batches; one the server did not answer is resent while its leases
        # may still hold.
        self._reports = Reporter(self._http, worker_id, give_up_after_s=lease_seconds or 30.0)
        self._tasks: dict[str, _Task] = {}
        self._stop = threading.Event()
        self._registered = False
        # Claimed runs not yet started, taken by the executing threads in order.
        self._pending: deque[dict[str, Any]] = deque()
        # One item wakes one sleeping executing thread; None stops one.
        self._wake: SimpleQueue[bool | None] = SimpleQueue()
        self._sleeping = 0
        self._waking = 0
        self._in_flight = 0
        self._polling_waits = False
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def task(self, name: str) -> Callable[[F], F]:
        """Registers the decorated function as the task ``name``. It takes ``payload``, or
        ``(payload, context)`` with ``run_id``, ``timer_id``, ``attempt``, ``scheduled_at``,
        ``idempotency_key`` and ``fencing_token``; it may be ``async def``. An exception is a
        failed attempt, with its traceback in the timer's history."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"invalid task name {name!r}: must be a non-empty str", "name", name)

        def decorator(fn: F) -> F:
            if not callable(fn):
                raise InvalidArgumentTypeError(f"a task must be callable, got {type(fn).__name__}", "fn")
            self._tasks[name] = _Task(fn)
            self._registered = False
            return fn

        return decorator

    def stop(self) -> None:
        """Asks :meth:`run` to return once the tasks in progress have finished."""
        self._stop.set()

    def run(self) -> None:
        """Polls and runs tasks until :meth:`stop`, SIGINT or SIGTERM; then finishes the tasks in
        progress (reporting their outcomes) and returns."""
        self._stop.clear()
        restore = self._install_signal_handlers()
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="kron-worker-heartbeat", daemon=True)
        heartbeat.start()
        self._reports.start()
        # Long-lived threads that take runs from one deque. A thread that finishes a run takes
        # the next one without sleeping; a sleeping one is woken only when runs wait and no
        # other thread is already on its way (see _dispatch), so a poll's runs cost no thread
        # hand-off each when tasks are quick, and still all start at once when they are slow.
        threads = [
            threading.Thread(target=self._execute_loop, name=f"kron-worker-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            while not self._stop.is_set():
                free = self._wait_for_slot()
                if free == 0:
                    continue
                try:
                    runs = self._poll(free, POLL_WAIT_S)
                except KronError as exc:
                    logger.warning("kron worker %s: poll failed: %s", self.worker_id, exc)
                    self._stop.wait(1.0)
                    continue
                if runs:
                    self._dispatch(runs)
            self._wait_idle()
        finally:
            self._stop.set()
            for _ in threads:
                self._wake.put(None)
            self._reports.close(timeout=30.0)
            heartbeat.join(timeout=5.0)
            restore()

    def run_once(self, timeout: float = 5.0) -> bool:
        """Runs at most one poll's work (up to ``concurrency`` runs, waiting up to ``timeout``
        seconds for one to be due); answers whether it ran something."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise InvalidArgumentError(
                f"invalid timeout {timeout!r}: must be a number of seconds >= 0", "timeout", timeout
            )
        runs = self._poll(self.concurrency, float(timeout))
        if not runs:
            return False
        if len(runs) == 1:
            self._execute(runs[0])
        else:
            with ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="kron-worker") as pool:
                list(pool.map(self._execute, runs))
        self._reports.send_now()
        return True

    # -- internals -----------------------------------------------------------------------------

    def _register(self) -> None:
        if self._registered:
            return
        body: dict[str, Any] = {"worker_id": self.worker_id, "tasks": sorted(self._tasks)}
        if self.lease_seconds is not None:
            # The server takes whole seconds (and refuses 2.5 as a bad body): round up, so a
            # lease is never shorter than asked.
            body["lease_seconds"] = max(1, math.ceil(self.lease_seconds))
        self._http.request("POST", "/v1/workers/register", body)
        self._registered = True

    def _poll(self, max_runs: int, wait_s: float) -> list[dict[str, Any]]:
        if not self._tasks:
            raise InvalidArgumentError(
                "this worker serves no task: register one with @worker.task(name)", "tasks", None
            )
        self._register()
        body = {
            "worker_id": self.worker_id,
            "tasks": sorted(self._tasks),
            "max_runs": max_runs,
            "wait_ms": int(wait_s * 1000),
        }
        answer = self._http.request("POST", "/v1/workers/poll", body, timeout=wait_s + 10.0)
        if answer is None:
            return []
        if isinstance(answer, dict):
            runs = answer.get("runs", answer)
            if isinstance(runs, list):
                return [run for run in runs if isinstance(run, dict)]
            return [answer]
        return []

    def _execute(self, run: dict[str, Any]) -> None:
        task = self._tasks.get(str(run.get("task")))
        run_id = str(run.get("run_id"))
        token = run.get("fencing_token")
        if task is None:
            error = f"this worker ({self.worker_id}) has no function for task {run.get('task')!r}"
            self._reports.add(run_id, token, error, 0)
            return
        payload = run.get("payload")
        started = time.monotonic()
        try:
            if task.takes_context:
                result = task.fn(payload, _context(run))
            else:
                result = task.fn(payload)
            if task.is_async or (result is not None and inspect.isawaitable(result)):
                _event_loop().run(result)
        except BaseException as exc:  # noqa: BLE001 - every failure of a task is its outcome
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            logger.error(
                "kron worker %s: task %s (run %s) failed: %s", self.worker_id, run.get("task"), run_id, exc
            )
            self._reports.add(run_id, token, text[-MAX_ERROR_CHARS:], _elapsed_ms(started))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self._stop.set()
            return
        self._reports.add(run_id, token, None, _elapsed_ms(started))

    def _heartbeat_loop(self) -> None:
        interval = max(1.0, (self.lease_seconds or 30.0) / 3.0)
        while not self._stop.wait(interval):
            try:
                self._http.request("POST", "/v1/workers/heartbeat", {"worker_id": self.worker_id})
            except KronError as exc:
                logger.warning("kron worker %s: heartbeat failed: %s", self.worker_id, exc)

    def _wait_for_slot(self) -> int:
        with self._idle:
            while self._in_flight >= self.concurrency and not self._stop.is_set():
                self._polling_waits = True
                self._idle.wait(0.5)
                self._polling_waits = False
            return 0 if self._stop.is_set() else self.concurrency - self._in_flight

    def _dispatch(self, runs: list[dict[str, Any]]) -> None:
        """Hands a poll's runs to the executing threads (one slot each was free)."""
        with self._lock:
            self._in_flight += len(runs)
            self._pending.extend(runs)
            wake = self._sleeping > 0 and self._waking == 0
            if wake:
                self._waking += 1
        if wake:
            self._wake.put(True)

    def _execute_loop(self) -> None:
        pending, lock = self._pending, self._lock
        while True:
            try:
                run = pending.popleft()
            except IndexError:
                with lock:
                    # Checked again under the lock _dispatch holds: a run added since the
                    # look above is taken now, and one added later finds this thread counted.
                    if pending:
                        continue
                    self._sleeping += 1
                woken = self._wake.get()
                with lock:
                    self._sleeping -= 1
                    if woken:
                        self._waking -= 1
                if woken is None:
                    return
                continue
            if pending:
                # More runs wait: wake one more thread, unless one is already waking. A quick
                # task is done before it arrives (it then finds nothing and sleeps again); a
                # slow one keeps this thread, and the next one starts the next run.
                with lock:
                    wake = self._sleeping > self._waking and self._waking == 0
                    if wake:
                        self._waking += 1
                if wake:
                    self._wake.put(True)
            try:
                self._execute(run)
            finally:
                self._finished()

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._polling_waits:
                self._idle.notify()

    def _wait_idle(self) -> None:
        with self._idle:
            while self._in_flight > 0:
                self._polling_waits = True
                self._idle.wait(0.5)
                self._polling_waits = False

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self.stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))


def _context(run: dict[str, Any]) -> dict[str, Any]:
    scheduled = parse_instant(run.get("scheduled_at"))
    iso = scheduled.isoformat() if hasattr(scheduled, "isoformat") else str(scheduled)
    timer_id = str(run.get("timer_id"))
    return {
        "run_id": run.get("run_id"),
        "timer_id": timer_id,
        "attempt": run.get("attempt"),
        "scheduled_at": scheduled,
        "idempotency_key": f"{timer_id}:{iso}",
        # For downstream systems that fence writes: a later claim of this run has a higher one.
        "fencing_token": run.get("fencing_token"),
    }
