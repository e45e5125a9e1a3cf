"""Processes on one data directory for the standby tests: ``Node`` runs a child that registers
timers, starts Kron (active or standby) and answers requests from the test through files; every
callback appends a line to a ledger shared by all the nodes of a test."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from conftest import Children, read_json, read_lines

#: The issue asks for a take-over within 1 s; CI machines are loaded, so the tests only check
#: that it is not wildly off. The benchmark measures the real distribution.
TAKEOVER_LIMIT = 5.0
#: How long a test waits for a take-over before failing.
TAKEOVER_WAIT = 20.0
EVERY_200MS = {"every": "200ms"}
HOURLY = {"every": "1h"}


# ---------------------------------------------------------------------------
# a process on the directory, driven through files
# ---------------------------------------------------------------------------

# argv: data_dir, ledger, out (a path prefix), spec (JSON: {"timers": {name: schedule() kwargs},
# "block": [names whose first attempt blocks for 60 s], "standby": bool}).
# Writes OUT.ready after start(), OUT.active when it sees itself become active, and answers
# requests: the test writes OUT.req = [k, op, arg], the node writes OUT.resp<k> = {"ok", ...}.
# Every callback appends one line (timer, pid, run id, attempt, idempotency key, time) to the
# ledger. All callbacks are the same function (same qualified name), so two nodes with the same
# timers register the same definitions.
NODE = """
import logging
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("kron").setLevel(logging.INFO)

data_dir, ledger, out, spec_json = sys.argv[1:5]
spec = json.loads(spec_json)
blocking = set(spec.get("block", ()))

def make_job(timer):
    def job(ctx):
        append(ledger, {"timer": timer, "pid": os.getpid(), "run_id": ctx["run_id"],
                        "attempt": ctx["attempt"], "key": ctx["idempotency_key"], "t": time.time()})
        if timer in blocking and ctx["attempt"] == 1:
            time.sleep(60)
    return job

for timer, kwargs in spec["timers"].items():
    kron.schedule(timer, make_job(timer), **kwargs)

t0 = time.time()
kron.start(data_dir, standby=spec.get("standby", False))
dump(out + ".ready", {"pid": os.getpid(), "t_before": t0, "t_after": time.time(),
                      "info": kron.runtime_info()})

def snapshot():
    return {"info": kron.runtime_info(), "list": kron.list(),
            "status": {t: kron.status(t) for t in spec["timers"]},
            "history": {t: history_of(t) for t in spec["timers"]}}

def call(op, arg):
    if op == "snapshot":
        return snapshot()
    if op == "info":
        return kron.runtime_info()
    if op == "history":
        return history_of(arg)
    if op == "status":
        return kron.status(arg)
    if op == "shutdown":
        kron.shutdown(timeout=5)
        return kron.runtime_info()
    return getattr(kron, op)(arg)

active_seen = False
handled = 0
while True:
    if not active_seen:
        info = kron.runtime_info()
        if info["role"] == "active":
            active_seen = True
            dump(out + ".active", {"t": time.time(), "info": info})
    try:
        with open(out + ".req") as f:
            k, op, arg = json.load(f)
    except (OSError, ValueError):
        k = handled
    if k > handled:
        handled = k
        try:
            reply = {"ok": True, "value": call(op, arg)}
        except Exception as e:
            reply = {"ok": False, "type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
                     "error": str(e)}
        dump(out + ".resp" + str(k), reply)
    time.sleep(0.02)
"""


class Node:
    """A child process running NODE on the data directory."""

    def __init__(
        self,
        children: Children,
        tmp_path: Path,
        data_dir: str,
        timers: dict[str, dict[str, Any]],
        *,
        label: str,
        standby: bool = False,
        block: tuple[str, ...] = (),
    ) -> None:
        self.children = children
        self.ledger = tmp_path / "ledger.jsonl"
        self.out = str(tmp_path / label)
        spec = {"timers": timers, "standby": standby, "block": list(block)}
        self.proc = children.spawn(NODE, data_dir, self.ledger, self.out, json.dumps(spec))
        self.pid = self.proc.pid
        self._k = 0

    def ready(self) -> dict[str, Any]:
        """What the node wrote once ``start()`` returned (waits for it)."""
        path = Path(self.out + ".ready")
        self.children.wait_for_file(self.proc, path, timeout=30)
        ready: dict[str, Any] = read_json(path)
        return ready

    def call(self, op: str, arg: Any = None, timeout: float = 30) -> dict[str, Any]:
        """Runs ``op`` in the node; returns ``{"ok": True, "value": ...}`` or the exception's
        ``type``, ``mro`` and ``error``."""
        self._k += 1
        req = Path(self.out + ".req")
        tmp = Path(self.out + ".req.tmp")
        tmp.write_text(json.dumps([self._k, op, arg]))
        os.replace(tmp, req)
        resp = Path(f"{self.out}.resp{self._k}")
        self.children.wait_for_file(self.proc, resp, timeout=timeout)
        reply: dict[str, Any] = read_json(resp)
        return reply

    def value(self, op: str, arg: Any = None) -> Any:
        reply = self.call(op, arg)
        assert reply["ok"], f"{op}({arg!r}) in pid {self.pid} failed: {reply}"
        return reply["value"]

    def active(self) -> dict[str, Any] | None:
        """What the node wrote when it saw itself become active, if it has."""
        path = Path(self.out + ".active")
        if not path.exists():
            return None
        active: dict[str, Any] = read_json(path)
        return active

    def stderr(self) -> str:
        return self.children.output(self.proc)[1]

    def kill(self) -> float:
        """SIGKILL; returns the wall-clock time just before the signal."""
        t = time.time()
        self.children.kill(self.proc)
        return t


def ledger_lines(tmp_path: Path, **match: Any) -> list[dict[str, Any]]:
    lines = read_lines(tmp_path / "ledger.jsonl")
    return [ln for ln in lines if all(ln[k] == v for k, v in match.items())]


def first_line_after(tmp_path: Path, t: float, **match: Any) -> dict[str, Any] | None:
    return next((ln for ln in ledger_lines(tmp_path, **match) if ln["t"] > t), None)


def kinds(hist: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in hist]


def same_dir(a: str | None, b: str) -> bool:
    return a is not None and os.path.realpath(a) == os.path.realpath(b)
