"""Cron expressions and time zones through the public API: status()["next_run_at"].

The clock cannot be faked through the public API, so each expectation is computed here from
"now" by a small reference implementation (only for the plain cron forms used below), and a
test accepts the value computed just before schedule() or just after status() (a boundary may
pass in between).  DST is checked where it is deterministic: a cron pinned to the day of the
next transition in the zone.  Exhaustive DST coverage belongs to the Rust tests.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import kron
from conftest import is_aware_utc

UTC = timezone.utc

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DOWS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


def noop() -> None:
    pass


# ---------------------------------------------------------------------------
# reference implementation (plain forms only)
# ---------------------------------------------------------------------------


def _field(text: str, lo: int, hi: int, names: dict[str, int] | None = None) -> set[int] | None:
    """Set of values; None for '*'."""
    if text == "*":
        return None
    out: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, s = part.split("/")
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, y = part.split("-")
            a, b = _val(x, names), _val(y, names)
        else:
            a = b = _val(part, names)
        out.update(range(a, b + 1, step))
    return out


def _val(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return int(text)


def resolve(naive: datetime, tz: ZoneInfo) -> datetime:
    """Local wall time -> UTC instant, by the spec's DST rules for a fixed local time:
    a time that occurs twice -> its first occurrence; a time that does not exist -> the first
    valid instant after it."""
    utc = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == naive:
        return utc
    probe = naive.replace(second=0)
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        u = probe.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if u.astimezone(tz).replace(tzinfo=None) == probe:
            return u
    raise AssertionError(f"no valid local time after {naive}")


def expected_next(expr: str, tzname: str, now: datetime) -> datetime:
    expr = MACROS.get(expr, expr)
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    sec_f, min_f, hour_f, dom_f, mon_f, dow_f = fields
    secs = _field(sec_f, 0, 59) or set(range(60))
    mins = _field(min_f, 0, 59) or set(range(60))
    hours = _field(hour_f, 0, 23) or set(range(24))
    last = dom_f == "L"
    doms = None if last else _field(dom_f, 1, 31)
    months = _field(mon_f, 1, 12, MONTHS) or set(range(1, 13))
    dows = _field(dow_f, 0, 7, DOWS)
    if dows is not None and 7 in dows:
        dows.add(0)
    tz = ZoneInfo(tzname)
    day = now.astimezone(tz).date() - timedelta(days=1)
    for _ in range(3 * 366):
        day += timedelta(days=1)
        if day.month not in months:
            continue
        if last:
            dom_ok: bool | None = day.day == calendar.monthrange(day.year, day.month)[1]
        else:
            dom_ok = None if doms is None else day.day in doms
        dow_ok = None if dows is None else (day.weekday() + 1) % 7 in dows
        if dom_ok is None and dow_ok is None:
            ok = True
        elif dom_ok is None or dow_ok is None:
            ok = bool(dom_ok if dow_ok is None else dow_ok)
        else:
            ok = dom_ok or dow_ok  # both restricted: either matches (classic cron)
        if not ok:
            continue
        for h in sorted(hours):
            for m in sorted(mins):
                for s in sorted(secs):
                    inst = resolve(datetime.combine(day, time(h, m, s)), tz)
                    if inst > now:
                        return inst
    raise AssertionError(f"no occurrence of {expr} found")


def next_run_for(name: str, data_dir: str, expr: str, tzname: str) -> tuple[datetime, list[datetime]]:
    t0 = datetime.now(UTC)
    kron.schedule(name, noop, cron=expr, timezone=tzname)
    kron.start(data_dir)
    st = kron.status(name)
    t1 = datetime.now(UTC)
    assert st["timezone"] == tzname
    nxt = st["next_run_at"]
    assert is_aware_utc(nxt), nxt
    return nxt, [expected_next(expr, tzname, t0), expected_next(expr, tzname, t1)]


# ---------------------------------------------------------------------------
# plain cron forms
# ---------------------------------------------------------------------------

CASES = [
    ("30 2 * * *", "America/New_York"),
    ("30 1 * * *", "America/New_York"),
    ("0 8 * * *", "Europe/Berlin"),
    ("0 0 * * *", "Asia/Kolkata"),
    ("@daily", "UTC"),
    ("@hourly", "UTC"),
    ("@weekly", "UTC"),
    ("@monthly", "UTC"),
    ("@yearly", "UTC"),
    ("@weekly", "Asia/Tokyo"),
    ("@monthly", "Australia/Sydney"),
    ("0 12 * * MON", "Europe/Paris"),
    ("0 9 1 JAN,JUL *", "Europe/London"),
    ("0 0 L * *", "UTC"),
    ("0 18 L * *", "America/Chicago"),
    ("15 10 1-7 * *", "Australia/Sydney"),
    ("0 9,17 * * *", "America/Los_Angeles"),
    ("0 8 * * 1-5", "Asia/Kolkata"),
    ("0 */6 * * *", "UTC"),
    ("*/15 * * * *", "UTC"),
    ("0 0 29 2 *", "UTC"),
    ("30 0 12 * * *", "UTC"),
    ("0 30 9 * * SUN", "Europe/Berlin"),
    ("0 0 * * 7", "UTC"),
    ("0 0 * * SUN", "America/New_York"),
]


@pytest.mark.parametrize(("expr", "tzname"), CASES)
def test_cron_next_run_at(name: str, data_dir: str, expr: str, tzname: str) -> None:
    nxt, expected = next_run_for(name, data_dir, expr, tzname)
    assert nxt in expected, f"{expr} in {tzname}: got {nxt}, expected {expected[0]} (or {expected[1]})"


def test_cron_schedule_text(name: str) -> None:
    kron.schedule(name, noop, cron="0 8 * * *", timezone="Europe/Berlin")
    assert kron.status(name)["schedule"] == "cron 0 8 * * * (Europe/Berlin)"


def test_new_york_0230_is_0230_local_or_first_instant_after_gap(name: str, data_dir: str) -> None:
    """The must-have: cron 30 2 * * * in America/New_York."""
    ny = ZoneInfo("America/New_York")
    now = datetime.now(UTC)
    nxt, expected = next_run_for(name, data_dir, "30 2 * * *", "America/New_York")
    assert nxt > now
    assert nxt - now <= timedelta(hours=25)
    local = nxt.astimezone(ny)
    assert (local.hour, local.minute) in {(2, 30), (3, 0)}
    if (local.hour, local.minute) == (3, 0):
        # only on the day that 02:30 does not exist
        assert resolve(datetime.combine(local.date(), time(2, 30)), ny) == nxt
    assert local.second == 0 and local.microsecond == 0
    assert nxt in expected


# ---------------------------------------------------------------------------
# DST, where deterministic: a cron pinned to the day of the zone's next transition
# ---------------------------------------------------------------------------


def next_transition(tzname: str, forward: bool, now: datetime) -> datetime:
    """UTC instant of the next DST transition (forward: clocks go forward) after now."""
    tz = ZoneInfo(tzname)
    t = now.replace(minute=0, second=0, microsecond=0)
    off = t.astimezone(tz).utcoffset()
    step = timedelta(minutes=30)
    for _ in range(2 * 24 * 400):
        t2 = t + step
        off2 = t2.astimezone(tz).utcoffset()
        if off2 != off:
            if (off2 > off) == forward and t2 > now:
                # refine to the minute
                lo = t
                while lo.astimezone(tz).utcoffset() == off:
                    lo += timedelta(minutes=1)
                return lo
            off = off2
        t = t2
    pytest.skip(f"{tzname} has no {'spring' if forward else 'autumn'} transition in the next year")


DST_GAP_CASES = [
    # zone, local time-of-day pinned inside the gap (cron minute, hour), expected local time
    ("America/New_York", (30, 2), (3, 0)),
    ("America/New_York", (0, 2), (3, 0)),
    ("Europe/Berlin", (30, 2), (3, 0)),
    ("Australia/Lord_Howe", (15, 2), (2, 30)),  # a 30-minute DST shift
]


@pytest.mark.parametrize(("tzname", "minute_hour", "expected_local"), DST_GAP_CASES)
@pytest.mark.parametrize("six_fields", [False, True], ids=["5-fields", "6-fields"])
def test_nonexistent_local_time_fires_at_first_valid_instant_after(
    name: str,
    data_dir: str,
    tzname: str,
    minute_hour: tuple[int, int],
    expected_local: tuple[int, int],
    six_fields: bool,
) -> None:
    tz = ZoneInfo(tzname)
    now = datetime.now(UTC)
    trans = next_transition(tzname, forward=True, now=now)
    day: date = trans.astimezone(tz).date()
    m, h = minute_hour
    expr = f"{m} {h} {day.day} {day.month} *"
    if six_fields:
        expr = "0 " + expr
    kron.schedule(name, noop, cron=expr, timezone=tzname)
    kron.start(data_dir)
    nxt = kron.status(name)["next_run_at"]
    assert is_aware_utc(nxt)
    assert nxt == trans, f"{expr} ({tzname}): got {nxt} = {nxt.astimezone(tz)}, expected {trans}"
    local = nxt.astimezone(tz)
    assert (local.hour, local.minute) == expected_local
    assert local.date() == day


REPEATED_CASES = [
    ("America/New_York", (30, 1)),
    ("Europe/Berlin", (30, 2)),
    ("Australia/Sydney", (30, 2)),
]


@pytest.mark.parametrize(("tzname", "minute_hour"), REPEATED_CASES)
def test_repeated_local_time_fires_at_first_occurrence(
    name: str, data_dir: str, tzname: str, minute_hour: tuple[int, int]
) -> None:
    tz = ZoneInfo(tzname)
    now = datetime.now(UTC)
    trans = next_transition(tzname, forward=False, now=now)
    day = trans.astimezone(tz).date()
    m, h = minute_hour
    first = datetime.combine(day, time(h, m)).replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = datetime.combine(day, time(h, m)).replace(tzinfo=tz, fold=1).astimezone(UTC)
    assert first < second, "the pinned time must really occur twice"
    if first <= now:
        pytest.skip("running inside the repeated hour itself")
    kron.schedule(name, noop, cron=f"{m} {h} {day.day} {day.month} *", timezone=tzname)
    kron.start(data_dir)
    nxt = kron.status(name)["next_run_at"]
    assert nxt == first, f"got {nxt}, expected the first occurrence {first} (not {second})"


def test_cron_timezone_changes_next_run(names: Any, data_dir: str) -> None:
    a, b = names("utc"), names("tokyo")
    kron.schedule(a, noop, cron="0 12 * * *", timezone="UTC")
    kron.schedule(b, noop, cron="0 12 * * *", timezone="Asia/Tokyo")
    kron.start(data_dir)
    na, nb = kron.status(a)["next_run_at"], kron.status(b)["next_run_at"]
    assert na.astimezone(UTC).hour == 12
    assert nb.astimezone(ZoneInfo("Asia/Tokyo")).hour == 12
    assert nb.astimezone(UTC).hour == 3
