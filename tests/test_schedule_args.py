"""kron.schedule(): accepted forms, and every bad-argument case (which must never reach storage)."""

# ruff: noqa: E501  (the tables below are easier to read unwrapped)

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import kron
from conftest import EVENT_KINDS, unique_name

UTC = timezone.utc
VALUE = kron.InvalidArgumentError
TYPE = kron.InvalidArgumentTypeError
EITHER = (kron.InvalidArgumentError, kron.InvalidArgumentTypeError)

KINDS = ("cron", "every", "after", "at")
OVERLAP_MSG = "overlap must be one of delay, skip, allow"
CATCHUP_MSG = "catchup must be one of once, skip, all"


def noop() -> None:
    pass


def needs_two(a: Any, b: Any) -> None:
    pass


def needs_three(a: Any, b: Any, c: Any) -> None:
    pass


def kw_only(*, x: Any) -> None:
    pass


NOT_CALLABLE = object()


def gen_job() -> Iterator[None]:
    yield


def gen_job_ctx(ctx: Any) -> Iterator[None]:
    yield


async def agen_job() -> AsyncIterator[None]:
    yield


class GenCallable:
    def __call__(self) -> Iterator[None]:
        yield


class AsyncGenCallable:
    async def __call__(self) -> AsyncIterator[None]:
        yield


class WithGenMethod:
    def job(self) -> Iterator[None]:
        yield


def gen_two(a: Any, b: Any) -> Iterator[None]:
    yield


GEN = ("fn", "generator function")
AT_RANGE = "instants must be between -009999-01-02T01:59:59.000Z and 9999-12-30T22:00:00.999Z"


