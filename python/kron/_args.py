"""Checks and normalises ``schedule()`` arguments before they reach the native runtime.

Types are checked here (Python knows them best); values that need parsing (cron expressions,
duration strings, ISO datetimes, time zones) are checked by the Rust core, which the CLI shares.
Either way the error names the argument and the value, and nothing is registered or written.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple

from ._errors import InvalidArgumentError, InvalidArgumentTypeError

#: Largest accepted ``max_attempts``.
MAX_ATTEMPTS_LIMIT = 1_000_000


class TimerOptions(NamedTuple):
    """A timer's definition as ``schedule()``'s keywords give it, checked and normalised: the one
    value the native runtime receives (``kron._kron.register``), read there by attribute."""

    #: Which schedule: "cron", "every", "after" or "at".
    kind: str
    #: The cron expression, the duration (text, or whole milliseconds) or the instant (ISO text,
    #: or epoch microseconds).
    value: str | int
    #: An IANA time zone name.
    timezone: str
    max_attempts: int
    overlap: str
    catchup: str
    #: Like a duration; None or 0 for no jitter.
    jitter: str | int | None


class Function(NamedTuple):
    """A callback and how the runtime calls it."""

    fn: Callable[..., Any]
    #: ``module.qualname``, recorded with the timer.
    fn_name: str
    #: Whether it receives the context dict.
    takes_context: bool
    is_async: bool


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_error(arg: str, expected: str, value: object) -> InvalidArgumentTypeError:
    return InvalidArgumentTypeError(
        f"{arg} must be {expected}, got {type(value).__name__} {_show(value)}", arg
    )


def _value_error(arg: str, value: object, reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"invalid {arg} {_show(value)}: {reason}", arg, value)


def check_name(name: object) -> str:
    if not isinstance(name, str):
        raise _type_error("name", "a str", name)
    return name


def _ceil_ms(delta: timedelta) -> int:
    # Integer arithmetic: exact for any timedelta, rounding partial milliseconds up.
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -((-micros) // 1000)


def _duration(arg: str, value: object) -> str | int:
    if isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise _value_error(arg, value, "must be greater than zero")
        return _ceil_ms(value)
    raise _type_error(arg, 'a duration string such as "30m" or a datetime.timedelta', value)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
#: The latest instant the core represents (its ``MAX_EPOCH_MS``), in epoch microseconds; the
#: earliest is long before year 1, so a datetime never falls below it.
_MAX_AT_US = 253_402_207_200_999_000
_AT_RANGE = "out of range: instants must be between -009999-01-02T01:59:59.000Z and 9999-12-30T22:00:00.999Z"


def _instant(value: object) -> str | int:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        try:
            if value.utcoffset() is None:
                # Naive: a wall-clock time in the timer's time zone, resolved by the core.
                return value.isoformat()
            # Aware minus aware subtracts in UTC; timedelta // timedelta is exact integer
            # arithmetic: epoch microseconds (the core keeps the exact instant).
            micros = (value - _EPOCH) // _ONE_US
        except OverflowError:  # in UTC it falls before year 1
            raise _value_error("at", value.isoformat(), _AT_RANGE) from None
        except Exception as exc:  # a tzinfo is user code and may fail
            raise _value_error("at", value, f"its tzinfo failed: {type(exc).__name__}: {exc}") from exc
        if micros > _MAX_AT_US:
            raise _value_error("at", value.isoformat(), _AT_RANGE)
        return micros
    raise _type_error("at", "a datetime or an ISO 8601 string", value)


def _timezone(value: object) -> str:
    if isinstance(value, str):
        return value
    key = getattr(value, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    if value is timezone.utc:
        return "UTC"
    raise _type_error("timezone", "an IANA time zone name such as 'Europe/Berlin'", value)


_OVERLAPS = ("delay", "skip", "allow")
_CATCHUPS = ("once", "skip", "all")


def _choice(arg: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidArgumentError(
            f"{arg} must be one of {', '.join(allowed)}; got {_show(value)}", arg, value
        )
    return value


def _kinds_error(cron: object, every: object, after: object, at: object) -> InvalidArgumentError:
    given = [k for k, v in (("cron", cron), ("every", every), ("after", after), ("at", at)) if v is not None]
    which = ", ".join(given) if given else "none"
    return InvalidArgumentError(
        f"exactly one of cron, every, after, at is required (given: {which})",
        "cron/every/after/at",
        which,
    )


def timer_options(
    *,
    cron: object,
    every: object,
    after: object,
    at: object,
    timezone: object,
    max_attempts: object,
    overlap: object,
    catchup: object,
    jitter: object,
) -> TimerOptions:
    """``schedule()``'s keywords as one checked value, or the error naming the first bad one."""
    # Registering many timers is a loop over this: the common cases take the fewest steps.
    kind: str
    value: str | int
    if at is not None:
        if cron is not None or every is not None or after is not None:
            raise _kinds_error(cron, every, after, at)
        kind, value = "at", _instant(at)
    elif every is not None:
        if cron is not None or after is not None:
            raise _kinds_error(cron, every, after, at)
        kind, value = "every", _duration("every", every)
    elif cron is not None:
        if after is not None:
            raise _kinds_error(cron, every, after, at)
        if not isinstance(cron, str):
            raise _type_error("cron", "a cron expression string", cron)
        kind, value = "cron", cron
    elif after is not None:
        kind, value = "after", _duration("after", after)
    else:
        raise _kinds_error(cron, every, after, at)
    if type(max_attempts) is not int and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
    ):
        raise _type_error("max_attempts", "an int", max_attempts)
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise _value_error("max_attempts", max_attempts, f"must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    jitter_value: str | int | None = None
    if jitter is not None:
        if isinstance(jitter, timedelta) and jitter == timedelta(0):
            jitter_value = 0
        else:
            jitter_value = _duration("jitter", jitter)
    return TimerOptions(
        kind,
        value,
        timezone if type(timezone) is str else _timezone(timezone),
        max_attempts,
        _choice("overlap", overlap, _OVERLAPS),
        _choice("catchup", catchup, _CATCHUPS),
        jitter_value,
    )


#: What each function was found to be, without the function (a value holding its key would keep
#: the key alive).
_described: weakref.WeakKeyDictionary[Any, tuple[str, bool, bool]] = weakref.WeakKeyDictionary()
#: The last function described (registered, so kept alive by the runtime anyway) and its answer.
_last_described: list[Any] = [None, None]


def describe_function(fn: object) -> Function:
    """How to call ``fn``, or the TypeError saying why it cannot be a timer's callback.

    Signature inspection costs more than the rest of a registration, and applications register
    many timers with one function, so the answer is cached per function object (and the last one
    is checked first: a loop registering many timers uses one function).
    """
    last = _last_described
    if fn is last[0] and fn is not None:
        return last[1]  # type: ignore[no-any-return]
    described = _describe_function_cached(fn)
    last[0], last[1] = fn, described
    return described


def _describe_function_cached(fn: object) -> Function:
    try:
        fn_name, takes_context, is_async = _described[fn]
        return Function(fn, fn_name, takes_context, is_async)  # type: ignore[arg-type]
    except (KeyError, TypeError):
        pass
    described = _describe_function(fn)
    try:
        _described[fn] = described[1:]
    except TypeError:  # not weak-referenceable (e.g. a builtin or a callable without __weakref__)
        pass
    return described


def _generator_kind(fn: object) -> str | None:
    """'a generator function' or 'an async generator function' when calling ``fn`` (a function,
    a method, a ``functools.partial`` of one, or an object whose ``__call__`` is one) would only
    create a generator; else None."""
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    candidates = [target]
    if not inspect.isroutine(target) and not inspect.isclass(target):
        candidates.append(getattr(type(target), "__call__", None))  # noqa: B004
    for candidate in candidates:
        if inspect.isasyncgenfunction(candidate):
            return "an async generator function"
        if inspect.isgeneratorfunction(candidate):
            return "a generator function"
    return None


def _describe_function(fn: object) -> Function:
    if not callable(fn):
        raise _type_error("fn", "a callable", fn)
    generator = _generator_kind(fn)
    if generator is not None:
        # Calling a generator function only creates the generator: the body would never run and
        # the run would be recorded as succeeded.
        raise InvalidArgumentTypeError(
            f"fn must be a function, not {generator}: calling it does not run its body; "
            f"got {_show(fn)}",
            "fn",
        )
    module = getattr(fn, "__module__", None) or ""
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
    fn_name = f"{module}.{qualname}" if module else str(qualname)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(type(fn), "__call__", None)  # noqa: B004 - an async __call__ on a callable object
    )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return Function(fn, fn_name, False, is_async)
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values())
    required_kwonly = [
        p
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if len(required) > 1 or required_kwonly:
        raise InvalidArgumentTypeError(
            f"fn must accept no arguments or one context argument; {fn_name}{signature} requires more",
            "fn",
        )
    # One positional parameter (required or not), or *args, receives the context dict.
    takes_context = bool(positional) or has_varargs
    return Function(fn, fn_name, takes_context, is_async)
