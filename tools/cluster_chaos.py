#!/usr/bin/env python3
"""A seeded randomized run against a three-node cluster, then a checker (docs/cluster.md, item 8
of the failure matrix).

While faults happen, clients create one-shot timers and workers claim and complete their runs,
each keeping its own ledger; the fault loop kills (SIGKILL), restarts and partitions nodes (drop
or blackhole on the Raft proxies), one node at a time so that a majority remains. Some workers
sit on a claim past its lease before completing it, so stale completions are sent for real.
Then the faults stop, every node comes back, the workers finish, and the checker verifies from
every node's history and the ledgers:

* the nodes agree (same timers, same history);
* no committed write lost: every timer a client was told was created is on every node;
* no occurrence claimed twice for one attempt (histories and ledgers);
* no completion accepted with a stale fencing token;
* every run reaches an outcome once the faults stop.

The same seed makes the same choices (timing still varies). Exit status: 0 when every check
holds, 1 with the violations listed, 3 when the build cannot form the cluster (not a verdict).

    python tools/cluster_chaos.py --seed 7 --duration 20          # the CI run (about a minute)
    python tools/cluster_chaos.py --seed 1 --duration 600         # a long local run
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cluster"))

from harness import BLACKHOLE, DROP, TOKEN, Cluster, ClusterNode, NotReady, http, wait
from ledger import LedgerWorker

TASK = "chaos"
LEASE_SECONDS = 2
#: Outcomes that end a run.
TERMINAL = frozenset({"RUN_SUCCEEDED", "RUN_DEAD"})
#: Outcomes a completion records.
REPORTED = frozenset({"RUN_SUCCEEDED", "RUN_FAILED", "RUN_RETRYING", "RUN_DEAD"})


class Run:
    """One chaos run: the cluster, the clients, the workers and the fault loop."""

    def __init__(self, root: Path, seed: int, duration: float, workers: int, log: Any) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.duration = duration
        self.cluster = Cluster(root, 3)
        self.log = log
        self.stop_faults = threading.Event()
        self.stop_writes = threading.Event()
        self.stop_work = threading.Event()
        self.acknowledged: list[str] = []
        self.uncertain: list[str] = []
        self.refused: list[tuple[str, Any]] = []
        self.workers = [
            LedgerWorker(f"w{i}", [], [TASK], lease_seconds=LEASE_SECONDS, timeout=3.0)
            for i in range(workers)
        ]
        self.faults: list[str] = []
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.log, flush=True)

    # -- actors ----------------------------------------------------------------------------------

    def writer(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        urls = [n.url for n in self.cluster.nodes]
        i = 0
        while not self.stop_writes.is_set():
            name = f"c{index}-{i}"
            i += 1
            body = {"name": name, "task": TASK, "after": f"{rng.randint(1, 3)}s", "max_attempts": 50,
                    "payload": {"i": i}}
            code, answer = self.send_write(urls, body)
            with self.lock:
                if 200 <= code < 300:
                    self.acknowledged.append(name)
                elif code == 0 or code >= 500 or (code == 409 and _not_leader(answer)):
                    self.uncertain.append(name)
                else:
                    self.refused.append((name, answer))
            time.sleep(rng.uniform(0.02, 0.2))

    def send_write(self, urls: list[str], body: dict[str, Any]) -> tuple[int, Any]:
        """POST /v1/timers to each node in turn until one answers other than not_leader."""
        last: tuple[int, Any] = (0, None)
        for url in urls:
            code, answer = http(url, "POST", "/v1/timers", body, token=TOKEN, timeout=3.0)
            if code == 409 and _not_leader(answer):
                last = (code, answer)
                continue
            if code == 0:
                last = (code, answer)
                continue
            return code, answer
        return last

    def work(self, worker: LedgerWorker, index: int) -> None:
        rng = random.Random(self.seed * 2000 + index)
        while not self.stop_work.is_set():
            for claim in worker.poll(max_runs=8, wait_ms=300):
                if self.stop_work.is_set():
                    break
                roll = rng.random()
                if not self.stop_faults.is_set() and roll < 0.08:
                    # Sit on it past the lease: the completion that follows is stale.
                    self.stop_work.wait(LEASE_SECONDS + 1.5)
                    worker.complete(claim)
                elif roll < 0.18:
                    worker.complete(claim, outcome="fail")
                else:
                    worker.complete(claim)

    def fault_loop(self) -> None:
        c = self.cluster
        deadline = time.monotonic() + self.duration
        down: Optional[ClusterNode] = None
        cut: Optional[ClusterNode] = None
        while time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0.5, 2.5))
            if down is not None:
                self.fault(f"restart {down.name}")
                down.start()
                down = None
                continue
            if cut is not None:
                self.fault(f"heal {cut.name}")
                c.heal()
                cut = None
                continue
            action = self.rng.choice(["kill", "kill-leader", "partition", "blackhole", "none"])
            target = self.rng.choice(c.nodes)
            if action == "kill-leader":
                target = c.leader_node() or target
            if action.startswith("kill"):
                self.fault(f"kill {target.name}")
                target.kill()
                down = target
            elif action in ("partition", "blackhole"):
                self.fault(f"{action} {target.name}")
                c.partition([target], mode=DROP if action == "partition" else BLACKHOLE)
                cut = target
        c.heal()
        for node in c.nodes:
            if not node.alive:
                self.fault(f"restart {node.name}")
                node.start()

    def fault(self, text: str) -> None:
        self.faults.append(text)
        self.say(text)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        c = self.cluster
        c.start()
        urls = [n.url for n in c.nodes]
        for worker in self.workers:
            worker.urls = urls
        self.say(f"cluster up, leader {c.wait_leader().name}; seed {self.seed}, {self.duration}s of faults")
        threads = [threading.Thread(target=self.writer, args=(i,), daemon=True) for i in range(2)]
        threads += [
            threading.Thread(target=self.work, args=(w, i), daemon=True) for i, w in enumerate(self.workers)
        ]
        for t in threads:
            t.start()
        self.fault_loop()
        self.stop_faults.set()
        self.stop_writes.set()
        self.say("faults stopped; waiting for every run to reach an outcome")
        leader = c.wait_leader(timeout=30)
        c.wait_converged(timeout=60)
        try:
            wait(lambda: self.settled(), 120, "every run to reach an outcome", interval=1.0)
        finally:
            self.stop_work.set()
            for t in threads:
                t.join(timeout=30)
        c.wait_converged(timeout=60)
        self.say(f"settled; leader {leader.name}")
        return self.check()

    def names(self) -> list[str]:
        leader = self.cluster.leader_node()
        timers = (leader.timers() if leader else None) or {}
        with self.lock:
            return sorted(set(timers) | set(self.acknowledged))

    def settled(self) -> bool:
        leader = self.cluster.leader_node()
        if leader is None:
            return False
        for name in self.names():
            history = leader.history(name)
            if history is None:
                return False
            if not _runs_finished(history) or not any(e["kind"] in TERMINAL for e in history):
                return False
        return True

    # -- the checker -----------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        violations: list[str] = []
        names = self.names()
        states = {}
        for node in self.cluster.nodes:
            timers = node.timers() or {}
            histories = {name: node.history(name) or [] for name in names}
            states[node.name] = (timers, histories)
        reference_name = self.cluster.nodes[0].name
        ref_timers, ref_histories = states[reference_name]

        for node_name, (timers, histories) in states.items():
            if set(timers) != set(ref_timers):
                violations.append(f"{node_name} and {reference_name} hold different timers")
            for name in names:
                if _projection(histories[name]) != _projection(ref_histories[name]):
                    violations.append(f"{node_name} and {reference_name} disagree on the history of {name}")
            with self.lock:
                lost = [name for name in self.acknowledged if name not in timers]
            if lost:
                violations.append(f"{node_name} lost acknowledged timers: {lost[:10]}")
            for name in names:
                violations += [f"{node_name}: {v}" for v in _check_history(name, histories[name])]

        claims = [claim for w in self.workers for claim in w.claims]
        completions = [done for w in self.workers for done in w.completions]
        twice = [k for k, n in Counter((cl.run_id, cl.attempt) for cl in claims).items() if n > 1]
        if twice:
            violations.append(f"ledgers: runs handed out twice for one attempt: {twice[:10]}")
        ended = set()
        claimed = set()
        for name in names:
            ended |= _ended_by_outcome(ref_histories[name])
            history = ref_histories[name]
            claimed |= {(e["run_id"], e.get("fencing_token")) for e in history if e["kind"] == "RUN_CLAIMED"}
        for cl in claims:
            if (cl.run_id, cl.fencing_token) not in claimed:
                violations.append(f"ledger claim {cl} is not in the committed history")
        accepted = [d for d in completions if d.accepted]
        for done in accepted:
            if (done.run_id, done.fencing_token) not in ended:
                violations.append(f"completion accepted without a current claim (stale token): {done}")
        stale_sent = sum(1 for d in completions if not d.accepted and d.status == 400)
        return {
            "seed": self.seed,
            "duration_s": self.duration,
            "faults": len(self.faults),
            "timers_acknowledged": len(self.acknowledged),
            "timers_uncertain": len(self.uncertain),
            "claims": len(claims),
            "completions_accepted": len(accepted),
            "completions_refused": stale_sent,
            "violations": violations,
        }


def _not_leader(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("error") == "not_leader"


def _projection(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e.get("kind"), e.get("run_id"), e.get("attempt"), e.get("fencing_token")) for e in events]


def _by_run(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e.get("run_id"):
            runs[str(e["run_id"])].append(e)
    return runs


def _runs_finished(events: list[dict[str, Any]]) -> bool:
    return all(any(e["kind"] in TERMINAL for e in run) for run in _by_run(events).values())


def _check_history(name: str, events: list[dict[str, Any]]) -> list[str]:
    """Claims at most once per attempt; a worker's outcome (`RUN_SUCCEEDED`, `RUN_FAILED`) only
    under a live claim (claimed, not expired, not already reported); every run ended."""
    found = []
    for run_id, run in _by_run(events).items():
        attempts = Counter(e.get("attempt") for e in run if e["kind"] == "RUN_CLAIMED")
        twice = [a for a, n in attempts.items() if n > 1]
        if twice:
            found.append(f"{name} run {run_id} claimed twice for attempt(s) {twice}")
        if not any(e["kind"] in TERMINAL for e in run):
            found.append(f"{name} run {run_id} never reached an outcome: {[e['kind'] for e in run]}")
        current: Optional[Any] = None
        for e in run:
            if e["kind"] == "RUN_CLAIMED":
                current = e.get("fencing_token")
            elif e["kind"] == "RUN_LEASE_EXPIRED":
                current = None
            elif e["kind"] in ("RUN_SUCCEEDED", "RUN_FAILED"):
                # A worker's report: only the holder of the live claim may make one.
                token = e.get("fencing_token")
                if current is None or (token is not None and token != current):
                    found.append(f"{name} run {run_id}: {e['kind']} without a live claim (token {token})")
                current = None
    return found


def _ended_by_outcome(events: list[dict[str, Any]]) -> set[tuple[str, Any]]:
    """(run, fencing token) of every claim whose holder's report was recorded."""
    ended = set()
    for run_id, run in _by_run(events).items():
        current: Optional[Any] = None
        for e in run:
            if e["kind"] == "RUN_CLAIMED":
                current = e.get("fencing_token")
            elif e["kind"] == "RUN_LEASE_EXPIRED":
                current = None
            elif e["kind"] in ("RUN_SUCCEEDED", "RUN_FAILED") and current is not None:
                ended.add((run_id, current))
                current = None
    return ended


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of faults")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="keep the nodes' directories and logs here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kron-chaos-") as tmp:
        root = args.dir or Path(tmp)
        run = Run(root, args.seed, args.duration, args.workers, sys.stderr)
        try:
            report = run.run()
        except NotReady as exc:
            print(f"not ready: {exc}", file=sys.stderr)
            return 3
        finally:
            run.stop_faults.set()
            run.stop_writes.set()
            run.stop_work.set()
            run.cluster.close()
    print(json.dumps(report, indent=2))
    return 1 if report["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