# Each row: id, keyword arguments for schedule() (``fn`` defaults to a valid callback and the
# name to a valid unique one), the exception expected, substrings its message must contain,
# and (optionally) a value that the message must show.
# fmt: off
BAD_ARGS: list[tuple[str, dict[str, Any], Any, tuple[str, ...], Any]] = [
    # -- exactly one of cron / every / after / at ------------------------------------
    ("no-kind",              {},                                               VALUE, KINDS, None),
    ("every-None",           {"every": None},                                  VALUE, KINDS, None),
    ("all-None",             {"cron": None, "every": None, "after": None, "at": None}, VALUE, KINDS, None),
    ("cron+every",           {"cron": "* * * * *", "every": "1m"},              VALUE, KINDS, None),
    ("every+after",          {"every": "1m", "after": "1m"},                    VALUE, KINDS, None),
    ("after+at",             {"after": "1m", "at": "2099-01-01T00:00:00Z"},     VALUE, KINDS, None),
    ("cron+at",              {"cron": "@daily", "at": "2099-01-01T00:00:00Z"},  VALUE, KINDS, None),
    ("all-four",             {"cron": "@daily", "every": "1m", "after": "1m",
                              "at": "2099-01-01T00:00:00Z"},                   VALUE, KINDS, None),
    # -- every: bad values -------------------------------------------------------------
    ("every-0s",             {"every": "0s"},                                  VALUE, ("every",), "0s"),
    ("every-0ms",            {"every": "0ms"},                                 VALUE, ("every",), "0ms"),
    ("every-negative",       {"every": "-5m"},                                 VALUE, ("every",), "-5m"),
    ("every-parsecs",        {"every": "10 parsecs"},                          VALUE, ("every",), "10 parsecs"),
    ("every-empty",          {"every": ""},                                    VALUE, ("every",), None),
    ("every-blank",          {"every": "   "},                                 VALUE, ("every",), None),
    ("every-unicode-digit",  {"every": "\uff15m"},                             VALUE, ("every",), None),
    ("every-unicode-unit",   {"every": "10\u79d2"},                            VALUE, ("every",), None),
    ("every-huge",           {"every": "99999999999999999999999999d"},         VALUE, ("every",), None),
    ("every-td-zero",        {"every": timedelta(0)},                          VALUE, ("every",), None),
    ("every-td-negative",    {"every": timedelta(seconds=-1)},                 VALUE, ("every",), None),
    # huge but well-formed: the next run would be beyond any representable date
    ("every-100000000d",     {"every": "100000000d"},                          VALUE, ("every",), None),
    ("every-td-max",         {"every": timedelta.max},                         VALUE, ("every",), None),
    # surrounding whitespace, and a part that should have carried into a larger unit
    ("every-leading-space",  {"every": " 10s"},                                VALUE, ("every", "spaces"), " 10s"),
    ("every-trailing-space", {"every": "10s "},                                VALUE, ("every", "spaces"), "10s "),
    ("every-newline",        {"every": "10s\n"},                               VALUE, ("every", "spaces"), None),
    ("every-1h60m",          {"every": "1h60m"},                               VALUE, ("every", "60m is out of range", "below 60m"), "1h60m"),
    ("every-1d24h",          {"every": "1d24h"},                               VALUE, ("every", "24h is out of range", "below 24h"), "1d24h"),
    ("every-1m60s",          {"every": "1m60s"},                               VALUE, ("every", "below 60s"), "1m60s"),
    ("every-1s1000ms",       {"every": "1s1000ms"},                            VALUE, ("every", "below 1000ms"), "1s1000ms"),
    ("every-1w7d",           {"every": "1w7d"},                                VALUE, ("every", "below 7d"), "1w7d"),
    # -- every: wrong types ------------------------------------------------------------
    ("every-int",            {"every": 30},                                    TYPE, ("every",), None),
    ("every-int-zero",       {"every": 0},                                     TYPE, ("every",), None),
    ("every-int-negative",   {"every": -5},                                    TYPE, ("every",), None),
    ("every-float",          {"every": 1.5},                                   TYPE, ("every",), None),
    ("every-nan",            {"every": math.nan},                              TYPE, ("every",), None),
    ("every-bool",           {"every": True},                                  TYPE, ("every",), None),
    ("every-bytes",          {"every": b"30m"},                                TYPE, ("every",), None),
    ("every-list",           {"every": ["30m"]},                               TYPE, ("every",), None),
    # -- after -------------------------------------------------------------------------
    ("after-0s",             {"after": "0s"},                                  VALUE, ("after",), "0s"),
    ("after-negative",       {"after": "-1s"},                                 VALUE, ("after",), "-1s"),
    ("after-garbage",        {"after": "soon"},                                VALUE, ("after",), "soon"),
    ("after-td-zero",        {"after": timedelta(0)},                          VALUE, ("after",), None),
    ("after-100000000d",     {"after": "100000000d"},                          VALUE, ("after",), None),
    ("after-space",          {"after": " 1s"},                                 VALUE, ("after", "spaces"), " 1s"),
    ("after-1h90m",          {"after": "1h90m"},                               VALUE, ("after", "below 60m"), "1h90m"),
    ("after-int",            {"after": 10},                                    TYPE, ("after",), None),
    ("after-float",          {"after": 0.5},                                   TYPE, ("after",), None),
    # -- at ----------------------------------------------------------------------------
    ("at-not-a-date",        {"at": "not a date"},                             VALUE, ("at",), "not a date"),
    ("at-empty",             {"at": ""},                                       VALUE, ("at",), None),
    ("at-month-13",          {"at": "2099-13-01T00:00:00Z"},                   VALUE, ("at",), "2099-13-01"),
    ("at-offset-+24:00",     {"at": "2099-01-01T00:00:00+24:00"},              VALUE, ("at", "offset +24:00 is out of range", "-23:59 and +23:59"), "2099-01-01T00:00:00+24:00"),
    ("at-offset--25:00",     {"at": "2099-01-01T00:00:00-25:00"},              VALUE, ("at", "offset -25:00 is out of range"), "2099-01-01T00:00:00-25:00"),
    ("at-past-max-z",        {"at": "9999-12-31T23:59:59Z"},                   VALUE, ("at", AT_RANGE), "9999-12-31T23:59:59Z"),
    ("at-past-max-offset",   {"at": "9999-12-31T00:00:00-05:00"},              VALUE, ("at", AT_RANGE), "9999-12-31T00:00:00-05:00"),
    ("at-past-max-local",    {"at": "9999-12-31T23:00:00"},                    VALUE, ("at", AT_RANGE), "9999-12-31T23:00:00"),
    ("at-year-10000",        {"at": "10000-01-01T00:00:00Z"},                  VALUE, ("at", "year 10000", AT_RANGE), "10000-01-01T00:00:00Z"),
    ("at-aware-past-max",    {"at": datetime(9999, 12, 31, tzinfo=UTC)},       VALUE, ("at", AT_RANGE), "9999-12-31T00:00:00+00:00"),
    ("at-aware-max",         {"at": datetime.max.replace(tzinfo=UTC)},         VALUE, ("at", AT_RANGE), "9999-12-31T23:59:59.999999+00:00"),
    ("at-naive-max",         {"at": datetime.max},                             VALUE, ("at", AT_RANGE), "9999-12-31T23:59:59.999999"),
    ("at-int",               {"at": 12345},                                    TYPE, ("at",), None),
    ("at-float",             {"at": 1.5},                                      TYPE, ("at",), None),
    ("at-nan",               {"at": math.nan},                                 TYPE, ("at",), None),
    ("at-bool",              {"at": True},                                     TYPE, ("at",), None),
    ("at-timedelta",         {"at": timedelta(minutes=5)},                     TYPE, ("at",), None),
    # -- cron --------------------------------------------------------------------------
    ("cron-3-fields",        {"cron": "* * *"},                                VALUE, ("cron",), "* * *"),
    ("cron-minute-61",       {"cron": "61 * * * *"},                           VALUE, ("cron",), "61"),
    ("cron-7-fields",        {"cron": "* * * * * * *"},                        VALUE, ("cron",), None),
    ("cron-empty",           {"cron": ""},                                     VALUE, ("cron",), None),
    ("cron-hour-25",         {"cron": "0 25 * * *"},                           VALUE, ("cron",), "25"),
    ("cron-dom-32",          {"cron": "0 0 32 * *"},                           VALUE, ("cron",), "32"),
    ("cron-month-13",        {"cron": "0 0 * 13 *"},                           VALUE, ("cron",), "13"),
    ("cron-step-zero",       {"cron": "*/0 * * * *"},                          VALUE, ("cron",), None),
    ("cron-seconds-60",      {"cron": "60 * * * * *"},                         VALUE, ("cron",), "60"),
    ("cron-bad-macro",       {"cron": "@fortnightly"},                         VALUE, ("cron",), "@fortnightly"),
    ("cron-words",           {"cron": "hello world foo bar baz"},              VALUE, ("cron",), None),
    ("cron-name-in-minutes", {"cron": "MON * * * *"},                          VALUE, ("cron",), None),
    ("cron-unicode-star",    {"cron": "\uff0a * * * *"},                        VALUE, ("cron",), None),
    # the message names the field and the bad value
    ("cron-field-hour",      {"cron": "0 25 * * *"},                           VALUE, ("cron", "hour 25 is out of range 0-23"), "0 25 * * *"),
    ("cron-field-minute",    {"cron": "60 * * * *"},                           VALUE, ("cron", "minute 60 is out of range 0-59"), None),
    ("cron-field-second",    {"cron": "60 0 * * * *"},                         VALUE, ("cron", "second 60 is out of range 0-59"), None),
    ("cron-field-dom",       {"cron": "0 0 0 * *"},                            VALUE, ("cron", "day-of-month 0 is out of range 1-31"), None),
    ("cron-field-month",     {"cron": "0 0 1 13 *"},                           VALUE, ("cron", "month 13 is out of range 1-12"), None),
    ("cron-field-dow",       {"cron": "0 0 * * 8"},                            VALUE, ("cron", "day-of-week 8 is out of range 0-7"), None),
    ("cron-field-list",      {"cron": "0 8,30 * * *"},                         VALUE, ("cron", "hour 30 is out of range 0-23"), None),
    ("cron-field-range",     {"cron": "0 9-25 * * *"},                         VALUE, ("cron", "hour 25 is out of range 0-23"), None),
    ("cron-field-backwards", {"cron": "0 17-9 * * *"},                         VALUE, ("cron", "hour range 17-9 goes backwards"), None),
    ("cron-field-step-0",    {"cron": "*/0 * * * *"},                          VALUE, ("cron", "minute step", "at least 1"), None),
    ("cron-field-nth",       {"cron": "0 0 * * FRI#6"},                        VALUE, ("cron", "day-of-week", "FRI#6", "1 to 5"), None),
    ("cron-field-W",         {"cron": "0 0 32W * *"},                          VALUE, ("cron", "day-of-month 32 is out of range 1-31"), None),
    ("cron-field-count",     {"cron": "0 0 * *"},                              VALUE, ("cron", "expected 5 fields", "got 4"), None),
    ("cron-int",             {"cron": 5},                                      TYPE, ("cron",), None),
    # -- timezone ----------------------------------------------------------------------
    ("tz-mars",              {"every": "1m", "timezone": "Mars/Olympus"},      VALUE, ("timezone",), "Mars/Olympus"),
    ("tz-mars-cron",         {"cron": "0 8 * * *", "timezone": "Mars/Olympus"}, VALUE, ("timezone",), "Mars/Olympus"),
    ("tz-empty",             {"every": "1m", "timezone": ""},                  VALUE, ("timezone",), None),
    ("tz-unicode",           {"every": "1m", "timezone": "Europe/Berl\u00edn"}, VALUE, ("timezone",), None),
    ("tz-None",              {"every": "1m", "timezone": None},                EITHER, ("timezone",), None),
    ("tz-int",               {"every": "1m", "timezone": 5},                   TYPE, ("timezone",), None),
    # -- max_attempts ------------------------------------------------------------------
    ("attempts-0",           {"every": "1m", "max_attempts": 0},               VALUE, ("max_attempts",), "0"),
    ("attempts-negative",    {"every": "1m", "max_attempts": -1},              VALUE, ("max_attempts",), "-1"),
    ("attempts-huge",        {"every": "1m", "max_attempts": 2**64},           VALUE, ("max_attempts",), None),
    ("attempts-str",         {"every": "1m", "max_attempts": "3"},             TYPE, ("max_attempts",), None),
    ("attempts-bool-true",   {"every": "1m", "max_attempts": True},            TYPE, ("max_attempts",), None),
    ("attempts-bool-false",  {"every": "1m", "max_attempts": False},           TYPE, ("max_attempts",), None),
    ("attempts-float",       {"every": "1m", "max_attempts": 3.0},             TYPE, ("max_attempts",), None),
    ("attempts-nan",         {"every": "1m", "max_attempts": math.nan},        TYPE, ("max_attempts",), None),
    ("attempts-None",        {"every": "1m", "max_attempts": None},            TYPE, ("max_attempts",), None),
    # -- overlap / catchup -------------------------------------------------------------
    ("overlap-sometimes",    {"every": "1m", "overlap": "sometimes"},          VALUE, (OVERLAP_MSG,), "sometimes"),
    ("overlap-empty",        {"every": "1m", "overlap": ""},                   VALUE, (OVERLAP_MSG,), None),
    ("overlap-None",         {"every": "1m", "overlap": None},                 EITHER, ("overlap",), None),
    ("overlap-int",          {"every": "1m", "overlap": 1},                    EITHER, ("overlap",), None),
    ("catchup-never",        {"every": "1m", "catchup": "never"},              VALUE, (CATCHUP_MSG,), "never"),
    ("catchup-empty",        {"every": "1m", "catchup": ""},                   VALUE, (CATCHUP_MSG,), None),
    ("catchup-None",         {"every": "1m", "catchup": None},                 EITHER, ("catchup",), None),
    # -- jitter ------------------------------------------------------------------------
    ("jitter-garbage",       {"every": "1m", "jitter": "soon"},                VALUE, ("jitter",), "soon"),
    ("jitter-negative",      {"every": "1m", "jitter": "-1s"},                 VALUE, ("jitter",), "-1s"),
    ("jitter-td-negative",   {"every": "1m", "jitter": timedelta(seconds=-1)}, VALUE, ("jitter",), None),
    ("jitter-100000000d",    {"every": "1m", "jitter": "100000000d"},          VALUE, ("jitter",), None),
    ("jitter-list",          {"every": "1m", "jitter": ["1s"]},                EITHER, ("jitter",), None),
    # -- fn ----------------------------------------------------------------------------
    ("fn-str",               {"every": "1m", "fn": "not callable"},            TYPE, ("fn",), None),
    ("fn-int",               {"every": "1m", "fn": 42},                        TYPE, ("fn",), None),
    ("fn-object",            {"every": "1m", "fn": NOT_CALLABLE},              TYPE, ("fn",), None),
    ("fn-two-args",          {"every": "1m", "fn": needs_two},                 EITHER, ("fn",), None),
    ("fn-lambda-two-args",   {"every": "1m", "fn": lambda a, b: None},         EITHER, ("fn",), None),
    ("fn-three-args",        {"every": "1m", "fn": needs_three},               EITHER, ("fn",), None),
    ("fn-kw-only",           {"every": "1m", "fn": kw_only},                   EITHER, ("fn",), None),
    # calling a generator function only creates a generator: its body would never run
    ("fn-generator",         {"every": "1m", "fn": gen_job},                   TYPE, GEN, "gen_job"),
    ("fn-generator-ctx",     {"every": "1m", "fn": gen_job_ctx},               TYPE, GEN, "gen_job_ctx"),
    ("fn-async-generator",   {"every": "1m", "fn": agen_job},                  TYPE, ("fn", "async generator function"), "agen_job"),
    ("fn-generator-call",    {"every": "1m", "fn": GenCallable()},             TYPE, GEN, "GenCallable"),
    ("fn-async-gen-call",    {"every": "1m", "fn": AsyncGenCallable()},        TYPE, ("fn", "async generator function"), "AsyncGenCallable"),
    ("fn-generator-method",  {"every": "1m", "fn": WithGenMethod().job},       TYPE, GEN, "WithGenMethod.job"),
    ("fn-generator-partial", {"every": "1m", "fn": functools.partial(gen_two, 1)}, TYPE, GEN, "gen_two"),
    ("fn-generator-partial2", {"every": "1m", "fn": functools.partial(functools.partial(gen_two, 1), 2)}, TYPE, GEN, "gen_two"),
    ("fn-async-gen-partial", {"every": "1m", "fn": functools.partial(agen_job)}, TYPE, ("fn", "async generator function"), "agen_job"),
    ("fn-generator-cron",    {"cron": "@daily", "fn": gen_job},                TYPE, GEN, None),
    ("fn-generator-at",      {"at": "2099-01-01T00:00:00Z", "fn": gen_job},    TYPE, GEN, None),
]

