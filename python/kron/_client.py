"""``kron.Client``: timers that live in a Kron server and target named tasks with JSON payloads.

The same definitions, validation and status/history dicts as embedded mode; the server runs
the schedule, and ``kron.Worker`` processes anywhere execute the tasks.
"""

from __future__ import annotations

import builtins
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Union

from ._args import check_name, timer_options
from ._errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    TimerNotFoundError,
    TimerNotRunnableError,
)
from ._http import Conflict, NotFound, Transport

Duration = Union[str, timedelta]

_STATUS_INSTANTS = ("next_run_at", "last_run_at", "created_at", "updated_at")
_EVENT_INSTANTS = ("ts", "scheduled_at", "next_attempt_at", "until", "next_run_at")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_instant(value: Any) -> Any:
    """An instant from the wire (ISO 8601 text, or ms since the epoch) as an aware datetime."""
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return value
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + timedelta(milliseconds=value)
    return value


def with_datetimes(raw: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(raw, dict):
        for key in keys:
            if key in raw:
                raw[key] = parse_instant(raw[key])
    return raw


def _wire_duration(value: str | int) -> str:
    return value if isinstance(value, str) else f"{value}ms"


def _wire_instant(value: str | int) -> str:
    if isinstance(value, str):
        return value
    # Epoch microseconds, as `timer_options` gives an aware datetime.
    return (_EPOCH + timedelta(microseconds=value)).isoformat().replace("+00:00", "Z")


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


#: Most timers one :meth:`Client.schedule_many` call creates (the server's limit).
MAX_BATCH = 1000

_SCHEDULE_ARGS = frozenset(
    (
        "name",
        "task",
        "payload",
        "cron",
        "every",
        "after",
        "at",
        "timezone",
        "max_attempts",
        "overlap",
        "catchup",
        "jitter",
    )
)


def _timer_body(
    name: str,
    *,
    task: str,
    payload: Any = None,
    cron: str | None = None,
    every: Duration | None = None,
    after: Duration | None = None,
    at: datetime | str | None = None,
    timezone: str = "UTC",
    max_attempts: int = 3,
    overlap: str = "delay",
    catchup: str = "once",
    jitter: Duration | None = None,
) -> dict[str, Any]:
    """The body of ``POST /v1/timers`` for ``schedule()``'s arguments, checked."""
    check_name(name)
    if not isinstance(task, str):
        raise InvalidArgumentTypeError(f"task must be a str, got {type(task).__name__}", "task")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"invalid payload: not JSON-serializable ({exc})", "payload", payload
        ) from None
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
    body: dict[str, Any] = {
        "name": name,
        "task": task,
        "payload": payload,
        "timezone": options.timezone,
        "max_attempts": options.max_attempts,
        "overlap": options.overlap,
        "catchup": options.catchup,
    }
    if options.kind == "at":
        body["at"] = _wire_instant(options.value)
    elif options.kind == "cron":
        body["cron"] = options.value
    else:
        body[options.kind] = _wire_duration(options.value)
    if options.jitter:
        body["jitter"] = _wire_duration(options.jitter)
    return body


def _item_body(index: int, item: Any) -> dict[str, Any]:
    """One item of ``schedule_many``: its body, or the error naming ``timers[index]``."""
    at = f"timers[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidArgumentTypeError(
            f"{at} must be a dict of schedule()'s arguments, got {type(item).__name__}", at
        )
    unknown = sorted(str(key) for key in item if key not in _SCHEDULE_ARGS)
    if unknown:
        raise InvalidArgumentError(
            f"invalid {at}: unknown argument {unknown[0]!r}: the arguments are "
            + ", ".join(sorted(_SCHEDULE_ARGS)),
            f"{at}.{unknown[0]}",
            item[unknown[0]],
        )
    for required in ("name", "task"):
        if required not in item:
            raise InvalidArgumentError(f"invalid {at}: {required} is required", f"{at}.{required}", None)
    args = dict(item)
    name = args.pop("name")
    try:
        return _timer_body(name, **args)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"invalid {at}: {exc}", f"{at}.{exc.arg}", exc.value) from None
    except InvalidArgumentTypeError as exc:
        raise InvalidArgumentTypeError(f"invalid {at}: {exc}", f"{at}.{exc.arg}") from None


