"""The failure matrix of a three-node cluster (docs/cluster.md), items 1-7: real `kron server`
processes on 127.0.0.2-4, each behind a fault proxy on its Raft port (tests/cluster/harness.py).

Where the build lacks what a row needs (a joined node promoted to voter, Raft connections from
the node's own IP, a compaction knob), the test says so as an expected failure or a skip with
the reason; it never asserts less than the row promises.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from harness import TOKEN, Cluster, ClusterNode, find_kron, wait
from ledger import LedgerWorker

import kron

pytestmark = pytest.mark.slow

#: A new leader within this many seconds of the old one's SIGKILL (the issue's bound).
FAILOVER_BOUND = 5.0
#: Bound on every other wait.
WAIT = 30.0

_clients: list[kron.Client] = []


def make_cluster(tmp_path: Path, env: Optional[dict[str, str]] = None) -> Cluster:
    cluster = Cluster(tmp_path, 3, env=env)
    try:
        cluster.start()
    except BaseException:
        cluster.close()
        raise
    return cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()
        while _clients:
            _clients.pop().close()


def client(*nodes: ClusterNode) -> kron.Client:
    c = kron.Client(",".join(n.url for n in nodes), token=TOKEN, timeout=5.0)
    _clients.append(c)
    return c


def retry(action: Callable[[], Any], timeout: float = WAIT, what: str = "a write") -> Any:
    """Repeats ``action`` until it does not raise (a cluster electing a leader refuses writes
    for a moment); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (kron.KronError, ConnectionError):
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} kept failing for {timeout}s") from None
            time.sleep(0.2)