BAD_NAMES: list[tuple[str, Any, Any]] = [
    ("empty",          "",                   VALUE),
    ("10KB",           "x" * 10240,          VALUE),
    ("129-chars",      "a" * 129,            VALUE),
    ("NUL",            "a\x00b",             VALUE),
    ("slash",          "a/b",                VALUE),
    ("space",          "a b",                VALUE),
    ("newline",        "a\nb",               VALUE),
    ("tab",            "a\tb",               VALUE),
    ("leading-space",  " a",                 VALUE),
    ("leading-dash",   "-a",                 VALUE),
    ("leading-dot",    ".a",                 VALUE),
    ("leading-under",  "_a",                 VALUE),
    ("leading-colon",  ":a",                 VALUE),
    ("emoji",          "timer\U0001f525",    VALUE),
    ("backslash",      "a\\b",               VALUE),
    ("None",           None,                 TYPE),
    ("int",            123,                  TYPE),
    ("bytes",          b"abc",               TYPE),
]
# fmt: on


def _call(name: Any, kwargs: dict[str, Any]) -> Any:
    kw = dict(kwargs)
    fn = kw.pop("fn", noop)
    return kron.schedule(name, fn, **kw)


def _neutralise(name: str) -> None:
    """A bad definition was accepted (a bug): overwrite it with a harmless one, so that it
    does not disturb the rest of the process (the registry is process-global)."""
    kron.schedule(name, noop, at="2999-01-01T00:00:00Z")


