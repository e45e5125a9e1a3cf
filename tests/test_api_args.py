"""Bad arguments to every public function other than schedule() (see test_schedule_args.py):
each raises the documented ValueError/TypeError subclass naming the argument and the value, and
nothing is created or written."""

# ruff: noqa: E501  (the tables below are easier to read unwrapped)

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
from typing import Any, Callable

import pytest

import kron
from conftest import unique_name

VALUE = kron.InvalidArgumentError
TYPE = kron.InvalidArgumentTypeError

LIMIT_RANGE = "between 0 and 9223372036854775807"


def _file(tmp: Path) -> str:
    path = tmp / "a-file"
    path.write_text("not a directory\n")
    return str(path)


# Each row: id, a call given a scratch directory, the exception expected, substrings its message
# must contain.
# fmt: off
BAD_CALLS: list[tuple[str, Callable[[Path], Any], Any, tuple[str, ...]]] = [
    # -- start(data_dir, max_workers, durability, history_limit) --------------------------
    ("start-data_dir-int",        lambda d: kron.start(123),                                   TYPE,  ("data_dir", "123")),
    ("start-data_dir-None",       lambda d: kron.start(None),  # type: ignore[arg-type]
                                                                                                TYPE,  ("data_dir", "None")),
    ("start-data_dir-empty",      lambda d: kron.start(""),                                    VALUE, ("data_dir", "''")),
    ("start-data_dir-nul",        lambda d: kron.start(str(d / "a\x00b")),                     VALUE, ("data_dir",)),
    ("start-data_dir-file",       lambda d: kron.start(_file(d)),                              VALUE, ("data_dir", "a-file", "is a file, not a directory")),
    ("start-data_dir-under-file", lambda d: kron.start(os.path.join(_file(d), "sub", "dir")),  VALUE, ("data_dir", "a-file", "is a file, not a directory")),
    ("start-workers-0",           lambda d: kron.start(str(d / "k"), max_workers=0),           VALUE, ("max_workers", "0")),
    ("start-workers-negative",    lambda d: kron.start(str(d / "k"), max_workers=-1),          VALUE, ("max_workers", "-1")),
    ("start-workers-huge",        lambda d: kron.start(str(d / "k"), max_workers=2**64),       VALUE, ("max_workers", str(2**64))),
    ("start-workers-str",         lambda d: kron.start(str(d / "k"), max_workers="8"),          TYPE,  ("max_workers",)),
    ("start-workers-float",       lambda d: kron.start(str(d / "k"), max_workers=8.0),          TYPE,  ("max_workers",)),
    ("start-workers-bool",        lambda d: kron.start(str(d / "k"), max_workers=True),         TYPE,  ("max_workers",)),
    ("start-durability-fast",     lambda d: kron.start(str(d / "k"), durability="fast"),        VALUE, ("durability", "fast")),
    ("start-durability-int",      lambda d: kron.start(str(d / "k"), durability=1),             TYPE,  ("durability",)),
    ("start-history-negative",    lambda d: kron.start(str(d / "k"), history_limit=-1),         VALUE, ("history_limit", "-1")),
    ("start-history-huge",        lambda d: kron.start(str(d / "k"), history_limit=2**64),      VALUE, ("history_limit", str(2**64))),
    ("start-history-str",         lambda d: kron.start(str(d / "k"), history_limit="10"),       TYPE,  ("history_limit",)),
    ("start-history-float",       lambda d: kron.start(str(d / "k"), history_limit=1.5),        TYPE,  ("history_limit",)),
    # -- shutdown(timeout) ----------------------------------------------------------------
    ("shutdown-nan",              lambda d: kron.shutdown(math.nan),                           VALUE, ("timeout", "nan")),
    ("shutdown-negative",         lambda d: kron.shutdown(-1),                                 VALUE, ("timeout", "-1")),
    ("shutdown-negative-inf",     lambda d: kron.shutdown(-math.inf),                          VALUE, ("timeout", "-inf")),
    ("shutdown-str",              lambda d: kron.shutdown("5"),                                TYPE,  ("timeout", "'5'")),
    ("shutdown-None",             lambda d: kron.shutdown(None),                               TYPE,  ("timeout", "None")),
    ("shutdown-bool",             lambda d: kron.shutdown(True),                               TYPE,  ("timeout", "True")),
    # -- history(name, limit) -------------------------------------------------------------
    ("history-limit-2**64",       lambda d: kron.history("x", limit=2**64),                    VALUE, ("limit", str(2**64), LIMIT_RANGE)),
    ("history-limit-2**63",       lambda d: kron.history("x", limit=2**63),                    VALUE, ("limit", str(2**63), LIMIT_RANGE)),
    ("history-limit-negative",    lambda d: kron.history("x", limit=-1),                       VALUE, ("limit", "-1", LIMIT_RANGE)),
    ("history-limit-str",         lambda d: kron.history("x", limit="10"),                     TYPE,  ("limit",)),
    ("history-limit-float",       lambda d: kron.history("x", limit=1.5),                      TYPE,  ("limit",)),
    ("history-limit-bool",        lambda d: kron.history("x", limit=True),                     TYPE,  ("limit",)),
    ("history-name-int",          lambda d: kron.history(5),                                   TYPE,  ("name",)),
    # -- name of status / pause / resume / trigger / remove --------------------------------
    ("status-name-int",           lambda d: kron.status(5),                                    TYPE,  ("name", "5")),
    ("status-name-None",          lambda d: kron.status(None),                                 TYPE,  ("name", "None")),
    ("pause-name-bytes",          lambda d: kron.pause(b"x"),                                  TYPE,  ("name", "b'x'")),
    ("resume-name-list",          lambda d: kron.resume(["x"]),                                TYPE,  ("name",)),
    ("trigger-name-int",          lambda d: kron.trigger(1),                                   TYPE,  ("name", "1")),
    ("remove-name-None",          lambda d: kron.remove(None),                                 TYPE,  ("name", "None")),
    # -- the async forms check the same way --------------------------------------------------
    ("astart-data_dir-file",      lambda d: asyncio.run(kron.astart(_file(d))),                VALUE, ("data_dir", "is a file, not a directory")),
    ("astart-workers-0",          lambda d: asyncio.run(kron.astart(str(d / "k"), max_workers=0)), VALUE, ("max_workers", "0")),
    ("ashutdown-nan",             lambda d: asyncio.run(kron.ashutdown(math.nan)),             VALUE, ("timeout", "nan")),
    ("ashutdown-str",             lambda d: asyncio.run(kron.ashutdown("5")),                  TYPE,  ("timeout",)),
    ("astatus-name-int",          lambda d: asyncio.run(kron.astatus(5)),                      TYPE,  ("name", "5")),
]
# fmt: on


