"""Kron only: status() and history() latency as the event history grows.

Builds the history through the public API, as an application would: one hot
timer runs every --hot-every (default 100ms) for the whole run, and batches of
--batch one-shots (default 50,000) fall due together and run (4 events each:
TIMER_CREATED, RUN_DUE, RUN_STARTED, RUN_SUCCEEDED), until the history holds
each --checkpoints size (default 10k, 100k, 1M events). At each checkpoint,
once the batch has finished, it measures --samples calls (default 300) of

  status(hot)              a timer with a long history
  status(one-shot)         a random completed one-shot
  history(hot, 100)        100 events of the hot timer, interleaved with all the others
  history(one-shot, 100)   a random one-shot (4 events)

the two history() calls again with the hot timer paused (nothing changing:
history() waits for pending changes to be durable before it reads, so while
timers fire some calls include a group commit), and one list() (every timer).
Then it shuts down and a fresh process measures
the same calls after a restart on the final history (cold caches), and how
long start() took on it.

    python bench/history_latency.py --impl kron [--checkpoints 10000,100000,1000000]

The number of events is read from the seq of the hot timer's newest event
(history() numbers every event), so it counts every event written.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

import adapters
import common


def timed_ms(fn, samples):
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return common.summarize(out, digits=4)


def measure(kron, hot, one_shots, samples, rng):
    picks = [rng.choice(one_shots) for _ in range(samples)] if one_shots else [hot] * samples
    it = iter(picks * 3)
    res = {
        "status_hot_ms": timed_ms(lambda: kron.status(hot), samples),
        "status_one_shot_ms": timed_ms(lambda: kron.status(next(it)), samples),
        "history_hot_100_ms": timed_ms(lambda: kron.history(hot, 100), samples),
        "history_one_shot_100_ms": timed_ms(lambda: kron.history(next(it), 100), samples),
    }
    # The same history() calls with nothing changing (hot timer paused): history() first waits
    # until everything already decided is durable, so while timers fire some calls include a
    # group commit; these show the read alone.
    kron.pause(hot)
    time.sleep(0.2)
    res["history_hot_100_quiet_ms"] = timed_ms(lambda: kron.history(hot, 100), samples)
    res["history_one_shot_100_quiet_ms"] = timed_ms(lambda: kron.history(next(it), 100), samples)
    kron.resume(hot)
    t = time.perf_counter()
    n = len(kron.list())
    res["list_ms"] = round((time.perf_counter() - t) * 1000.0, 2)
    res["list_timers"] = n
    res["history_hot_returned"] = len(kron.history(hot, 100))
    return res


def events_so_far(kron, hot):
    events = kron.history(hot, 1)
    return events[-1]["seq"] if events else 0


def build(args):
    ad = adapters.get_adapter("kron")
    sink = adapters.CountingSink()
    adapters.set_sink(sink)
    data_dir = common.fresh_dir(args.data_dir)
    ad.open(data_dir, fresh=True)
    kron = ad.kron
    hot = "hot"
    ad.add_interval(hot, args.hot_every)
    t_build0 = time.time()
    ad.start()
    rng = random.Random(7)
    # The hot timer needs 100 events (34 runs) before history(hot, 100) means anything.
    common.wait_until(lambda: len(kron.history(hot, 100)) >= 100,
                      time.time() + 40 * args.hot_every + 5, step=0.1)
    checkpoints = sorted(int(x) for x in args.checkpoints.split(",") if x.strip())
    names = []
    results = []
    batches = []
    deadline = t_build0 + args.max_build
    for target in checkpoints:
        while events_so_far(kron, hot) < target and time.time() < deadline:
            have = events_so_far(kron, hot)
            # 4 events per one-shot; the hot timer adds a few more meanwhile.
            k = max(1, min(args.batch, (target - have + 3) // 4))
            first = len(names)
            batch = ["h%07d" % i for i in range(first, first + k)]
            t0 = time.time()
            due = t0 + 0.3 + k * 2e-5
            before = len(sink)
            for name in batch:
                ad.add_one_shot(name, due)
            t_reg = time.time()
            names.extend(batch)
            ok = common.wait_until(lambda b=before, k=k: len(sink) >= b + k, deadline, step=0.01)
            t_done = time.time()
            batches.append({"n": k, "register_s": round(t_reg - t0, 3),
                            "due_to_done_s": round(t_done - due, 3), "complete": ok})
        time.sleep(0.3)  # let the last outcomes commit; measure a quiet scheduler
        res = {"target_events": target, "events": events_so_far(kron, hot),
               "timers": len(names) + 1, "build_elapsed_s": round(time.time() - t_build0, 1)}
        res.update(measure(kron, hot, names, args.samples, rng))
        results.append(res)
        print("checkpoint %s" % json.dumps(res), file=sys.stderr, flush=True)
    t_sd = time.time()
    ad.shutdown(timeout=10.0)
    shutdown_s = time.time() - t_sd
    return {
        "data_dir": data_dir,
        "checkpoints": results,
        "batches": batches,
        "build_s": round(time.time() - t_build0, 1),
        "shutdown_s": round(shutdown_s, 4),
        "hot_runs": len(sink),
        "timed_out": time.time() >= deadline,
        "one_shot_names": len(names),
    }


def restart_child(args):
    """A fresh process on the built directory: start (re-registering only the hot timer; the
    completed one-shots stay completed), then the same calls, cold."""
    ad = adapters.get_adapter("kron")
    adapters.set_sink(adapters.CountingSink())
    t0 = time.time()
    ad.open(args.data_dir, fresh=False)
    ad.add_interval("hot", args.hot_every)
    t1 = time.time()
    ad.start()
    t2 = time.time()
    rng = random.Random(11)
    names = ["h%07d" % rng.randrange(args.one_shots) for _ in range(args.samples)]
    kron = ad.kron
    first = {}
    t = time.perf_counter()
    kron.status("hot")
    first["status_hot_first_ms"] = round((time.perf_counter() - t) * 1000.0, 3)
    t = time.perf_counter()
    kron.history("hot", 100)
    first["history_hot_first_ms"] = round((time.perf_counter() - t) * 1000.0, 3)
    res = {"import_open_s": round(t1 - t0, 4), "start_s": round(t2 - t1, 4),
           "events": events_so_far(kron, "hot")}
    res.update(first)
    res.update(measure(kron, "hot", names, args.samples, rng))
    t = time.time()
    ad.shutdown(timeout=10.0)
    res["shutdown_s"] = round(time.time() - t, 4)
    res["data_dir"] = common.dir_report(args.data_dir)
    return res


def main(argv=None):
    p = common.base_parser(__doc__)
    p.set_defaults(impl="kron")
    for action in p._actions:
        if action.dest == "impl":
            action.required = False
    p.add_argument("--checkpoints", default="10000,100000,1000000",
                   help="history sizes (events) at which to measure")
    p.add_argument("--batch", type=int, default=50000, help="one-shots per batch")
    p.add_argument("--hot-every", type=float, default=0.1, help="period of the hot timer (s)")
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--max-build", type=float, default=300.0, help="give up building after this (s)")
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--phase", default="main", choices=["main", "restart"])
    p.add_argument("--one-shots", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.impl != "kron":
        print("history_latency.py measures kron only", file=sys.stderr)
        return 2

    if args.phase == "restart":
        common.emit(restart_child(args))
        return 0

    ad = adapters.get_adapter("kron")
    out = adapters.header(args, ad, "history")
    built = build(args)
    out.update({k: v for k, v in built.items() if k != "data_dir"})
    data_dir = built["data_dir"]
    out["data_dir_after_build"] = common.dir_report(data_dir)
    if not args.no_restart and built["one_shot_names"]:
        cmd = [sys.executable, os.path.abspath(__file__), "--phase", "restart", "--data-dir",
               data_dir, "--one-shots", str(built["one_shot_names"]), "--samples",
               str(args.samples), "--hot-every", str(args.hot_every)]
        # --data-dir is wiped by fresh_dir() only in build(); the child opens it as it is.
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            out["after_restart"] = (json.loads(lines[-1]) if proc.returncode == 0 and lines
                                    else {"error": "rc=%s" % proc.returncode,
                                          "stderr_tail": proc.stderr[-2000:]})
        except subprocess.TimeoutExpired:
            out["after_restart"] = {"error": "timeout after 300s"}
    if not args.keep:
        common.remove_dir(data_dir)
    common.emit(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