def _expect_rejected(name: str, kwargs: dict[str, Any], exc: Any) -> BaseException:
    try:
        _call(name, kwargs)
    except exc as e:
        return e
    except Exception as e:  # noqa: BLE001 - reported as a failure
        pytest.fail(f"raised {type(e).__name__} ({e}), expected {exc}")
    _neutralise(name)
    pytest.fail(f"schedule({kwargs}) was accepted; expected {exc}")


def _check_message(exc: BaseException, needles: tuple[str, ...], shows: Any) -> None:
    msg = str(exc)
    for needle in needles:
        assert needle in msg, f"message {msg!r} does not name {needle!r}"
    if shows is not None:
        assert str(shows) in msg or repr(shows) in msg, f"message {msg!r} does not show the value {shows!r}"


@pytest.mark.parametrize(
    ("kwargs", "exc", "needles", "shows"), [pytest.param(*row[1:], id=row[0]) for row in BAD_ARGS]
)
def test_bad_argument_raises_and_writes_nothing(
    name: str, kwargs: dict[str, Any], exc: Any, needles: tuple[str, ...], shows: Any
) -> None:
    err = _expect_rejected(name, kwargs, exc)
    assert isinstance(err, kron.KronError)
    assert isinstance(err, (ValueError, TypeError))
    _check_message(err, needles, shows)
    assert kron.status(name) is None
    assert all(t["id"] != name for t in kron.list())