class Client:
    """A connection to a Kron server (``url``: ``http://host:port``, or several nodes of a
    cluster separated by commas). ``token`` defaults to the ``KRON_TOKEN`` environment variable.

    Errors: ``ValueError`` for bad arguments (the server's message names the field),
    ``PermissionError`` for a refused token (401, 403), ``KeyError`` for an unknown timer where
    one is required, ``ConnectionError`` when no node answers; all are also ``kron.KronError``.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidArgumentError(
                f"invalid timeout {timeout!r}: must be a number of seconds > 0", "timeout", timeout
            )
        self._http = Transport(url, token, float(timeout))

    def schedule(
        self,
        name: str,
        *,
        task: str,
        payload: Any = None,
        cron: str | None = None,
        every: Duration | None = None,
        after: Duration | None = None,
        at: datetime | str | None = None,
        timezone: str = "UTC",
        max_attempts: int = 3,
        overlap: str = "delay",
        catchup: str = "once",
        jitter: Duration | None = None,
    ) -> dict[str, Any]:
        """Creates or updates the timer ``name``, which runs ``task`` with ``payload`` (any JSON
        value) on a worker; answers its status dict."""
        body = _timer_body(
            name,
            task=task,
            payload=payload,
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
        result: dict[str, Any] = with_datetimes(
            self._http.request("POST", "/v1/timers", body), _STATUS_INSTANTS
        )
        return result

    def schedule_many(self, timers: Iterable[Mapping[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Creates or updates several timers in one request: each item is a dict of
        :meth:`schedule`'s arguments (``name`` included). Answers their status dicts, in order.

        All or nothing: every item is checked (here, then on the server) before any is written;
        a bad one raises ``ValueError`` naming ``timers[i]`` and its field, and nothing is
        written. At most :data:`MAX_BATCH` items per call. The server commits them together, as
        one log entry, so this is the fast way to create many timers."""
        if isinstance(timers, (str, bytes, Mapping)):
            raise InvalidArgumentTypeError(
                f"timers must be an iterable of dicts, got {type(timers).__name__}", "timers"
            )
        bodies: builtins.list[dict[str, Any]] = []
        for index, item in enumerate(timers):
            bodies.append(_item_body(index, item))
            if len(bodies) > MAX_BATCH:
                raise InvalidArgumentError(
                    f"invalid timers: more than {MAX_BATCH} items; split them into several calls",
                    "timers",
                    None,
                )
        if not bodies:
            return []
        answer = self._http.request("POST", "/v1/timers:batch", {"timers": bodies})
        items = answer.get("timers", []) if isinstance(answer, dict) else []
        return [with_datetimes(item, _STATUS_INSTANTS) for item in items]

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every timer's status dict (of this token's tenant), sorted by id."""
        answer = self._http.request("GET", "/v1/timers")
        items = answer.get("timers", []) if isinstance(answer, dict) else answer
        return [with_datetimes(item, _STATUS_INSTANTS) for item in items or []]

    def status(self, name: str) -> dict[str, Any] | None:
        """The timer's status dict, or ``None`` if there is no such timer."""
        try:
            answer = self._http.request("GET", f"/v1/timers/{_quote(check_name(name))}")
        except NotFound:
            return None
        result: dict[str, Any] = with_datetimes(answer, _STATUS_INSTANTS)
        return result

    def history(self, name: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The timer's latest ``limit`` events, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidArgumentTypeError(f"limit must be an int, got {type(limit).__name__}", "limit")
        if limit < 0:
            raise InvalidArgumentError(f"invalid limit {limit}: must be >= 0", "limit", limit)
        path = f"/v1/timers/{_quote(check_name(name))}/history?limit={limit}"
        answer = self._call(name, "GET", path)
        items = answer.get("events", []) if isinstance(answer, dict) else answer
        return [with_datetimes(item, _EVENT_INSTANTS) for item in items or []]

    def pause(self, name: str) -> None:
        self._call(name, "POST", f"/v1/timers/{_quote(check_name(name))}/pause")

    def resume(self, name: str) -> None:
        self._call(name, "POST", f"/v1/timers/{_quote(check_name(name))}/resume")

    def trigger(self, name: str) -> str:
        """Runs the timer's task now, off-schedule; answers the new run's id."""
        answer = self._call(name, "POST", f"/v1/timers/{_quote(check_name(name))}/trigger")
        return str(answer.get("run_id", "")) if isinstance(answer, dict) else str(answer)

    def remove(self, name: str) -> None:
        self._call(name, "DELETE", f"/v1/timers/{_quote(check_name(name))}")

    def close(self) -> None:
        """Closes this thread's connections (they reopen on the next call)."""
        self._http.close()

    def _call(self, name: str, method: str, path: str) -> Any:
        try:
            return self._http.request(method, path)
        except NotFound:
            raise TimerNotFoundError(f"no timer named {name!r} on the server", name) from None
        except Conflict as exc:
            # As in embedded mode: e.g. pausing a one-shot that has finished.
            raise TimerNotRunnableError(str(exc), name) from None
