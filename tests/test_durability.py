"""Durability: kill -9 at various moments, re-registration semantics, orphans, catch-up.

Most scenarios run the scheduler in child processes that are SIGKILLed, then start again on
the same data directory (in another child running the very same script, so that the timer
definitions are identical, or in the test process).
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import (
    Children,
    Recorder,
    count,
    events,
    hold,
    kinds_of,
    parse_dt,
    read_json,
    read_lines,
    unique_name,
    wait_until,
)

UTC = timezone.utc
OUTCOMES = {"RUN_SUCCEEDED", "RUN_FAILED", "RUN_INTERRUPTED"}

# A generic child: registers the timers named in argv (comma separated) with the schedule()
# keyword arguments from the options, starts on the data dir, writes "<out>.start.json" (status
# right after start), then holds (to be killed), waits, or sleeps, and dumps status + history
# of every timer to <out>.
JOB_SCRIPT = """
data_dir, names_csv, ledger, out, opts_json = sys.argv[1:6]
opts = json.loads(opts_json)
names = names_csv.split(",")

def make_job(timer):
    def job(ctx):
        first_ever = not os.path.exists(ledger)
        append(ledger, {"timer": timer, "attempt": ctx["attempt"], "run_id": ctx["run_id"],
                        "key": ctx["idempotency_key"], "scheduled_at": ctx["scheduled_at"],
                        "pid": os.getpid(), "t": time.time()})
        if opts.get("block_attempt1") and ctx["attempt"] == 1:
            time.sleep(60)
        if opts.get("block_first_ever") and first_ever:
            time.sleep(60)
        if opts.get("job_sleep"):
            time.sleep(opts["job_sleep"])
    job.__name__ = job.__qualname__ = "job_" + timer.replace("-", "_").replace(".", "_").replace(":", "_")
    return job

for n in names:
    kron.schedule(n, make_job(n), **opts["kwargs"])
t_before = time.time()
kron.start(data_dir)
dump(out + ".start.json", {"pid": os.getpid(), "t_before_start": t_before, "t_after_start": time.time(),
                           "status": {n: kron.status(n) for n in names}})

then = opts.get("then", "hold")
if then == "hold":
    time.sleep(120)
elif then == "wait_done":
    wait_for(lambda: all(kron.status(n)["state"] in ("completed", "dead") for n in names), timeout=30)
    time.sleep(opts.get("settle", 0))
elif then == "sleep":
    time.sleep(opts["sleep"])
dump(out, {"pid": os.getpid(), "t_before_start": t_before,
           "status": {n: kron.status(n) for n in names},
           "history": {n: history_of(n) for n in names}})
if opts.get("shutdown", True):
    kron.shutdown(timeout=5)