@pytest.mark.parametrize(("bad", "exc"), [pytest.param(row[1], row[2], id=row[0]) for row in BAD_NAMES])
def test_bad_name_raises(bad: Any, exc: Any) -> None:
    before = len(kron.list())
    with pytest.raises(exc) as info:
        kron.schedule(bad, noop, every="1m")
    assert isinstance(info.value, kron.KronError)
    assert "name" in str(info.value)
    assert len(kron.list()) == before


@pytest.mark.parametrize(("bad", "exc"), [pytest.param(row[1], row[2], id=row[0]) for row in BAD_NAMES])
def test_bad_name_raises_in_decorator_form(bad: Any, exc: Any) -> None:
    # The name is checked when schedule() is called, not only when the decorator is applied.
    with pytest.raises(exc):
        deco = kron.schedule(bad, every="1m")
        deco(noop)


def test_value_error_classes_are_the_documented_ones() -> None:
    assert issubclass(kron.InvalidArgumentError, ValueError)
    assert issubclass(kron.InvalidArgumentError, kron.KronError)
    assert issubclass(kron.InvalidArgumentTypeError, TypeError)
    assert issubclass(kron.InvalidArgumentTypeError, kron.KronError)
    assert issubclass(kron.TimerNotFoundError, KeyError)
    assert issubclass(kron.TimerNotFoundError, kron.KronError)
    assert issubclass(kron.DataDirLockedError, RuntimeError)
    assert issubclass(kron.CorruptStorageError, RuntimeError)
    for cls in (
        kron.AlreadyStartedError,
        kron.NotStartedError,
        kron.DataDirLockedError,
        kron.StorageError,
        kron.SchemaVersionError,
        kron.CorruptStorageError,
    ):
        assert issubclass(cls, kron.KronError), cls
    assert issubclass(kron.KronError, Exception)


def test_bad_arguments_never_reach_storage(data_dir: str) -> None:
    """Try every bad case (each with its own name), then start: nothing of them is stored."""
    tried: list[str] = []
    accepted: list[str] = []
    for row in BAD_ARGS:
        n = unique_name(f"never-stored-{row[0]}")
        try:
            _call(n, row[1])
        except row[2]:
            tried.append(n)
        else:
            _neutralise(n)
            accepted.append(row[0])
    kron.start(data_dir)
    listed = {t["id"] for t in kron.list()}
    for n in tried:
        assert kron.status(n) is None, n
        assert n not in listed
        hist: list[Any] = []
        with contextlib.suppress(kron.TimerNotFoundError):
            hist = kron.history(n)
        assert hist == [], (n, hist)
    assert accepted == [], f"bad arguments accepted: {accepted}"