@pytest.mark.parametrize(("call", "exc", "needles"), [pytest.param(*row[1:], id=row[0]) for row in BAD_CALLS])
def test_bad_argument_raises_naming_it(tmp_path: Path, call: Callable[[Path], Any], exc: Any, needles: tuple[str, ...]) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(exc) as info:
        call(tmp_path)
    err = info.value
    assert isinstance(err, kron.KronError)
    assert isinstance(err, (ValueError, TypeError))
    msg = str(err)
    for needle in needles:
        assert needle in msg, f"message {msg!r} does not name {needle!r}"
    # Nothing was created: no data directory, and no runtime left running.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "a-file") == [n for n in before if n != "a-file"]
    assert not kron._kron.is_running()


def test_shutdown_timeout_edges_are_accepted_when_not_started() -> None:
    # 0 does not wait; inf waits as long as the runs take; a huge int is as good as inf.
    for timeout in (0, 0.0, 5, 2.5, math.inf, 10**400):
        kron.shutdown(timeout)


def test_shutdown_with_an_infinite_timeout_waits_for_runs(tmp_path: Path) -> None:
    name = unique_name("inf-timeout")
    kron.schedule(name, lambda: None, every="1h")
    kron.start(str(tmp_path / "k"))
    kron.shutdown(math.inf)
    assert not kron._kron.is_running()


@pytest.mark.parametrize("limit", [0, 1, 2**63 - 1])
def test_history_limit_bounds_are_accepted(tmp_path: Path, limit: int) -> None:
    name = unique_name("history-limit")
    kron.schedule(name, lambda: None, every="1h")
    kron.start(str(tmp_path / "k"))
    events = kron.history(name, limit=limit)
    assert len(events) == min(limit, 1)


def test_a_data_dir_that_is_a_file_is_left_untouched(tmp_path: Path) -> None:
    path = Path(_file(tmp_path))
    with pytest.raises(VALUE) as info:
        kron.start(path)
    assert info.value.arg == "data_dir"  # type: ignore[attr-defined]
    assert str(path) in str(info.value)
    assert path.read_text() == "not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
