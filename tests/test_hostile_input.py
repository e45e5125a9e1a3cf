"""Regression tests for hostile schedule() input found by fuzzing and probing (the full table of
bad arguments is tests/test_schedule_args.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest

import kron


def noop() -> None:
    pass


@pytest.mark.parametrize("expr", [", * * * * *", "* , * * * *", "*/7 , * * * *", "0 , * * *", "* * , * * *"])
def test_cron_with_an_empty_list_field_is_rejected_at_once(name: str, expr: str) -> None:
    """A field that is only "," parses as an empty set; it must be refused as a syntax error, not
    after searching centuries of seconds for a match (found by the `cron` fuzz target: 7-9 s per
    call in a release build, minutes under the sanitizer)."""
    started = time.monotonic()
    with pytest.raises(kron.InvalidArgumentError) as info:
        kron.schedule(name, noop, cron=expr)
    took = time.monotonic() - started
    assert info.value.arg == "cron"
    assert took < 1.0, f"{expr!r} took {took:.1f} s to reject"


class _BrokenOffset(tzinfo):
    def utcoffset(self, dt: Any) -> timedelta:
        raise RuntimeError("this tzinfo is broken")

    def dst(self, dt: Any) -> timedelta:
        return timedelta(0)


def test_at_with_a_broken_tzinfo_names_the_argument(name: str) -> None:
    """An aware datetime whose tzinfo fails is a bad `at`, reported as such (ValueError or
    TypeError naming `at`), not as the tzinfo's own exception."""
    at = datetime(2030, 1, 1, tzinfo=_BrokenOffset())
    with pytest.raises((kron.InvalidArgumentError, kron.InvalidArgumentTypeError)) as info:
        kron.schedule(name, noop, at=at)
    assert info.value.arg == "at"
    assert kron.status(name) is None