def test_failed_reregistration_keeps_previous_definition(name: str, data_dir: str) -> None:
    kron.schedule(name, noop, every="30m")
    with pytest.raises(VALUE):
        kron.schedule(name, noop, every="0s")
    with pytest.raises(VALUE):
        kron.schedule(name, noop, cron="61 * * * *")
    with pytest.raises(TYPE):
        kron.schedule(name, noop, every="1m", max_attempts="3")
    st = kron.status(name)
    assert st is not None
    assert st["schedule"] == "every 30m"
    assert st["max_attempts"] == 3
    kron.start(data_dir)
    with pytest.raises(VALUE):
        kron.schedule(name, noop, every="-5m")
    assert kron.status(name)["schedule"] == "every 30m"
    kinds = [e["kind"] for e in kron.history(name)]
    assert kinds == ["TIMER_CREATED"], kinds


# ---------------------------------------------------------------------------
# accepted forms
# ---------------------------------------------------------------------------

FUTURE = datetime(2099, 1, 1, 12, 0, tzinfo=UTC)

# fmt: off
GOOD_ARGS: list[tuple[str, dict[str, Any]]] = [
    ("every-500ms",      {"every": "500ms"}),
    ("every-10s",        {"every": "10s"}),
    ("every-30m",        {"every": "30m"}),
    ("every-1h30m",      {"every": "1h30m"}),
    ("every-2d",         {"every": "2d"}),
    ("every-90s",        {"every": "90s"}),
    ("every-36h",        {"every": "36h"}),
    ("every-1h59m",      {"every": "1h59m"}),
    ("every-1d23h59m",   {"every": "1d23h59m"}),
    ("at-offset-23:59",  {"at": "2099-01-01T00:00:00+23:59"}),
    ("at-offset--23:59", {"at": "2099-01-01T00:00:00-23:59"}),
    ("at-max",           {"at": "9999-12-30T22:00:00Z"}),
    ("cron-last-weekday", {"cron": "0 0 LW * *"}),
    ("cron-nearest-weekday", {"cron": "0 0 15W * *"}),
    ("cron-nth-weekday", {"cron": "0 0 * * FRI#2"}),
    ("cron-dom-step-dow", {"cron": "0 0 */2 * MON"}),
    ("every-timedelta",  {"every": timedelta(minutes=5)}),
    ("after-10s",        {"after": "10s"}),
    ("after-timedelta",  {"after": timedelta(hours=1)}),
    ("cron-5",           {"cron": "*/5 * * * *"}),
    ("cron-6-seconds",   {"cron": "30 0 12 * * *"}),
    ("cron-dow-names",   {"cron": "0 8 * * MON-FRI"}),
    ("cron-month-names", {"cron": "0 0 1 JAN,JUL *"}),
    ("cron-list-range",  {"cron": "0 9,17 * * 1-5"}),
    ("cron-last-day",    {"cron": "0 0 L * *"}),
    ("cron-hourly",      {"cron": "@hourly"}),
    ("cron-daily",       {"cron": "@daily"}),
    ("cron-weekly",      {"cron": "@weekly"}),
    ("cron-monthly",     {"cron": "@monthly"}),
    ("cron-yearly",      {"cron": "@yearly"}),
    ("cron-berlin",      {"cron": "0 8 * * *", "timezone": "Europe/Berlin"}),
    ("at-aware-utc",     {"at": FUTURE}),
    ("at-aware-ny",      {"at": datetime(2099, 1, 1, 12, 0, tzinfo=ZoneInfo("America/New_York"))}),
    ("at-iso-z",         {"at": "2099-01-01T12:00:00Z"}),
    ("at-iso-offset",    {"at": "2099-01-01T12:00:00+02:00"}),
    ("at-naive",         {"at": datetime(2099, 1, 1, 12, 0), "timezone": "Asia/Tokyo"}),
    ("at-iso-naive",     {"at": "2099-01-01T12:00:00", "timezone": "Asia/Tokyo"}),
    ("attempts-1",       {"every": "1h", "max_attempts": 1}),
    ("attempts-10",      {"every": "1h", "max_attempts": 10}),
    ("overlap-delay",    {"every": "1h", "overlap": "delay"}),
    ("overlap-skip",     {"every": "1h", "overlap": "skip"}),
    ("overlap-allow",    {"every": "1h", "overlap": "allow"}),
    ("catchup-once",     {"every": "1h", "catchup": "once"}),
    ("catchup-skip",     {"every": "1h", "catchup": "skip"}),
    ("catchup-all",      {"every": "1h", "catchup": "all"}),
    ("jitter-str",       {"every": "1h", "jitter": "100ms"}),
    ("jitter-td",        {"every": "1h", "jitter": timedelta(seconds=1)}),
    ("jitter-None",      {"every": "1h", "jitter": None}),
]
# fmt: on


