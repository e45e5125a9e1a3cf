"""Standby runtimes: ``kron.start(data_dir, standby=True)`` in several processes on one directory.

One process is active (it owns the directory and runs the timers); the others wait, run nothing,
and one of them takes over when the owner releases the directory (``shutdown()``) or dies
(SIGKILL). Reads in a standby come from the store; admin calls go to the active runtime through
its control socket. (Fork: test_standby_fork.py.)

The processes are children (``Node``, in standby_node.py) talking to the test through files;
where the test process itself is the standby (to check the API's return values and exceptions
directly), the ``procs`` fixture shuts it down before the owner is killed at teardown, so that it
never takes over a directory by accident.

Take-over times are measured and printed; they are asserted only with a wide margin
(``TAKEOVER_LIMIT``), the real figure is in the benchmark (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

import kron
from conftest import (
    HISTORY_KEYS,
    STATUS_KEYS,
    Children,
    Recorder,
    hold,
    is_aware_utc,
    parse_dt,
    wait_until,
)
from runtime_status import runtime_status, runtime_status_json, standby_pids, status_when, text_standby_pids
from standby_node import (
    EVERY_200MS,
    HOURLY,
    TAKEOVER_LIMIT,
    TAKEOVER_WAIT,
    Node,
    first_line_after,
    kinds,
    ledger_lines,
    same_dir,
)

UTC = timezone.utc

# ---------------------------------------------------------------------------
# a standby waits and runs nothing
# ---------------------------------------------------------------------------


def test_standby_start_returns_at_once_and_runs_nothing_while_the_owner_lives(
    names: Any, data_dir: str, tmp_path: Path, recorder: Recorder, procs: Children
) -> None:
    beat, mine = names("beat"), names("mine")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    wait_until(lambda: ledger_lines(tmp_path, timer=beat), message="the owner's first run")

    kron.schedule(beat, recorder.callback(beat), every="200ms")
    kron.schedule(mine, recorder.callback(mine), every="200ms")
    assert kron.runtime_info()["role"] == "stopped"
    before = datetime.now(UTC)
    began = time.monotonic()
    assert kron.start(data_dir, standby=True) is None
    took = time.monotonic() - began
    after = datetime.now(UTC)
    assert took < TAKEOVER_LIMIT, f"start(standby=True) blocked for {took:.2f}s"

    info = kron.runtime_info()
    assert info["role"] == "standby", info
    assert info["pid"] == os.getpid()
    assert info["active_pid"] == owner.pid
    assert same_dir(info["data_dir"], data_dir), info
    assert info["error"] is None
    assert is_aware_utc(info["since"]), info
    assert before - timedelta(seconds=1) <= info["since"] <= after + timedelta(seconds=1), info
    assert os.getpid() in [s["pid"] for s in info["standbys"]], info
    assert all(is_aware_utc(s["since"]) for s in info["standbys"]), info

    n_owner = len(ledger_lines(tmp_path, timer=beat))
    hold(1.5)
    assert recorder.n(beat) == 0, "a standby ran a timer while the owner lives"
    assert recorder.n(mine) == 0, "a standby ran a timer while the owner lives"
    assert kron.runtime_info()["role"] == "standby"
    # ... and the owner went on running its timer meanwhile, alone
    lines = ledger_lines(tmp_path, timer=beat)
    assert len(lines) >= n_owner + 3, lines
    assert {ln["pid"] for ln in lines} == {owner.pid}


def test_standby_false_keeps_raising_data_dir_locked(
    name: str, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    owner = Node(procs, tmp_path, data_dir, {name: HOURLY}, label="owner")
    owner.ready()
    for kwargs in ({}, {"standby": False}):
        with pytest.raises(kron.DataDirLockedError) as info:
            kron.start(data_dir, **kwargs)
        assert info.value.pid == owner.pid
        assert str(owner.pid) in str(info.value)
        assert kron.runtime_info()["role"] == "stopped"
    # not half-started: a standby start works afterwards
    kron.start(data_dir, standby=True)
    assert kron.runtime_info()["role"] == "standby"


# ---------------------------------------------------------------------------
# take-over
# ---------------------------------------------------------------------------


def test_take_over_when_the_owner_shuts_down(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    beat = names("beat")
    timers = {beat: EVERY_200MS}
    owner = Node(procs, tmp_path, data_dir, timers, label="owner")
    assert owner.ready()["info"]["role"] == "active"
    standby = Node(procs, tmp_path, data_dir, timers, label="standby", standby=True)
    ready = standby.ready()["info"]
    assert ready["role"] == "standby", ready
    assert ready["active_pid"] == owner.pid, ready
    wait_until(lambda: ledger_lines(tmp_path, pid=owner.pid), message="the owner's first run")

    asked = time.time()
    after_shutdown = owner.value("shutdown")  # the owner process lives on, without its runtime
    released = time.time()
    assert after_shutdown["role"] == "stopped", after_shutdown
    first = wait_until(
        lambda: first_line_after(tmp_path, asked, pid=standby.pid),
        timeout=TAKEOVER_WAIT,
        message="a run in the standby after the owner's shutdown()",
    )
    took = first["t"] - released
    print(f"take-over after shutdown(): first run {1000 * took:.0f} ms after the release")
    assert took < TAKEOVER_LIMIT, f"took {took:.2f}s"
    assert owner.proc.poll() is None, "the owner exited: the release, not the exit, must wake the standby"
    assert not [ln for ln in ledger_lines(tmp_path, pid=owner.pid) if ln["t"] > released]

    snap = standby.value("snapshot")
    info = snap["info"]
    assert info["role"] == "active" and info["active_pid"] == standby.pid, info
    assert parse_dt(info["since"]) >= parse_dt(ready["since"]), info
    assert [s["pid"] for s in info["standbys"]] == [], info
    assert info["error"] is None
    # a graceful release leaves nothing interrupted
    assert "RUN_INTERRUPTED" not in kinds(snap["history"][beat])
    assert kinds(snap["history"][beat]).count("TIMER_CREATED") == 1
    assert "TIMER_UPDATED" not in kinds(snap["history"][beat])
    wait_until(lambda: "took over" in standby.stderr(), message="the take-over logged")


def test_take_over_when_the_owner_is_killed_retries_the_interrupted_run(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    beat, slow = names("beat"), names("slow")
    timers = {beat: EVERY_200MS, slow: {"after": "100ms", "max_attempts": 3}}
    owner = Node(procs, tmp_path, data_dir, timers, label="owner", block=(slow,))
    owner.ready()
    standby = Node(procs, tmp_path, data_dir, timers, label="standby", standby=True, block=(slow,))
    assert standby.ready()["info"]["role"] == "standby"
    # the owner is inside slow's first attempt (it blocks) and beat keeps running
    first_attempt = wait_until(lambda: ledger_lines(tmp_path, timer=slow), message="slow's first attempt")[0]
    assert first_attempt["pid"] == owner.pid and first_attempt["attempt"] == 1
    wait_until(lambda: len(ledger_lines(tmp_path, timer=beat)) >= 2, message="beat runs")
    assert not ledger_lines(tmp_path, pid=standby.pid), "the standby ran something before the kill"

    killed = owner.kill()
    first = wait_until(
        lambda: first_line_after(tmp_path, killed, timer=beat, pid=standby.pid),
        timeout=TAKEOVER_WAIT,
        message="beat running in the standby after the owner's SIGKILL",
    )
    took = first["t"] - killed
    print(f"take-over after SIGKILL: first callback {1000 * took:.0f} ms after the kill")
    assert took < TAKEOVER_LIMIT, f"took {took:.2f}s"

    # the run the owner had in progress is retried in the new owner, with the same key
    retry = wait_until(
        lambda: [ln for ln in ledger_lines(tmp_path, timer=slow) if ln["attempt"] == 2],
        timeout=TAKEOVER_WAIT,
        message="slow's retry",
    )[0]
    assert retry["pid"] == standby.pid
    assert retry["key"] == first_attempt["key"]

    def finished() -> dict[str, Any] | None:
        snap: dict[str, Any] = standby.value("snapshot")
        return snap if snap["status"][slow]["state"] == "completed" else None

    snap = wait_until(finished, message="slow completed")
    hist = snap["history"][slow]
    started = [e for e in hist if e["kind"] == "RUN_STARTED"]
    assert [e["attempt"] for e in started] == [1, 2], kinds(hist)
    interrupted = [e for e in hist if e["kind"] == "RUN_INTERRUPTED"]
    assert len(interrupted) == 1 and interrupted[0]["run_id"] == started[0]["run_id"], kinds(hist)
    assert [e["attempt"] for e in hist if e["kind"] == "RUN_SUCCEEDED"] == [2]
    info = snap["info"]
    assert info["role"] == "active" and info["active_pid"] == standby.pid and info["error"] is None, info
    assert snap["status"][beat]["active_pid"] == standby.pid
    assert len(ledger_lines(tmp_path, timer=slow)) == 2
    wait_until(lambda: "took over" in standby.stderr(), message="the take-over logged")


def test_definitions_of_the_new_process_are_applied_at_take_over(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    changed, same, old_only, new_only = names("changed"), names("same"), names("old"), names("new")
    owner = Node(
        procs, tmp_path, data_dir, {changed: HOURLY, same: HOURLY, old_only: HOURLY}, label="old-version"
    )
    owner.ready()
    new_timers = {changed: {"every": "300ms"}, same: HOURLY, new_only: HOURLY}
    standby = Node(procs, tmp_path, data_dir, new_timers, label="new-version", standby=True)
    assert standby.ready()["info"]["role"] == "standby"

    # while the old version runs, its definitions are in force; the standby's wait
    waiting = standby.value("snapshot")
    assert waiting["status"][changed]["schedule"] == "every 1h", waiting["status"][changed]
    assert waiting["status"][new_only] is None, "a standby's new timer is not the active runtime's"
    assert "TIMER_UPDATED" not in kinds(waiting["history"][changed])
    hold(0.8)
    assert not ledger_lines(tmp_path, timer=changed)

    killed = owner.kill()
    wait_until(
        lambda: first_line_after(tmp_path, killed, timer=changed, pid=standby.pid),
        timeout=TAKEOVER_WAIT,
        message="the new definition (every 300ms) running in the new owner",
    )
    snap = standby.value("snapshot")
    hist = snap["history"][changed]
    updated = [e for e in hist if e["kind"] == "TIMER_UPDATED"]
    assert len(updated) == 1, kinds(hist)
    assert "300ms" in (updated[0]["schedule"] or ""), updated
    assert "300ms" in snap["status"][changed]["schedule"]
    assert "TIMER_UPDATED" not in kinds(snap["history"][same])
    assert kinds(snap["history"][new_only])[:1] == ["TIMER_CREATED"]
    assert snap["status"][new_only]["state"] == "scheduled"
    old = next(t for t in snap["list"] if t["id"] == old_only)
    assert old["state"] == "orphaned", old


def test_schedule_in_a_standby_changes_nothing_until_its_take_over(
    names: Any, data_dir: str, tmp_path: Path, recorder: Recorder, procs: Children
) -> None:
    shared, late = names("shared"), names("late")
    owner = Node(procs, tmp_path, data_dir, {shared: HOURLY}, label="owner")
    owner.ready()
    kron.start(data_dir, standby=True)
    # registered after start(), while waiting: recorded for the take-over only
    kron.schedule(shared, recorder.callback(shared), every="300ms")
    kron.schedule(late, recorder.callback(late), every="200ms")
    assert kron.status(shared)["schedule"] == "every 1h"  # type: ignore[index]
    assert kron.status(late) is None
    assert owner.value("status", shared)["schedule"] == "every 1h"
    hold(0.8)
    assert recorder.n(shared) == 0 and recorder.n(late) == 0
    assert "TIMER_UPDATED" not in kinds(kron.history(shared))

    owner.kill()
    wait_until(lambda: recorder.n(late) >= 1 and recorder.n(shared) >= 1, timeout=TAKEOVER_WAIT)
    assert kron.runtime_info()["role"] == "active"
    assert kron.status(shared)["schedule"] == "every 300ms"  # type: ignore[index]
    assert kinds(kron.history(shared)).count("TIMER_UPDATED") == 1
    assert kinds(kron.history(late))[:1] == ["TIMER_CREATED"]


def test_a_take_over_that_fails_says_why(
    names: Any,
    data_dir: str,
    tmp_path: Path,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    procs: Children,
) -> None:
    """The directory is marked as written by a newer Kron while the owner runs: the standby
    cannot open it when the owner dies. It stops waiting, logs why, and runtime_info() says so."""
    beat = names("beat")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    kron.schedule(beat, recorder.callback(beat), every="200ms")
    kron.start(data_dir, standby=True)
    db = sqlite3.connect(str(Path(data_dir) / "kron.db"), timeout=10)
    try:
        db.execute("PRAGMA user_version = 99")
        db.commit()
    finally:
        db.close()

    def errors_logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "kron" and r.levelno == logging.ERROR]

    with caplog.at_level(logging.INFO, logger="kron"):
        owner.kill()
        info = wait_until(
            lambda: (i := kron.runtime_info())["role"] != "standby" and i,
            timeout=TAKEOVER_WAIT,
            message="the standby to stop waiting",
        )
        # logged right after the role changes
        failed = wait_until(errors_logged, message="the failed take-over logged")
    assert info["role"] == "stopped", info
    assert info["error"] and "99" in info["error"] and "kron.db" in info["error"], info
    assert "could not take over" in failed[0].getMessage(), failed[0].getMessage()
    hold(0.5)
    assert recorder.n(beat) == 0


def test_astart_standby_waits_then_takes_over(
    names: Any, data_dir: str, tmp_path: Path, recorder: Recorder, procs: Children
) -> None:
    beat, mine = names("beat"), names("mine")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    kron.schedule(mine, recorder.callback(mine), every="200ms")

    async def main() -> tuple[float, Any]:
        began = time.monotonic()
        await kron.astart(data_dir, standby=True)
        return time.monotonic() - began, kron.runtime_info()

    took, info = asyncio.run(main())
    assert took < TAKEOVER_LIMIT, f"astart(standby=True) blocked for {took:.2f}s"
    assert info["role"] == "standby" and info["active_pid"] == owner.pid, info
    hold(0.8)
    assert recorder.n(mine) == 0

    killed = owner.kill()
    wait_until(lambda: recorder.n(mine) >= 1, timeout=TAKEOVER_WAIT, message="mine after the take-over")
    took = recorder.calls_of(mine)[0]["start"] - killed
    assert took < TAKEOVER_LIMIT, f"took {took:.2f}s"
    info = kron.runtime_info()
    assert info["role"] == "active" and info["active_pid"] == os.getpid(), info
    assert kron.status(mine)["active_pid"] == os.getpid()
    assert kron.status(beat)["state"] == "orphaned"  # this process does not register it

    async def stop() -> None:
        await kron.ashutdown(timeout=5)

    asyncio.run(stop())
    assert kron.runtime_info()["role"] == "stopped"


def test_shutdown_of_a_standby_stops_it_for_good(
    names: Any, data_dir: str, tmp_path: Path, recorder: Recorder, procs: Children
) -> None:
    beat, mine = names("beat"), names("mine")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    kron.schedule(mine, recorder.callback(mine), every="200ms")
    kron.start(data_dir, standby=True)
    assert kron.runtime_info()["role"] == "standby"
    wait_until(
        lambda: os.getpid() in [s["pid"] for s in owner.value("info")["standbys"]],
        message="this standby known to the owner",
    )

    began = time.monotonic()
    kron.shutdown(timeout=5)
    assert time.monotonic() - began < TAKEOVER_LIMIT
    assert kron.runtime_info()["role"] == "stopped"
    wait_until(
        lambda: os.getpid() not in [s["pid"] for s in owner.value("info")["standbys"]],
        message="the stopped standby gone from the owner's list",
    )

    owner.kill()
    hold(2.0)
    assert recorder.n(mine) == 0, "a standby that was shut down took over"
    assert kron.runtime_info()["role"] == "stopped"
    # the directory is free: the stopped standby holds no lock
    kron.start(data_dir)
    assert kron.runtime_info()["role"] == "active"
    wait_until(lambda: recorder.n(mine) >= 1, message="mine after a normal start")


# ---------------------------------------------------------------------------
# reads and admin calls in a standby
# ---------------------------------------------------------------------------


def test_status_list_and_history_in_a_standby_read_the_store(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    beat, hourly = names("beat"), names("hourly")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS, hourly: HOURLY}, label="owner")
    owner.ready()
    wait_until(lambda: ledger_lines(tmp_path, timer=beat), message="the owner's first run")
    kron.start(data_dir, standby=True)  # registers nothing of its own

    first = kron.status(beat)
    assert first is not None
    assert STATUS_KEYS <= set(first), set(first)
    assert first["active_pid"] == owner.pid
    assert first["schedule"] == "every 200ms"
    # every read is fresh: the owner's progress shows up
    wait_until(
        lambda: kron.status(beat)["run_count"] >= first["run_count"] + 3,  # type: ignore[index]
        message="run_count growing as read from the standby",
    )
    listed = {t["id"]: t for t in kron.list()}
    assert {beat, hourly} <= set(listed), sorted(listed)
    assert all(t["active_pid"] == owner.pid for t in listed.values()), listed
    assert listed[hourly]["state"] == "scheduled"
    assert kron.status(names("absent")) is None

    hist = kron.history(beat, limit=1000)
    assert all(HISTORY_KEYS <= set(e) for e in hist)
    seqs = [e["seq"] for e in hist]
    assert seqs == sorted(seqs)
    assert kinds(hist)[0] == "TIMER_CREATED"
    assert "RUN_SUCCEEDED" in kinds(hist)
    assert all(is_aware_utc(e["ts"]) for e in hist)
    # the owner says the same of itself
    assert owner.value("status", beat)["active_pid"] == owner.pid


def test_pause_resume_trigger_remove_in_a_standby_act_on_the_active_runtime(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    beat, other, gone = names("beat"), names("other"), names("gone")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS, other: HOURLY, gone: HOURLY}, label="owner")
    owner.ready()
    wait_until(lambda: ledger_lines(tmp_path, timer=beat), message="the owner's first run")
    kron.start(data_dir, standby=True)

    kron.pause(beat)
    wait_until(lambda: "TIMER_PAUSED" in kinds(kron.history(beat)), message="TIMER_PAUSED")
    wait_until(lambda: kron.status(beat)["state"] == "paused", message="paused")  # type: ignore[index]
    hold(1.0)  # a run already started may finish
    n = len(ledger_lines(tmp_path, timer=beat))
    hold(1.0)
    assert len(ledger_lines(tmp_path, timer=beat)) == n, "the owner ran a paused timer"
    assert owner.value("status", beat)["state"] == "paused"

    resumed = time.time()
    kron.resume(beat)
    wait_until(lambda: "TIMER_RESUMED" in kinds(kron.history(beat)), message="TIMER_RESUMED")
    wait_until(lambda: first_line_after(tmp_path, resumed, timer=beat), message="beat runs again")

    run_id = kron.trigger(other)
    assert isinstance(run_id, str) and run_id, run_id
    ran = wait_until(lambda: ledger_lines(tmp_path, timer=other, run_id=run_id), message="the triggered run")
    assert ran[0]["pid"] == owner.pid
    due = wait_until(
        lambda: [e for e in kron.history(other) if e["kind"] == "RUN_DUE" and e["run_id"] == run_id],
        message="the triggered run's RUN_DUE",
    )
    assert due[0]["manual"] is True

    kron.remove(gone)
    wait_until(lambda: kron.status(gone) is None, message="gone removed")
    assert "TIMER_REMOVED" in kinds(kron.history(gone))
    assert owner.value("status", gone) is None

    missing = names("missing")
    for call in (kron.pause, kron.resume, kron.trigger, kron.remove):
        with pytest.raises(kron.TimerNotFoundError):
            call(missing)
    assert kron.runtime_info()["role"] == "standby"
    assert {ln["pid"] for ln in ledger_lines(tmp_path)} == {owner.pid}


def test_admin_calls_in_a_standby_without_a_reachable_active_runtime_raise(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    """The owner lives (so the standby cannot take over, nor edit the store itself) but its
    control socket is gone: nothing can carry the request, and the standby must say so."""
    beat = names("beat")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    wait_until(lambda: ledger_lines(tmp_path, timer=beat), message="the owner's first run")
    kron.start(data_dir, standby=True)
    sock = Path(data_dir) / "control.sock"
    if not sock.exists():
        pytest.skip("the owner has no control socket here (path too long for a socket address?)")
    sock.unlink()

    calls: list[tuple[str, Callable[[str], Any]]] = [
        ("pause", kron.pause),
        ("resume", kron.resume),
        ("trigger", kron.trigger),
        ("remove", kron.remove),
    ]
    for what, call in calls:
        began = time.monotonic()
        with pytest.raises(kron.RuntimeUnreachableError) as info:
            call(beat)
        took = time.monotonic() - began
        assert isinstance(info.value, kron.KronError), what
        assert isinstance(info.value, RuntimeError), what
        assert "runtime" in str(info.value).lower(), (what, str(info.value))
        assert took < 30, f"{what} took {took:.1f}s to fail"

    # nothing was done, and the reads still work
    hist = kron.history(beat, limit=100_000)
    assert not {"TIMER_PAUSED", "TIMER_REMOVED"} & set(kinds(hist)), kinds(hist)
    assert not [e for e in hist if e["kind"] == "RUN_DUE" and e["manual"]]
    assert kron.status(beat)["state"] in ("scheduled", "running")  # type: ignore[index]
    n = len(ledger_lines(tmp_path, timer=beat))
    wait_until(lambda: len(ledger_lines(tmp_path, timer=beat)) >= n + 2, message="the owner runs on")
    assert kron.runtime_info()["role"] == "standby"


@pytest.mark.slow
def test_an_admin_call_the_owner_receives_but_does_not_answer_says_it_may_be_carried_out(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    """A stopped owner (SIGSTOP) has the request but answers nothing: the standby gives up after
    its timeout with RuntimeUnreachableError saying the request may still be carried out, and it
    is, once, when the owner continues."""
    beat = names("beat")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    kron.start(data_dir, standby=True)
    os.kill(owner.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(kron.RuntimeUnreachableError) as info:
            kron.trigger(beat)
        took = time.monotonic() - began
    finally:
        os.kill(owner.pid, signal.SIGCONT)
    assert "may have" in str(info.value), str(info.value)
    assert took < 60, f"trigger took {took:.1f}s to give up"

    def manual() -> list[dict[str, Any]]:
        return [e for e in kron.history(beat, limit=100_000) if e["kind"] == "RUN_DUE" and e["manual"]]

    wait_until(manual, message="the delivered trigger carried out")
    hold(1.0)
    assert len(manual()) == 1


# ---------------------------------------------------------------------------
# `kron runtime status`
# ---------------------------------------------------------------------------


def test_cli_runtime_status_lists_the_active_process_and_the_standbys(
    names: Any, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    beat = names("beat")
    timers = {beat: EVERY_200MS}
    owner = Node(procs, tmp_path, data_dir, timers, label="owner")
    owner.ready()
    one = Node(procs, tmp_path, data_dir, timers, label="one", standby=True)
    two = Node(procs, tmp_path, data_dir, timers, label="two", standby=True)
    one.ready()
    two.ready()

    status = status_when(data_dir, lambda s: standby_pids(s) == {one.pid, two.pid}, "both standbys listed")
    assert status["running"] is True
    assert status["pid"] == owner.pid
    for standby in status["standbys"]:
        assert set(standby) >= {"pid", "since", "version"}, standby
        assert standby["version"] == kron.__version__
        assert isinstance(standby["since"], str) and standby["since"], standby
    text = runtime_status(data_dir)
    assert f"pid          {owner.pid}" in text, text
    assert text_standby_pids(data_dir) == {one.pid, two.pid}, text
    # the same list from inside the owner
    assert {s["pid"] for s in owner.value("info")["standbys"]} == {one.pid, two.pid}

    # a dead standby drops out of the list
    two.kill()
    wait_until(lambda: standby_pids(runtime_status_json(data_dir)) == {one.pid}, message="two gone")
    assert text_standby_pids(data_dir) == {one.pid}

    # the owner dies: the last standby is the active process, and no standby is left
    killed = owner.kill()
    wait_until(lambda: first_line_after(tmp_path, killed, pid=one.pid), timeout=TAKEOVER_WAIT)
    after = status_when(data_dir, lambda s: s.get("pid") == one.pid, "one listed as the active process")
    assert after["running"] is True
    assert standby_pids(after) == set()
    assert text_standby_pids(data_dir) == set()
    assert f"pid          {one.pid}" in runtime_status(data_dir)
