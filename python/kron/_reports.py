"""Outcome reports of a ``kron.Worker``, sent to the server in batches.

A worker's threads hand each finished run's outcome to :class:`Reporter`; one thread sends what
has gathered as one ``POST /v1/runs/complete`` (the server proposes a batch as one log entry).
An idle worker's lone report leaves at once; under load, reports that finish while a batch is
on the wire go together in the next one, so throughput is not bounded by one round trip per run.

A batch the server did not answer (it restarted, the leader changed) is sent again, for as long
as the leases it reports on can still be valid; the server applies a report once, and answers a
repeated one as refused ("run not active"), which is logged, never raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from ._errors import KronError, ServerError, ServerUnavailableError
from ._http import Transport

logger = logging.getLogger("kron")

#: Most reports in one request (the server's limit).
MAX_BATCH = 1000

#: Pause between attempts at a batch the server did not answer.
RETRY_PAUSE_S = 0.5


class Reporter:
    """Gathers outcome reports and sends them in batches from one thread."""

    def __init__(self, http: Transport, worker_id: str, give_up_after_s: float) -> None:
        self._http = http
        self._worker_id = worker_id
        self._give_up_after_s = give_up_after_s
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._sending = 0
        # Set while the sending thread waits for reports: only then does add() wake it.
        self._waiting = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the sending thread (once)."""
        with self._cond:
            self._closed = False
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="kron-worker-reports", daemon=True)
            self._thread.start()

    def add(self, run_id: str, fencing_token: Any, error: str | None, duration_ms: int) -> None:
        """Queues the outcome of one run: succeeded when ``error`` is None."""
        report: dict[str, Any] = {
            "run_id": run_id,
            "fencing_token": fencing_token,
            "status": "succeeded" if error is None else "failed",
            "duration_ms": duration_ms,
        }
        if error is not None:
            report["error"] = error
        # deque.append is atomic; the condition is taken only to wake a sending thread that
        # sleeps. It sets _waiting before it looks at the queue, under the condition, so a
        # report appended after its look sees the flag and waits for the lock until it sleeps.
        self._queue.append(report)
        if self._waiting:
            with self._cond:
                self._cond.notify_all()

    def send_now(self) -> None:
        """Sends every queued report from the calling thread (no sending thread needed)."""
        while True:
            with self._cond:
                batch = self._take()
            if not batch:
                return
            self._send(batch)

    def close(self, timeout: float) -> None:
        """Sends what is queued and stops the sending thread, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while (self._queue or self._sending) and self._thread is not None and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        thread = self._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
        if self._queue:
            logger.warning(
                "kron worker %s: %d outcome reports not sent before stopping; their runs will be "
                "retried when their leases expire",
                self._worker_id,
                len(self._queue),
            )

    def _take(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        while self._queue and len(batch) < MAX_BATCH:
            batch.append(self._queue.popleft())
        self._sending += 1 if batch else 0
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._waiting = True
                while not self._queue and not self._closed:
                    self._cond.wait()
                self._waiting = False
                if not self._queue and self._closed:
                    return
                batch = self._take()
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._sending -= 1
                    self._cond.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        body = {"worker_id": self._worker_id, "results": batch}
        give_up = time.monotonic() + self._give_up_after_s
        while True:
            try:
                answer = self._http.request("POST", "/v1/runs/complete", body)
                break
            except (ServerUnavailableError, ServerError) as exc:
                # Not answered, or not carried out (no leader yet): the leases may still hold.
                if time.monotonic() >= give_up:
                    logger.warning(
                        "kron worker %s: %d outcome reports not delivered (%s); their runs will be "
                        "retried when their leases expire",
                        self._worker_id,
                        len(batch),
                        exc,
                    )
                    return
                time.sleep(RETRY_PAUSE_S)
            except KronError as exc:
                logger.warning(
                    "kron worker %s: the server refused %d outcome reports: %s",
                    self._worker_id,
                    len(batch),
                    exc,
                )
                return
        results = answer.get("results") if isinstance(answer, dict) else None
        for result in results if isinstance(results, list) else []:
            if isinstance(result, dict) and result.get("ok") is False:
                # A stale fencing token: the lease expired and the run went to another worker.
                logger.warning(
                    "kron worker %s: the server refused the outcome of run %s: %s",
                    self._worker_id,
                    result.get("run_id"),
                    result.get("error"),
                )