def projection(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must agree across nodes and survive failures: each event's kind, run and attempt."""
    return [(e.get("kind"), e.get("run_id"), e.get("attempt"), e.get("fencing_token")) for e in events]


def state_of(node: ClusterNode, names: Optional[list[str]] = None) -> Optional[dict[str, Any]]:
    """A node's applied state: its timers and every timer's history (None if it does not
    answer)."""
    timers = node.timers()
    if timers is None:
        return None
    histories = {}
    for name in names or sorted(timers):
        history = node.history(name)
        if history is None:
            return None
        histories[name] = projection(history)
    return {"timers": timers, "histories": histories}


def wait_agree(nodes: list[ClusterNode], timeout: float = WAIT) -> dict[str, Any]:
    """Waits until every node in ``nodes`` has applied the same state (timers and histories);
    answers it."""

    def agreed() -> Optional[dict[str, Any]]:
        states = [state_of(n) for n in nodes]
        if any(s is None for s in states):
            return None
        first = states[0]
        return first if all(s == first for s in states[1:]) else None

    result: dict[str, Any] = wait(agreed, timeout, f"{[n.name for n in nodes]} to agree", interval=0.2)
    return result


def assert_prefix(before: list[tuple[Any, ...]], after: list[tuple[Any, ...]], name: str) -> None:
    assert after[: len(before)] == before, f"history of {name} lost or changed committed events"


def require_distinct_sources(cluster: Cluster) -> None:
    if not cluster.raft_sources_distinct():
        seen = sorted(set().union(*(n.proxy.sources_seen for n in cluster.nodes)))
        pytest.fail(
            "outgoing Raft connections do not come from the node's --raft IP, so a proxy "
            f"cannot tell peers apart (sources seen: {seen})"
        )


# ---------------------------------------------------------------------------------------------
# 1. bootstrap; a write on the leader is readable on every node
# ---------------------------------------------------------------------------------------------


def test_1_bootstrap_write_on_leader_readable_everywhere(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    statuses = cluster.statuses()
    assert sorted(statuses) == ["n1", "n2", "n3"]
    for name, status in statuses.items():
        assert status["leader_id"] == leader.name, (name, status)
        assert sorted(m["node_id"] for m in status["members"] if m["voter"]) == ["n1", "n2", "n3"]
    client(leader).schedule("m1", task="t1", every="1h", payload={"k": [1, 2]})
    for node in cluster.nodes:
        found = wait(lambda node=node: (node.timers() or {}).get("m1"), WAIT, f"m1 on {node.name}")
        assert found["task"] == "t1" and found["payload"] == {"k": [1, 2]}, (node.name, found)


# ---------------------------------------------------------------------------------------------
# 2. a write to a follower answers not_leader; Client, Worker and CLI follow it
# ---------------------------------------------------------------------------------------------


def test_2_write_to_follower_answers_not_leader_and_clients_follow(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    body = {"name": "m2-raw", "task": "t2", "every": "1h"}
    code, answer = follower.http("POST", "/v1/timers", body)
    assert code == 409, answer
    assert answer["error"] == "not_leader"
    assert answer["leader_id"] == leader.name
    assert str(answer["leader_http"]).removeprefix("http://") == leader.http_addr
    assert "m2-raw" not in (leader.timers() or {})

    # The Client given only the follower's address ends up writing on the leader.
    status = client(follower).schedule("m2", task="t2", every="1s", payload={"via": "follower"})
    assert status["task"] == "t2"
    wait(lambda: "m2" in (leader.timers() or {}), WAIT, "m2 on the leader")

    # So does a Worker: its claims and completions are writes.
    worker = kron.Worker(follower.url, token=TOKEN, worker_id="m2-worker", lease_seconds=5)
    seen: list[Any] = []

    @worker.task("t2")
    def t2(payload: Any) -> None:
        seen.append(payload)

    deadline = time.monotonic() + WAIT
    while not seen:
        assert time.monotonic() < deadline, "the worker on a follower ran nothing"
        worker.run_once(timeout=0.5)

    def succeeded() -> bool:
        return any(e["kind"] == "RUN_SUCCEEDED" for e in leader.history("m2") or [])

    wait(succeeded, WAIT, "m2 to succeed on the leader")
    assert seen[0] == {"via": "follower"}


def test_2_cli_against_a_follower_follows_the_leader(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    client(leader).schedule("m2-cli", task="t", every="1h")
    cli = subprocess.run(
        [find_kron(), "--server", follower.url, "--token", TOKEN, "job", "pause", "m2-cli"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr
    wait(lambda: (leader.timers() or {}).get("m2-cli", {}).get("state") == "paused", WAIT, "paused")


# ---------------------------------------------------------------------------------------------
# 3. SIGKILL the leader while workers hold leases
# ---------------------------------------------------------------------------------------------


def test_3_leader_sigkill_with_leases_held(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    names = [f"m3-{i}" for i in range(4)]
    c = client(*cluster.nodes)
    for name in names:
        c.schedule(name, task="t3", after="1s", max_attempts=5)
    holder = LedgerWorker("m3-holder", [n.url for n in cluster.nodes], ["t3"], lease_seconds=3)

    def claimed_all() -> bool:
        holder.poll(max_runs=16)
        return {claim.timer_id for claim in holder.claims} >= set(names)

    wait(claimed_all, WAIT, "the holder to claim every run", interval=0.2)
    held = {claim.timer_id: claim for claim in holder.claims}
    cluster.wait_converged()
    before = {name: projection(leader.history(name) or []) for name in names}
    assert all(any(e[0] == "RUN_CLAIMED" for e in h) for h in before.values())

    killed_at = time.monotonic()
    leader.kill()
    survivors = [n for n in cluster.nodes if n is not leader]
    new_leader = cluster.wait_leader(timeout=FAILOVER_BOUND * 3, among=survivors, not_=leader.name)
    elapsed = time.monotonic() - killed_at
    assert elapsed <= FAILOVER_BOUND, f"a new leader after {elapsed:.2f}s"

    # Nothing committed is lost: every timer and every event the old leader had applied.
    timers = new_leader.timers() or {}
    assert set(names) <= set(timers)
    for name in names:
        assert_prefix(before[name], projection(new_leader.history(name) or []), name)

    # The held leases expire under the new leader and the runs are retried by another worker.
    retrier = LedgerWorker("m3-retrier", [n.url for n in survivors], ["t3"], lease_seconds=30)

    def retried_all() -> bool:
        retrier.poll(max_runs=16)
        retried = {claim.timer_id for claim in retrier.claims}
        return retried >= set(names)

    wait(retried_all, WAIT, "every held run to be retried", interval=0.2)
    for claim in retrier.claims:
        old = held[claim.timer_id]
        assert claim.fencing_token > old.fencing_token, (claim, old)
        history = new_leader.history(claim.timer_id) or []
        assert any(e["kind"] == "RUN_LEASE_EXPIRED" and e["run_id"] == old.run_id for e in history)

    # The holder's late completions carry stale fencing tokens: refused.
    for old in held.values():
        late = holder.complete(old)
        assert late.status == 400, late
        assert "stale fencing token" in str(late.answer) or "run not active" in str(late.answer), late
    for claim in retrier.claims:
        assert retrier.complete(claim).accepted
    for name in names:
        history = new_leader.history(name) or []
        assert [e["kind"] for e in history].count("RUN_SUCCEEDED") == 1, history

    # The old leader comes back as a follower and agrees.
    leader.start()
    wait(lambda: (leader.status() or {}).get("leader_id") == new_leader.name, WAIT, "the old leader back")
    assert (leader.status() or {}).get("role") == "follower"
    wait_agree(cluster.nodes)


# ---------------------------------------------------------------------------------------------
# 4. partition the leader from the other two
# ---------------------------------------------------------------------------------------------


def test_4_partitioned_leader_commits_nothing_and_rejoins(cluster: Cluster) -> None:
    old = cluster.wait_leader()
    client(old).schedule("m4-before", task="t", every="1h")
    cluster.wait_converged()
    require_distinct_sources(cluster)
    majority = [n for n in cluster.nodes if n is not old]

    cluster.partition([old])
    # The minority side commits nothing: every write to it fails or times out.
    attempts = []
    deadline = time.monotonic() + 3.0
    i = 0
    while time.monotonic() < deadline:
        body = {"name": f"m4-minority-{i}", "task": "t", "every": "1h"}
        code, answer = old.http("POST", "/v1/timers", body, timeout=2.0)
        attempts.append((code, answer))
        assert not 200 <= code < 300, f"the isolated leader accepted a write: {answer}"
        i += 1
    # The majority elects a leader and goes on.
    new = cluster.wait_leader(timeout=WAIT, among=majority, not_=old.name)
    retry(lambda: client(*majority).schedule("m4-majority", task="t", every="1h"))
    for node in majority:
        wait(lambda node=node: "m4-majority" in (node.timers() or {}), WAIT, f"m4-majority on {node.name}")

    cluster.heal()
    wait(lambda: (old.status() or {}).get("leader_id") == new.name, WAIT, "the old leader to follow")
    assert (old.status() or {}).get("role") == "follower"
    state = wait_agree(cluster.nodes)
    assert {"m4-before", "m4-majority"} <= set(state["timers"])
    assert not [name for name in state["timers"] if name.startswith("m4-minority")], attempts


# ---------------------------------------------------------------------------------------------
# 5. a follower that missed writes catches up: from the log; after compaction, from a snapshot
# ---------------------------------------------------------------------------------------------


def write_many(nodes: list[ClusterNode], prefix: str, count: int, threads: int = 4) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        c = kron.Client(",".join(n.url for n in nodes), token=TOKEN, timeout=10.0)
        try:
            for i in range(k, count, threads):
                retry(lambda i=i: c.schedule(f"{prefix}-{i}", task="t", every="1h"))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            c.close()

    workers = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=300)
    assert not errors, errors


def test_5_follower_catches_up_from_the_log(cluster: Cluster) -> None:
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    follower.kill()
    live = [n for n in cluster.nodes if n is not follower]
    write_many(live, "m5", 40)
    follower.start()
    state = wait_agree(cluster.nodes)
    assert {f"m5-{i}" for i in range(40)} <= set(state["timers"])


def raft_indexes(path: Path) -> tuple[int, int]:
    """(first, last) index held in a node's Raft log file, read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT MIN(idx), MAX(idx) FROM raft_log").fetchone()
    finally:
        conn.close()
    return int(row[0] or 0), int(row[1] or 0)


#: Compaction made frequent: a snapshot every this many entries.
SNAPSHOT_EVERY = 50


def test_5_follower_catches_up_from_a_snapshot_after_compaction(tmp_path: Path) -> None:
    env = {"KRON_RAFT_SNAPSHOT_EVERY": str(SNAPSHOT_EVERY), "KRON_RAFT_LOGS_KEPT": "10"}
    cluster = make_cluster(tmp_path, env=env)
    try:
        leader = cluster.wait_leader()
        follower = next(n for n in cluster.nodes if n is not leader)
        follower.kill()
        _, follower_last = raft_indexes(follower.data_dir / "raft.db")
        live = [n for n in cluster.nodes if n is not follower]
        # Enough entries that even the default kept tail (1,000) is passed.
        count = SNAPSHOT_EVERY * 4
        write_many(live, "m5s", count)
        leader = cluster.wait_leader(among=live)
        first, _ = raft_indexes(leader.data_dir / "raft.db")
        if first <= follower_last + 1:
            write_many(live, "m5s-more", 1100)
            first, _ = raft_indexes(leader.data_dir / "raft.db")
        if first <= follower_last + 1:
            pytest.fail(
                f"the server ignores KRON_RAFT_SNAPSHOT_EVERY={SNAPSHOT_EVERY}: the leader's log still "
                f"starts at {first}, so the follower (at {follower_last}) would catch up from the log"
            )
        follower.start()
        state = wait_agree(cluster.nodes, timeout=60)
        assert {f"m5s-{i}" for i in range(count)} <= set(state["timers"])
    finally:
        cluster.close()


# ---------------------------------------------------------------------------------------------
# 6. restart the whole cluster
# ---------------------------------------------------------------------------------------------


def work(worker: LedgerWorker, seconds: float) -> None:
    """Claims and completes whatever is due for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for claim in worker.poll(max_runs=16, wait_ms=200):
            worker.complete(claim)


def test_6_whole_cluster_restart(cluster: Cluster) -> None:
    names = [f"m6-{i}" for i in range(3)]
    c = client(*cluster.nodes)
    for name in names:
        c.schedule(name, task="t6", every="1s")
    worker = LedgerWorker("m6-worker", [n.url for n in cluster.nodes], ["t6"], lease_seconds=5)
    work(worker, 3.0)
    leader = cluster.wait_leader()
    cluster.wait_converged()
    before_timers = leader.timers() or {}
    before = {name: projection(leader.history(name) or []) for name in names}
    assert all(t["run_count"] >= 1 for name, t in before_timers.items() if name in names), before_timers

    for node in cluster.nodes:
        node.kill()
    for node in cluster.nodes:
        node.spawn()
    for node in cluster.nodes:
        node.wait_serving()
    leader = cluster.wait_leader(timeout=WAIT)
    cluster.wait_converged()

    # State intact.
    after_timers = leader.timers() or {}
    assert set(before_timers) <= set(after_timers)
    for name in names:
        assert_prefix(before[name], projection(leader.history(name) or []), name)
    # Schedules continue.
    work(worker, 4.0)
    cluster.wait_converged()
    for name in names:
        assert (leader.timers() or {})[name]["run_count"] > before_timers[name]["run_count"], name
    # No duplicate claims, in any node's history nor in the worker's ledger.
    for node in cluster.nodes:
        for name in names:
            history = node.history(name) or []
            claims = [(e["run_id"], e["attempt"]) for e in history if e["kind"] == "RUN_CLAIMED"]
            dup = [k for k, n in Counter(claims).items() if n > 1]
            assert not dup, (node.name, name, dup)
    ledger = Counter((claim.run_id, claim.attempt) for claim in worker.claims)
    assert not [k for k, n in ledger.items() if n > 1]
    wait_agree(cluster.nodes)


# ---------------------------------------------------------------------------------------------
# 7. corrupt one node's storage
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file", ["raft.db", "kron.db"])
def test_7_corrupt_storage_refused_naming_the_file_others_go_on(cluster: Cluster, file: str) -> None:
    leader = cluster.wait_leader()
    client(leader).schedule("m7-before", task="t", every="1h")
    cluster.wait_converged()
    victim = next(n for n in cluster.nodes if n is not leader)
    victim.kill()
    path = victim.data_dir / file
    # Garbage over the first page, in the file and in its write-ahead log (which holds the newest
    # copy of that page after a SIGKILL): not a database any more.
    for part in (path, path.with_name(file + "-wal")):
        if part.exists():
            with open(part, "r+b") as f:
                f.write(os.urandom(4096))
    victim.spawn()
    try:
        victim.proc.wait(timeout=WAIT)  # type: ignore[union-attr]
    except subprocess.TimeoutExpired:
        victim.kill()
        raise AssertionError(f"{victim.name} started on a corrupt {file}") from None
    assert victim.proc is not None and victim.proc.returncode != 0
    output = victim.err_path.read_text(errors="replace") + victim.out_path.read_text(errors="replace")
    assert file in output, output

    # The other two go on.
    live = [n for n in cluster.nodes if n is not victim]
    retry(lambda: client(*live).schedule("m7-after", task="t", every="1h"))
    for node in live:
        wait(lambda node=node: "m7-after" in (node.timers() or {}), WAIT, f"m7-after on {node.name}")