@pytest.mark.parametrize("kwargs", [pytest.param(row[1], id=row[0]) for row in GOOD_ARGS])
def test_good_arguments_are_accepted(name: str, kwargs: dict[str, Any]) -> None:
    assert kron.schedule(name, noop, **kwargs) is noop
    st = kron.status(name)
    assert st is not None
    assert st["max_attempts"] == kwargs.get("max_attempts", 3)
    assert st["overlap"] == kwargs.get("overlap", "delay")
    assert st["timezone"] == kwargs.get("timezone", "UTC")


@pytest.mark.parametrize("good", ["a", "A" * 128, "job-1_x.y:z", "9lives", "0", "a.b-c_d:e"])
def test_good_names_are_accepted(good: str) -> None:
    # These exact names may be reused by other runs of this test in the same process: that
    # is a re-registration, which is fine.
    assert kron.schedule(good, noop, at="2099-01-01T00:00:00Z") is noop
    assert kron.status(good) is not None


class CallableObject:
    def __call__(self) -> None:
        pass


class WithMethod:
    def job(self, ctx: dict[str, Any]) -> None:
        pass


def with_default(ctx: Any = None) -> None:
    pass


async def async_noop() -> None:
    pass


async def async_ctx(ctx: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(noop, id="no-param"),
        pytest.param(lambda ctx: None, id="lambda-ctx"),
        pytest.param(CallableObject(), id="callable-object"),
        pytest.param(WithMethod().job, id="bound-method-ctx"),
        pytest.param(with_default, id="optional-param"),
        pytest.param(functools.partial(needs_two, 1), id="partial-one-left"),
        pytest.param(async_noop, id="async-no-param"),
        pytest.param(async_ctx, id="async-ctx"),
    ],
)
def test_accepted_callables(name: str, fn: Any) -> None:
    assert kron.schedule(name, fn, every="1h") is fn
    assert kron.status(name) is not None


def test_schedule_returns_fn(name: str) -> None:
    def job() -> None:
        pass

    assert kron.schedule(name, job, every="30m") is job


def test_decorator_form(name: str) -> None:
    @kron.schedule(name, every="30m")
    def cleanup_job() -> str:
        return "called directly"

    # the decorator gives back the function itself, still usable as a plain function
    assert callable(cleanup_job)
    assert cleanup_job() == "called directly"
    assert cleanup_job.__name__ == "cleanup_job"
    st = kron.status(name)
    assert st is not None
    assert st["schedule"] == "every 30m"
    assert "cleanup_job" in st["fn_name"]


def test_decorator_form_validates_arguments(name: str) -> None:
    # Validation may happen when schedule() is called or when the decorator is applied;
    # either way the bad timer is never registered.
    with pytest.raises(VALUE):
        kron.schedule(name, every="0s")(noop)
    with pytest.raises(VALUE) as info:
        kron.schedule(name, overlap="sometimes", every="1m")(noop)
    assert OVERLAP_MSG in str(info.value)
    assert kron.status(name) is None


def test_decorator_rejects_bad_function(name: str) -> None:
    deco = kron.schedule(name, every="30m")
    with pytest.raises(EITHER) as info:
        deco(needs_two)
    assert "fn" in str(info.value)
    assert kron.status(name) is None


@pytest.mark.parametrize("fn", [gen_job, agen_job, GenCallable()], ids=["generator", "async-generator", "callable"])
def test_decorator_rejects_generator_function(name: str, fn: Any) -> None:
    deco = kron.schedule(name, every="30m")
    with pytest.raises(TYPE) as info:
        deco(fn)
    assert "fn" in str(info.value)
    assert "generator" in str(info.value)
    assert kron.status(name) is None


def test_rejected_generator_keeps_the_previous_definition(name: str, data_dir: str) -> None:
    kron.schedule(name, noop, every="30m")
    kron.start(data_dir)
    with pytest.raises(TYPE):
        kron.schedule(name, gen_job, every="1m")
    st = kron.status(name)
    assert st is not None
    assert st["schedule"] == "every 30m"
    assert "noop" in st["fn_name"]
    assert [e["kind"] for e in kron.history(name)] == ["TIMER_CREATED"]