finish()
"""


class Job:
    """One run of JOB_SCRIPT."""

    def __init__(
        self, children: Children, tmp_path: Path, data_dir: str, names: list[str], label: str, **opts: Any
    ) -> None:
        self.children = children
        self.ledger = tmp_path / "ledger.jsonl"
        self.out = tmp_path / f"{label}.json"
        self.start_file = Path(str(self.out) + ".start.json")
        self.proc = children.spawn(
            JOB_SCRIPT, data_dir, ",".join(names), self.ledger, self.out, json.dumps(opts)
        )

    def wait_started(self) -> dict[str, Any]:
        self.children.wait_for_file(self.proc, self.start_file, timeout=30)
        return read_json(self.start_file)

    def kill(self) -> None:
        self.children.kill(self.proc)

    def result(self, timeout: float = 60) -> dict[str, Any]:
        self.children.wait(self.proc, timeout=timeout)
        return read_json(self.out)


def kinds(hist: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in hist]


# ---------------------------------------------------------------------------
# kill -9
# ---------------------------------------------------------------------------


def test_pending_at_survives_kill9_and_fires_once_at_original_time(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    first = Job(children, tmp_path, data_dir, [name], "first", kwargs={"at": at.isoformat()})
    st = first.wait_started()["status"][name]
    assert parse_dt(st["next_run_at"]) == at
    hold(0.3)
    first.kill()

    ledger = tmp_path / "ledger.jsonl"

    def job(ctx: dict[str, Any]) -> None:
        with open(ledger, "a") as f:
            f.write(json.dumps({"t": time.time(), "attempt": ctx["attempt"], "pid": "parent"}) + "\n")

    kron.schedule(name, job, at=at.isoformat())
    kron.start(data_dir)
    if datetime.now(UTC) >= at:
        pytest.fail("the machine was too slow: restart happened after the `at` instant")
    st = kron.status(name)
    assert st["next_run_at"] == at, "the pending `at` must keep its original time"
    assert st["state"] == "scheduled"
    wait_until(lambda: count(name, "RUN_SUCCEEDED") >= 1, timeout=20)
    hold(1.0)
    lines = read_lines(ledger)
    assert len(lines) == 1, lines
    assert lines[0]["pid"] == "parent"
    assert lines[0]["t"] >= at.timestamp() - 0.05, "fired before its time"
    assert count(name, "RUN_SUCCEEDED") == 1
    assert count(name, "RUN_STARTED") == 1
    assert kron.status(name)["state"] == "completed"


def test_kill9_during_running_callback_gives_interrupted_then_attempt_2(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    opts = {"kwargs": {"after": "100ms", "max_attempts": 3}, "block_attempt1": True}
    first = Job(children, tmp_path, data_dir, [name], "first", then="hold", **opts)
    ledger = tmp_path / "ledger.jsonl"
    wait_until(lambda: len(read_lines(ledger)) >= 1, timeout=20)  # the callback is running
    hold(0.2)
    first.kill()

    second = Job(children, tmp_path, data_dir, [name], "second", then="wait_done", settle=0.5, **opts)
    res = second.result()
    hist = res["history"][name]
    k = kinds(hist)
    started = [e for e in hist if e["kind"] == "RUN_STARTED"]
    assert [e["attempt"] for e in started] == [1, 2], k
    interrupted = [e for e in hist if e["kind"] == "RUN_INTERRUPTED"]
    assert len(interrupted) == 1, k
    assert interrupted[0]["run_id"] == started[0]["run_id"]
    assert k.index("RUN_INTERRUPTED") < k.index("RUN_STARTED", k.index("RUN_STARTED") + 1)
    ok = [e for e in hist if e["kind"] == "RUN_SUCCEEDED"]
    assert [e["attempt"] for e in ok] == [2]
    assert res["status"][name]["state"] == "completed"

    lines = read_lines(ledger)
    assert [ln["attempt"] for ln in lines] == [1, 2]
    assert lines[0]["pid"] != lines[1]["pid"]
    assert lines[0]["key"] == lines[1]["key"], "the idempotency key is stable across the retry"


def test_kill9_during_last_attempt_does_not_exceed_budget(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    opts = {"kwargs": {"after": "100ms", "max_attempts": 1}, "block_attempt1": True}
    first = Job(children, tmp_path, data_dir, [name], "first", then="hold", **opts)
    ledger = tmp_path / "ledger.jsonl"
    wait_until(lambda: len(read_lines(ledger)) >= 1, timeout=20)
    hold(0.2)
    first.kill()
    second = Job(children, tmp_path, data_dir, [name], "second", then="sleep", sleep=2.0, **opts)
    res = second.result()
    hist = res["history"][name]
    assert "RUN_INTERRUPTED" in kinds(hist)
    assert [e["attempt"] for e in hist if e["kind"] == "RUN_STARTED"] == [1]
    assert len(read_lines(ledger)) == 1
    assert res["status"][name]["state"] == "dead"


def test_pending_after_keeps_original_due_time_across_kill9(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    opts = {"kwargs": {"after": "1h"}}
    first = Job(children, tmp_path, data_dir, [name], "first", then="hold", **opts)
    due = first.wait_started()["status"][name]["next_run_at"]
    hold(1.0)
    first.kill()
    second = Job(children, tmp_path, data_dir, [name], "second", then="sleep", sleep=0.1, **opts)
    res = second.result()
    assert res["status"][name]["next_run_at"] == due
    assert "TIMER_UPDATED" not in kinds(res["history"][name])


def test_kill9_at_random_moments_keeps_data_consistent(
    names: Any, data_dir: str, tmp_path: Path, children: Children
) -> None:
    fast, slow = names("fast"), names("slow")
    opts: dict[str, Any] = {"kwargs": {"every": "100ms", "overlap": "allow"}, "job_sleep": 0.15}
    rnd = random.Random(20240607)
    for i in range(6):
        job = Job(children, tmp_path, data_dir, [fast, slow], f"round{i}", then="hold", **opts)
        if i % 2 == 0:
            job.wait_started()  # each restart after a kill -9 opens the data
            hold(rnd.uniform(0.1, 0.8))
        else:
            hold(rnd.uniform(0.05, 1.0))  # possibly while importing or starting
        job.kill()
    final = Job(children, tmp_path, data_dir, [fast, slow], "final", then="sleep", sleep=1.5, **opts)
    res = final.result()
    t_final = res["t_before_start"]
    for timer in (fast, slow):
        hist = res["history"][timer]
        seqs = [e["seq"] for e in hist]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert set(kinds(hist)) <= {
            "TIMER_CREATED",
            "RUN_DUE",
            "RUN_STARTED",
            *OUTCOMES,
            "RUN_RETRYING",
            "RUN_DEAD",
            "RUN_MISSED",
        }
        outcomes = {(e["run_id"], e["attempt"]) for e in hist if e["kind"] in OUTCOMES}
        for e in hist:
            if e["kind"] == "RUN_STARTED" and parse_dt(e["ts"]).timestamp() < t_final:
                assert (e["run_id"], e["attempt"]) in outcomes, f"run without outcome after restart: {e}"
        assert kinds(hist).count("TIMER_CREATED") == 1
        assert "RUN_SUCCEEDED" in kinds(hist)


def test_kill9_interrupts_recurring_run_which_is_retried(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    opts = {"kwargs": {"every": "300ms", "overlap": "skip", "max_attempts": 2}, "block_first_ever": True}
    first = Job(children, tmp_path, data_dir, [name], "first", then="hold", **opts)
    ledger = tmp_path / "ledger.jsonl"
    wait_until(lambda: len(read_lines(ledger)) >= 1, timeout=20)
    hold(0.2)
    first.kill()
    blocked = read_lines(ledger)[0]
    # only the very first call blocks; the interrupted run is retried as attempt 2
    second = Job(children, tmp_path, data_dir, [name], "second", then="sleep", sleep=3.0, **opts)
    res = second.result()
    hist = res["history"][name]
    interrupted = [e for e in hist if e["kind"] == "RUN_INTERRUPTED"]
    assert [e["run_id"] for e in interrupted][:1] == [blocked["run_id"]], kinds(hist)
    retried = [e for e in hist if e["run_id"] == blocked["run_id"] and e["kind"] == "RUN_STARTED"]
    assert [e["attempt"] for e in retried] == [1, 2]
    ok = [e for e in hist if e["run_id"] == blocked["run_id"] and e["kind"] == "RUN_SUCCEEDED"]
    assert [e["attempt"] for e in ok] == [2]


# ---------------------------------------------------------------------------
# re-registration
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["shutdown", "kill"])
def test_same_definition_keeps_every_24h_next_run_at(
    name: str, data_dir: str, tmp_path: Path, children: Children, how: str
) -> None:
    opts = {"kwargs": {"every": "24h"}}
    if how == "shutdown":
        res1 = Job(children, tmp_path, data_dir, [name], "first", then="sleep", sleep=0.2, **opts).result()
        next1 = res1["status"][name]["next_run_at"]
    else:
        first = Job(children, tmp_path, data_dir, [name], "first", then="hold", **opts)
        next1 = first.wait_started()["status"][name]["next_run_at"]
        hold(0.5)
        first.kill()
    assert next1 is not None
    hold(1.1)  # a recomputed next_run_at would now differ by more than a second
    res2 = Job(children, tmp_path, data_dir, [name], "second", then="sleep", sleep=0.1, **opts).result()
    assert res2["status"][name]["next_run_at"] == next1
    k = kinds(res2["history"][name])
    assert k.count("TIMER_CREATED") == 1
    assert "TIMER_UPDATED" not in k
    assert "RUN_STARTED" not in k


def test_changed_definition_writes_timer_updated(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    res1 = Job(
        children, tmp_path, data_dir, [name], "first", then="sleep", sleep=0.1, kwargs={"every": "24h"}
    ).result()
    next1 = parse_dt(res1["status"][name]["next_run_at"])
    res2 = Job(
        children, tmp_path, data_dir, [name], "second", then="sleep", sleep=0.1, kwargs={"every": "12h"}
    ).result()
    k = kinds(res2["history"][name])
    assert k.count("TIMER_UPDATED") == 1, k
    assert k.count("TIMER_CREATED") == 1, k
    next2 = parse_dt(res2["status"][name]["next_run_at"])
    t2 = res2["t_before_start"]
    assert next2 < next1
    assert abs(next2.timestamp() - (t2 + 12 * 3600)) < 60, (
        "next run must be recomputed from the new definition"
    )
    assert "12h" in res2["status"][name]["schedule"]


def test_changed_definition_in_process_restart(name: str, data_dir: str, recorder: Recorder) -> None:
    cb = recorder.callback(name)
    kron.schedule(name, cb, cron="0 8 * * *", timezone="Europe/Berlin")
    kron.start(data_dir)
    kron.shutdown(timeout=5)
    kron.schedule(name, cb, cron="0 9 * * *", timezone="Europe/Berlin")
    kron.start(data_dir)
    k = kinds_of(name)
    assert k.count("TIMER_UPDATED") == 1
    st = kron.status(name)
    assert st["schedule"] == "cron 0 9 * * * (Europe/Berlin)"
    from zoneinfo import ZoneInfo

    assert st["next_run_at"].astimezone(ZoneInfo("Europe/Berlin")).hour == 9


@pytest.mark.parametrize(
    ("kind", "how"),
    [("after", "kill"), ("at-past", "shutdown"), ("at-past", "kill")],
)
def test_completed_one_shot_does_not_run_again(
    name: str, data_dir: str, tmp_path: Path, children: Children, kind: str, how: str
) -> None:
    if kind == "after":
        kwargs: dict[str, Any] = {"after": "200ms"}
    else:
        kwargs = {"at": (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()}
    ledger = tmp_path / "ledger.jsonl"
    if how == "shutdown":
        res1 = Job(children, tmp_path, data_dir, [name], "first", then="wait_done", kwargs=kwargs).result()
        assert res1["status"][name]["state"] == "completed"
    else:
        first = Job(children, tmp_path, data_dir, [name], "first", then="hold", kwargs=kwargs)
        first.wait_started()
        wait_until(lambda: len(read_lines(ledger)) == 1, timeout=20)
        hold(1.0)  # let the outcome be written
        first.kill()
    assert len(read_lines(ledger)) == 1
    res2 = Job(
        children, tmp_path, data_dir, [name], "second", then="sleep", sleep=1.5, kwargs=kwargs
    ).result()
    assert len(read_lines(ledger)) == 1, read_lines(ledger)
    k = kinds(res2["history"][name])
    assert k.count("RUN_SUCCEEDED") == 1
    assert k.count("RUN_STARTED") == 1
    assert res2["status"][name]["state"] == "completed"


def test_changed_definition_reschedules_a_completed_one_shot(
    name: str, data_dir: str, recorder: Recorder
) -> None:
    cb = recorder.callback(name)
    kron.schedule(name, cb, at=datetime.now(UTC) - timedelta(hours=1))
    kron.start(data_dir)
    wait_until(lambda: kron.status(name)["state"] == "completed")
    new_at = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0) + timedelta(seconds=1)
    kron.schedule(name, cb, at=new_at)
    assert "TIMER_UPDATED" in kinds_of(name)
    st = kron.status(name)
    assert st["state"] == "scheduled"
    assert st["next_run_at"] == new_at
    wait_until(lambda: recorder.finished(name) == 2)
    assert recorder.calls_of(name)[1]["start"] >= new_at.timestamp() - 0.05
    wait_until(lambda: kron.status(name)["state"] == "completed")


def test_pause_survives_restart(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 1)
    kron.pause(name)
    kron.shutdown(timeout=5)
    n = recorder.n(name)
    kron.start(data_dir)
    assert kron.status(name)["state"] == "paused"
    hold(1.0)
    assert recorder.n(name) == n
    kron.resume(name)
    wait_until(lambda: recorder.n(name) > n)


# ---------------------------------------------------------------------------
# orphans
# ---------------------------------------------------------------------------


def test_orphan_after_restart_without_registration_then_revival(
    names: Any, data_dir: str, tmp_path: Path, children: Children, recorder: Recorder
) -> None:
    a, b = names("a"), names("b")
    Job(
        children, tmp_path, data_dir, [a, b], "first", then="sleep", sleep=0.8, kwargs={"every": "200ms"}
    ).result()
    ran_before = {t: count_lines(tmp_path / "ledger.jsonl", t) for t in (a, b)}
    assert all(v >= 1 for v in ran_before.values()), ran_before

    kron.start(data_dir)  # neither a nor b is registered in this process
    for t in (a, b):
        st = kron.status(t)
        assert st is not None, "an orphan is still listed"
        assert st["state"] == "orphaned"
        assert "TIMER_ORPHANED" in kinds_of(t)
    listed = {x["id"] for x in kron.list()}
    assert {kron.status(a)["id"], kron.status(b)["id"]} <= listed
    started = {t: count(t, "RUN_STARTED") for t in (a, b)}
    hold(1.0)
    assert {t: count(t, "RUN_STARTED") for t in (a, b)} == started, "an orphan ran"

    # revival: a later schedule() with the same name reconnects it
    kron.schedule(b, recorder.callback(b), every="200ms")
    wait_until(lambda: recorder.n(b) >= 2)
    assert kron.status(b)["state"] != "orphaned"
    assert count(b, "RUN_STARTED") > started[b]
    assert kron.status(a)["state"] == "orphaned"
    assert count(a, "RUN_STARTED") == started[a]


def test_orphan_revived_on_next_start(
    names: Any, data_dir: str, tmp_path: Path, children: Children, recorder: Recorder
) -> None:
    a = names("a")
    Job(
        children, tmp_path, data_dir, [a], "first", then="sleep", sleep=0.1, kwargs={"every": "200ms"}
    ).result()
    kron.start(data_dir)
    assert kron.status(a)["state"] == "orphaned"
    kron.shutdown(timeout=5)
    kron.schedule(a, recorder.callback(a), every="200ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(a) >= 1)
    assert kron.status(a)["state"] != "orphaned"


def test_orphan_is_never_run_even_when_triggered(
    names: Any, data_dir: str, tmp_path: Path, children: Children
) -> None:
    a = names("a")
    Job(
        children,
        tmp_path,
        data_dir,
        [a],
        "first",
        then="sleep",
        sleep=0.1,
        kwargs={"at": "2099-01-01T00:00:00Z"},
    ).result()
    kron.start(data_dir)
    assert kron.status(a)["state"] == "orphaned"
    try:
        kron.trigger(a)
    except kron.KronError:
        pass  # refusing is fine
    hold(1.0)
    assert count(a, "RUN_STARTED") == 0
    assert kron.status(a)["state"] == "orphaned"


def test_pause_of_orphan_is_not_silently_lost(
    names: Any, data_dir: str, tmp_path: Path, children: Children, recorder: Recorder
) -> None:
    """pause() on an orphan either refuses (KronError) or is recorded (TIMER_PAUSED) and holds
    after revival; it must not return successfully and do nothing."""
    a = names("a")
    Job(
        children, tmp_path, data_dir, [a], "first", then="sleep", sleep=0.1, kwargs={"every": "200ms"}
    ).result()
    kron.start(data_dir)
    assert kron.status(a)["state"] == "orphaned"
    try:
        kron.pause(a)
    except kron.KronError:
        return
    assert "TIMER_PAUSED" in kinds_of(a), "pause() returned but wrote no TIMER_PAUSED"
    kron.schedule(a, recorder.callback(a), every="200ms")
    hold(1.0)
    assert recorder.n(a) == 0, "a timer paused while orphaned ran after revival"
    assert kron.status(a)["state"] == "paused"


def count_lines(ledger: Path, timer: str) -> int:
    return sum(1 for ln in read_lines(ledger) if ln["timer"] == timer)


# ---------------------------------------------------------------------------
# catch-up of occurrences missed while no runtime was up
# ---------------------------------------------------------------------------

DOWNTIME = 3.6


@pytest.fixture(scope="module")
def catchup_scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of the scenario for the three policies: up, down for DOWNTIME s, up again."""
    data = str(tmp_path_factory.mktemp("catchup") / "data")
    rec = Recorder()
    timers = {
        f"{kind}-{m}": unique_name(f"catchup-{kind}-{m}")
        for kind in ("cron", "every")
        for m in ("once", "skip", "all")
    }
    for key, timer in timers.items():
        kind, mode = key.split("-")
        if kind == "cron":
            kron.schedule(timer, rec.callback(timer), cron="* * * * * *", catchup=mode)
        else:
            kron.schedule(timer, rec.callback(timer), every="1s", catchup=mode)
    try:
        kron.start(data)
        wait_until(lambda: all(count(t, "RUN_SUCCEEDED") >= 1 for t in timers.values()))
        kron.shutdown(timeout=5)
        t_down = time.time()
        time.sleep(DOWNTIME)
        t_up = time.time()
        kron.start(data)
        time.sleep(2.5)
        result = {
            mode: {
                "calls": rec.calls_of(timer),
                "events": events(timer),
            }
            for mode, timer in timers.items()
        }
        for timer in timers.values():
            kron.remove(timer)
    finally:
        rec.close()
        kron.shutdown(timeout=5)
    return {"t_down": t_down, "t_up": t_up, **result}


