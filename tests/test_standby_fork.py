"""Standby runtimes and fork: a process forked after ``kron.start()`` (``os.fork``,
``multiprocessing`` with the ``fork`` start method, as gunicorn ``--preload`` does) gets
``kron.ForkedProcessError`` naming the fix from every call, and never keeps the directory locked
(nor a standby listed) once its parent is gone. Timers registered before a fork, and started
after it, run in the child: the ``post_fork`` pattern.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Children, hold, read_json, wait_until
from runtime_status import standby_pids, status_when
from standby_node import EVERY_200MS, TAKEOVER_LIMIT, TAKEOVER_WAIT, Node, first_line_after, ledger_lines

# argv: data_dir, ledger, out, name, how ("os.fork" | "multiprocessing"), role ("active" |
# "standby"), then ("probe": call every API in the forked child and record what it raised |
# "linger": the forked child sleeps, its pid in OUT.child).
FORKER = """
import multiprocessing, signal
data_dir, ledger, out, name, how, role, then = sys.argv[1:8]

def job(ctx):
    append(ledger, {"timer": name, "pid": os.getpid(), "run_id": ctx["run_id"], "t": time.time()})

kron.schedule(name, job, every="200ms")
kron.start(data_dir, standby=(role == "standby"))
dump(out + ".ready", {"pid": os.getpid(), "info": kron.runtime_info()})

def probe():
    calls = {
        "schedule": lambda: kron.schedule(name + "-x", lambda: None, every="1h"),
        "start": lambda: kron.start(data_dir),
        "start_standby": lambda: kron.start(data_dir, standby=True),
        "status": lambda: kron.status(name),
        "list": lambda: kron.list(),
        "history": lambda: kron.history(name),
        "pause": lambda: kron.pause(name),
        "resume": lambda: kron.resume(name),
        "trigger": lambda: kron.trigger(name),
        "remove": lambda: kron.remove(name),
        "runtime_info": lambda: kron.runtime_info(),
        "shutdown": lambda: kron.shutdown(),
    }
    results = {}
    for op, fn in calls.items():
        try:
            fn()
            results[op] = {"raised": None}
        except BaseException as e:
            results[op] = {"raised": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                           "error": str(e), "forked": isinstance(e, kron.ForkedProcessError)}
    dump(out + ".probe", {"pid": os.getpid(), "results": results})

def linger():
    with open(out + ".child", "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)

def in_child():
    signal.alarm(60)  # a call that hangs in the child must not hang the test
    probe() if then == "probe" else linger()

if how == "os.fork":
    pid = os.fork()
    if pid == 0:
        try:
            in_child()
        finally:
            os._exit(0)
    if then == "probe":
        os.waitpid(pid, 0)
else:
    proc = multiprocessing.get_context("fork").Process(target=in_child)
    proc.start()
    if then == "probe":
        proc.join(90)

if then == "probe":
    # the parent's runtime is untouched by what the child did
    before = time.time()

    def ran_since(t):
        try:
            with open(ledger) as f:
                lines = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):  # a line being written: look again
            return False
        return any(line["pid"] == os.getpid() and line["t"] > t for line in lines)

    if role == "active":
        wait_for(lambda: ran_since(before), timeout=20)
    dump(out + ".parent", {"info": kron.runtime_info(), "status": kron.status(name), "after": before})
    kron.shutdown(timeout=5)
    finish()