def test_a_callback_that_returns_a_generator_fails_its_run(name: str, data_dir: str) -> None:
    # Not recognisable at schedule() (a plain lambda), but the body of what it returns never
    # runs: the run must fail, not succeed.
    ran: list[bool] = []

    def body() -> Iterator[None]:
        ran.append(True)
        yield

    kron.schedule(name, lambda: body(), after="1ms", max_attempts=1)
    kron.start(data_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kinds = [e["kind"] for e in kron.history(name)]
        if "RUN_FAILED" in kinds or "RUN_SUCCEEDED" in kinds or "RUN_DEAD" in kinds:
            break
        time.sleep(0.02)
    events = kron.history(name)
    kinds = [e["kind"] for e in events]
    assert "RUN_SUCCEEDED" not in kinds, kinds
    failed = [e for e in events if e["kind"] == "RUN_FAILED"]
    assert failed, kinds
    assert "generator" in (failed[0]["error"] or "")
    assert ran == []


def test_reregistration_before_start_takes_latest_definition(name: str) -> None:
    kron.schedule(name, noop, every="30m")
    kron.schedule(name, noop, cron="0 8 * * *", timezone="Europe/Berlin", max_attempts=5, overlap="skip")
    st = kron.status(name)
    assert st["schedule"] == "cron 0 8 * * * (Europe/Berlin)"
    assert st["timezone"] == "Europe/Berlin"
    assert st["max_attempts"] == 5
    assert st["overlap"] == "skip"


def _window(t0: datetime, t1: datetime, delta: timedelta, slack: timedelta = timedelta(0)) -> tuple:
    return t0 + delta - timedelta(milliseconds=2), t1 + delta + slack + timedelta(milliseconds=2)


@pytest.mark.parametrize(
    ("after", "delta"),
    [
        ("10s", timedelta(seconds=10)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        (timedelta(minutes=90), timedelta(minutes=90)),
    ],
)
def test_after_durations_are_parsed(name: str, data_dir: str, after: Any, delta: timedelta) -> None:
    t0 = datetime.now(UTC)
    kron.schedule(name, noop, after=after)
    kron.start(data_dir)
    st = kron.status(name)
    t1 = datetime.now(UTC)
    lo, hi = _window(t0, t1, delta)
    assert lo <= st["next_run_at"] <= hi, (st["next_run_at"], lo, hi)


def test_jitter_delays_within_bound(name: str, data_dir: str) -> None:
    t0 = datetime.now(UTC)
    kron.schedule(name, noop, after="1h", jitter="10m")
    kron.start(data_dir)
    st = kron.status(name)
    t1 = datetime.now(UTC)
    lo, hi = _window(t0, t1, timedelta(hours=1), slack=timedelta(minutes=10))
    assert lo <= st["next_run_at"] <= hi, (st["next_run_at"], lo, hi)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"at": FUTURE}, FUTURE, id="aware-utc"),
        pytest.param(
            {"at": datetime(2099, 1, 1, 12, 0, tzinfo=ZoneInfo("America/New_York"))},
            datetime(2099, 1, 1, 17, 0, tzinfo=UTC),
            id="aware-new-york",
        ),
        pytest.param(
            {"at": datetime(2099, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))},
            datetime(2099, 1, 1, 6, 30, tzinfo=UTC),
            id="aware-fixed-offset",
        ),
        pytest.param({"at": "2099-01-01T12:00:00Z"}, FUTURE, id="iso-z"),
        pytest.param(
            {"at": "2099-01-01T12:00:00+02:00"}, datetime(2099, 1, 1, 10, 0, tzinfo=UTC), id="iso-offset"
        ),
        pytest.param(
            {"at": datetime(2099, 1, 1, 12, 0), "timezone": "Asia/Tokyo"},
            datetime(2099, 1, 1, 3, 0, tzinfo=UTC),
            id="naive-in-timezone",
        ),
        pytest.param(
            {"at": "2099-07-01T12:00:00", "timezone": "Europe/Berlin"},
            datetime(2099, 7, 1, 10, 0, tzinfo=UTC),
            id="naive-iso-in-timezone-summer",
        ),
        pytest.param({"at": datetime(2099, 1, 1, 12, 0)}, FUTURE, id="naive-default-utc"),
        pytest.param(
            {"at": datetime(2099, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=0)},
            datetime(2099, 11, 1, 5, 30, tzinfo=UTC),
            id="aware-repeated-hour-fold-0",
        ),
        pytest.param(
            {"at": datetime(2099, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1)},
            datetime(2099, 11, 1, 6, 30, tzinfo=UTC),
            id="aware-repeated-hour-fold-1",
        ),
        pytest.param(
            {"at": "2099-01-01T12:00:00.250Z"},
            datetime(2099, 1, 1, 12, 0, 0, 250000, tzinfo=UTC),
            id="iso-milliseconds",
        ),
        pytest.param(
            {"at": "2099-01-01T12:00:00+02:00", "timezone": "Asia/Tokyo"},
            datetime(2099, 1, 1, 10, 0, tzinfo=UTC),
            id="aware-ignores-timezone",
        ),
    ],
)
def test_at_values_are_read_correctly(
    name: str, data_dir: str, kwargs: dict[str, Any], expected: datetime
) -> None:
    kron.schedule(name, noop, **kwargs)
    kron.start(data_dir)
    st = kron.status(name)
    assert st["next_run_at"] == expected
    assert st["next_run_at"].utcoffset() == timedelta(0)
    kinds = {e["kind"] for e in kron.history(name)}
    assert kinds <= EVENT_KINDS