def _after_restart(scn: dict[str, Any], mode: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    calls = [c for c in scn[mode]["calls"] if c["start"] >= scn["t_up"]]
    evs = [e for e in scn[mode]["events"] if e["ts"].timestamp() >= scn["t_up"] - 0.01]
    return calls, evs


def _scheduled(c: dict[str, Any]) -> float:
    return float(c["ctx"]["scheduled_at"].timestamp())


def _no_occurrence_ran_twice(scn: dict[str, Any], mode: str) -> None:
    keys = [c["ctx"]["idempotency_key"] for c in scn[mode]["calls"] if c["ctx"]["attempt"] == 1]
    assert len(keys) == len(set(keys)), keys


CATCHUP_KINDS = pytest.mark.parametrize("kind", ["cron", "every"])


@CATCHUP_KINDS
def test_catchup_once(catchup_scenario: dict[str, Any], kind: str) -> None:
    scn = catchup_scenario
    mode = f"{kind}-once"
    calls, evs = _after_restart(scn, mode)
    missed_runs = [c for c in calls if _scheduled(c) < scn["t_up"]]
    assert len(missed_runs) <= 1, [c["ctx"]["scheduled_at"] for c in missed_runs]
    coalesced = [e for e in evs if e["kind"] == "RUN_DUE" and (e.get("count") or 1) >= 2]
    assert len(coalesced) == 1, evs
    ok_ids = {e["run_id"] for e in evs if e["kind"] == "RUN_SUCCEEDED"}
    assert coalesced[0]["run_id"] in ok_ids, "the catch-up run must actually run"
    assert all(e["kind"] != "RUN_MISSED" for e in evs)
    # and the regular schedule resumes afterwards
    assert any(_scheduled(c) >= scn["t_up"] for c in calls)
    _no_occurrence_ran_twice(scn, mode)


@CATCHUP_KINDS
def test_catchup_skip(catchup_scenario: dict[str, Any], kind: str) -> None:
    scn = catchup_scenario
    mode = f"{kind}-skip"
    calls, evs = _after_restart(scn, mode)
    missed_runs = [c for c in calls if _scheduled(c) < scn["t_up"]]
    assert missed_runs == [], [c["ctx"]["scheduled_at"] for c in missed_runs]
    missed = [e for e in evs if e["kind"] == "RUN_MISSED"]
    assert missed, evs
    assert sum((e.get("count") or 1) for e in missed) >= 2
    assert any(_scheduled(c) >= scn["t_up"] for c in calls), "the timer goes on with future occurrences"
    _no_occurrence_ran_twice(scn, mode)


@CATCHUP_KINDS
def test_catchup_all(catchup_scenario: dict[str, Any], kind: str) -> None:
    scn = catchup_scenario
    mode = f"{kind}-all"
    calls, evs = _after_restart(scn, mode)
    missed_runs = [c for c in calls if scn["t_down"] - 1 < _scheduled(c) < scn["t_up"]]
    assert len(missed_runs) >= 3, [c["ctx"]["scheduled_at"] for c in calls]
    times = [_scheduled(c) for c in missed_runs]
    assert times == sorted(times), "missed occurrences run in order"
    for a, b in zip(times, times[1:]):
        assert abs((b - a) - 1.0) < 0.01, times
    assert all(e["kind"] != "RUN_MISSED" for e in evs)
    _no_occurrence_ran_twice(scn, mode)