time.sleep(120)
"""

FORK_HOWS = ["os.fork", "multiprocessing"]


@pytest.mark.parametrize("role", ["active", "standby"])
@pytest.mark.parametrize("how", FORK_HOWS)
def test_a_forked_child_gets_forked_process_error_naming_the_fix(
    names: Any, data_dir: str, tmp_path: Path, procs: Children, how: str, role: str
) -> None:
    beat = names("beat")
    if role == "standby":
        owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
        owner.ready()
    out = str(tmp_path / "forker")
    forker = procs.spawn(FORKER, data_dir, tmp_path / "ledger.jsonl", out, beat, how, role, "probe")
    procs.wait(forker, timeout=120)
    assert read_json(Path(out + ".ready"))["info"]["role"] == role

    probe = read_json(Path(out + ".probe"))
    assert probe["pid"] != forker.pid
    results = probe["results"]
    for op, result in results.items():
        assert result["forked"] is True, (op, result)
        assert result["raised"] == "ForkedProcessError", (op, result)
        assert {"KronError", "RuntimeError"} <= set(result["mro"]), (op, result)
        message = result["error"]
        assert "fork" in message.lower(), (op, message)
        assert "kron.start(" in message and "standby=True" in message, (op, message)

    parent = read_json(Path(out + ".parent"))
    assert parent["info"]["role"] == role, parent
    assert parent["status"] is not None
    if role == "active":
        assert [ln for ln in ledger_lines(tmp_path, pid=forker.pid) if ln["t"] > parent["after"]]
    assert not ledger_lines(tmp_path, pid=probe["pid"]), "the forked child ran a timer"


@pytest.mark.parametrize("how", FORK_HOWS)
def test_a_forked_child_of_a_standby_does_not_keep_it_listed_after_it_dies(
    names: Any, data_dir: str, tmp_path: Path, procs: Children, how: str
) -> None:
    beat = names("beat")
    owner = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="owner")
    owner.ready()
    out = str(tmp_path / "forker")
    parent = procs.spawn(FORKER, data_dir, tmp_path / "ledger.jsonl", out, beat, how, "standby", "linger")
    procs.wait_for_file(parent, Path(out + ".child"), timeout=30)
    child_pid = int(Path(out + ".child").read_text())
    try:
        status_when(data_dir, lambda s: parent.pid in standby_pids(s), "the standby listed")
        procs.kill(parent)
        os.kill(child_pid, 0)  # the forked child lives on
        status_when(data_dir, lambda s: parent.pid not in standby_pids(s), "the dead standby gone")
        assert parent.pid not in {s["pid"] for s in owner.value("info")["standbys"]}
        # and the forked child never takes over: the owner goes, nobody waits
        killed = owner.kill()
        hold(1.0)
        assert not [ln for ln in ledger_lines(tmp_path) if ln["t"] > killed]
        os.kill(child_pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)


@pytest.mark.parametrize("how", FORK_HOWS)
def test_a_forked_child_does_not_keep_the_lock_after_its_parent_dies(
    names: Any, data_dir: str, tmp_path: Path, procs: Children, how: str
) -> None:
    beat = names("beat")
    out = str(tmp_path / "forker")
    parent = procs.spawn(FORKER, data_dir, tmp_path / "ledger.jsonl", out, beat, how, "active", "linger")
    procs.wait_for_file(parent, Path(out + ".ready"), timeout=30)
    procs.wait_for_file(parent, Path(out + ".child"), timeout=30)
    child_pid = int(Path(out + ".child").read_text())
    try:
        standby = Node(procs, tmp_path, data_dir, {beat: EVERY_200MS}, label="standby", standby=True)
        info = standby.ready()["info"]
        assert info["role"] == "standby" and info["active_pid"] == parent.pid, info

        killed = time.time()
        procs.kill(parent)
        os.kill(child_pid, 0)  # the forked child lives on
        first = wait_until(
            lambda: first_line_after(tmp_path, killed, pid=standby.pid),
            timeout=TAKEOVER_WAIT,
            message="a take-over while the parent's forked child lives",
        )
        took = first["t"] - killed
        print(f"take-over with a forked child alive ({how}): {1000 * took:.0f} ms")
        assert took < TAKEOVER_LIMIT, f"took {took:.2f}s"
        os.kill(child_pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)


FORK_THEN_START = """
data_dir, ledger, out, name = sys.argv[1:5]

def job(ctx):
    append(ledger, {"timer": name, "pid": os.getpid(), "run_id": ctx["run_id"], "t": time.time()})

# Registered before the fork (gunicorn --preload imports the application in the arbiter), started
# after it, in the child (a post_fork hook): the supported pattern.
kron.schedule(name, job, every="200ms")
pid = os.fork()
if pid == 0:
    try:
        kron.start(data_dir, standby=True)
        info = kron.runtime_info()
        ok = wait_for(lambda: os.path.exists(ledger), timeout=20)
        dump(out, {"pid": os.getpid(), "info": info, "ran": bool(ok)})
        kron.shutdown(timeout=5)
    finally:
        os._exit(0)
os.waitpid(pid, 0)
finish()
"""


def test_timers_registered_before_a_fork_run_in_a_child_that_starts_after_it(
    name: str, data_dir: str, tmp_path: Path, procs: Children
) -> None:
    out = tmp_path / "child.json"
    procs.run(FORK_THEN_START, data_dir, tmp_path / "ledger.jsonl", out, name, timeout=60)
    result = read_json(out)
    assert result["info"]["role"] == "active", result
    assert result["ran"], result
    assert {ln["pid"] for ln in ledger_lines(tmp_path)} == {result["pid"]}
