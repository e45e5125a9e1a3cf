"""Kron only: a three-node cluster (real `kron server` processes on 127.0.0.2-4, started by
tests/cluster/harness.py; no fault proxy in the path unless --proxies).

1. Committed claims per second: --n one-shot timers already due, claimed by --workers threads
   of a raw HTTP worker (a poll claims up to --batch runs). A claim is answered once its entry
   is committed by a majority, so every claim counted is committed. Rate = runs / (go -> last
   claim answered). Then the completions of those runs, --batch per request, the same way.
2. Failover time, --failovers times: with runs due and unclaimed, SIGKILL the leader; a sample
   is the time from the kill to the first poll that returns a claimed run from a surviving node
   (the first committed claim under the new leader). Between rounds the killed node restarts
   and catches up. The issue's target: p99 <= 3 s.

    python bench/failover.py --impl kron [--n 5000] [--failovers 20] [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import common

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cluster"))

from harness import TOKEN, Cluster
from ledger import LedgerWorker


def create_due(cluster, prefix, n, threads=4):
    """n one-shot timers of task `prefix`, due within a second."""
    import kron

    errors = []

    def make(k):
        client = kron.Client(cluster.urls, token=TOKEN, timeout=30.0)
        try:
            for i in range(k, n, threads):
                client.schedule(f"{prefix}-{i}", task=prefix, after="1s", max_attempts=3)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            client.close()

    ts = [threading.Thread(target=make, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    time.sleep(1.2)


def throughput(cluster, args):
    """Claims first (every worker polls until nothing is left), then the completions of every
    claimed run in batches: two rates, since a claim and a completion are separate proposals."""
    create_due(cluster, "tp", args.n)
    leader = cluster.wait_leader()
    urls = [leader.url] + [n.url for n in cluster.nodes if n is not leader]
    workers = [LedgerWorker(f"tp-{k}", urls, ["tp"], lease_seconds=300, timeout=60.0)
               for k in range(args.workers)]
    for worker in workers:
        worker.register()
    marks = []
    lock = threading.Lock()
    go = threading.Event()

    def claim(worker):
        go.wait()
        empty = 0
        while empty < 3:
            claims = worker.poll(max_runs=args.batch, wait_ms=200)
            if claims:
                with lock:
                    marks.append(time.monotonic())
            empty = 0 if claims else empty + 1

    def complete(worker):
        go.wait()
        for i in range(0, len(worker.claims), args.batch):
            answers = worker.complete_batch(worker.claims[i:i + args.batch])
            with lock:
                marks.append(time.monotonic())
                done.append(sum(1 for a in answers if a.accepted))

    def timed(fn):
        marks.clear()
        go.clear()
        ts = [threading.Thread(target=fn, args=(w,)) for w in workers]
        for t in ts:
            t.start()
        start = time.monotonic()
        go.set()
        for t in ts:
            t.join(timeout=args.max_wait)
        return max(max(marks, default=start) - start, 1e-9)

    done = []
    term_before = leader_term(leader)
    claim_s = timed(claim)
    claimed = sum(len(w.claims) for w in workers)
    complete_s = timed(complete)
    completed = sum(done)
    # Leader stability under load: a term that moved during the drain is an election nobody
    # asked for (a heartbeat delayed past a follower's election timeout).
    term_after = leader_term(leader)
    return {"n": args.n, "workers": args.workers, "batch": args.batch, "claimed": claimed,
            "claim_seconds": round(claim_s, 3), "claims_per_s": round(claimed / claim_s, 1),
            "completed": completed, "complete_seconds": round(complete_s, 3),
            "completions_per_s": round(completed / complete_s, 1),
            "elections_under_load": None if None in (term_before, term_after)
            else term_after - term_before}


def leader_term(node):
    """The Raft term a node reports (None if it does not answer)."""
    status = node.status(timeout=5.0)
    return None if status is None else status.get("term")


def failovers(cluster, args):
    samples = []
    for round_no in range(args.failovers):
        leader = cluster.wait_leader(timeout=30)
        cluster.wait_converged(timeout=60)
        prefix = f"fo{round_no}"
        create_due(cluster, prefix, 5, threads=1)
        survivors = [n for n in cluster.nodes if n is not leader]
        worker = LedgerWorker(f"fo-{round_no}", [n.url for n in survivors], [prefix], lease_seconds=30,
                              timeout=1.0)
        killed = time.monotonic()
        leader.kill()
        deadline = killed + 30.0
        sample = None
        while time.monotonic() < deadline:
            if worker.poll(max_runs=1, wait_ms=0):
                sample = time.monotonic() - killed
                break
            time.sleep(0.01)
        samples.append(sample)
        took = None if sample is None else round(sample, 3)
        print(f"failover {round_no + 1}: {took} s (killed {leader.name})", file=sys.stderr, flush=True)
        leader.start()
    measured = [s for s in samples if s is not None]
    summary = common.summarize(measured)
    return {"rounds": args.failovers, "failed": len(samples) - len(measured), "seconds": summary,
            "target_p99_s": 3.0, "samples": [None if s is None else round(s, 3) for s in samples]}


def main(argv=None):
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=5000, help="due runs drained by the throughput run")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--failovers", type=int, default=20)
    p.add_argument("--max-wait", type=float, default=180.0)
    p.add_argument("--proxies", action="store_true",
                   help="Raft traffic through the tests' (Python) fault proxies, as the tests run")
    p.add_argument("--quick", action="store_true", help="--n 1000 (still 20 failovers)")
    args = p.parse_args(argv)
    if args.impl != "kron":
        raise SystemExit("failover.py measures kron only")
    if args.quick:
        args.n = min(args.n, 1000)
    result = {"workload": "failover", "label": args.label, "env": common.env_info(), "nodes": 3,
              "proxies": args.proxies}
    with tempfile.TemporaryDirectory(prefix="kron-bench-failover-") as tmp:
        cluster = Cluster(Path(args.data_dir or tmp), 3, proxies=args.proxies)
        try:
            cluster.start()
            result["throughput"] = throughput(cluster, args)
            print(f"throughput: {json.dumps(result['throughput'])}", file=sys.stderr, flush=True)
            result["failover"] = failovers(cluster, args)
        except Exception as exc:  # noqa: BLE001 - the JSON line says what failed
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            cluster.close()
    common.emit(result)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
