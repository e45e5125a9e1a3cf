"""Kron only: server mode on one machine (one `kron server` node, every write through Raft).

Starts a real ``kron server`` (127.0.0.1, ports chosen by the OS, a fresh data directory) and
measures, through the public ``kron.Client`` and ``kron.Worker`` and the raw HTTP protocol:

1. Timer creations per second through ``kron.Client.schedule`` (``at`` a day ahead): one thread
   (--creations timers), then --creation-threads threads sharing one Client (as many again),
   then --creation-procs processes of --creation-threads threads, each with its own Client
   (twice as many); then, as a separate row, ``Client.schedule_many`` from one thread,
   --creation-batch timers per call (four times as many). The due timers of the measurements
   below are created with ``schedule_many`` (that preparation is not measured).
2. Runs claimed and completed per second: --n ``at`` timers already due (created beforehand,
   while no worker polls), then worker processes start together and drain them:
   - ``worker``: the real ``kron.Worker`` (``concurrency`` --worker-concurrency, so each poll
     claims up to that many runs; it reports outcomes in batches, from one thread);
   - ``raw``: a lean loop over the HTTP API: a poll with ``max_runs`` --raw-batch, then one
     ``POST /v1/runs/complete`` for the whole batch.
   Each with 1 and with 8 processes (--procs). Throughput = runs / (go -> last completion
   acknowledged). The server's and the workers' CPU over the drain say which side is saturated.
3. Due -> claimed latency with one long-polling ``kron.Worker``: --latency-n timers due at known
   instants spread over --latency-spread seconds; a sample is the wall clock when the task
   function starts (right after the poll answered) minus the run's ``scheduled_at``.

Every claim and every completion is a Raft proposal (the server always proposes, even alone).

    python bench/server.py --impl kron [--n 20000] [--procs 1,8] [--quick]
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import common

CLK_TCK = os.sysconf("SC_CLK_TCK")
UTC = dt.timezone.utc


# --------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------

def find_kron():
    """The `kron` command: $KRON_BIN, else the console script next to this Python, else PATH."""
    explicit = os.environ.get("KRON_BIN")
    if explicit:
        return explicit
    beside = os.path.join(os.path.dirname(sys.executable), "kron")
    if os.path.exists(beside):
        return beside
    found = shutil.which("kron")
    if not found:
        raise SystemExit("the `kron` command is not installed next to this Python nor on PATH")
    return found


class Server:
    """One `kron server` node on loopback ports; its output is drained by a thread."""

    def __init__(self, data_dir, start_timeout=30.0):
        self.data_dir = data_dir
        cmd = [find_kron(), "--data-dir", data_dir, "server", "start",
               "--http", "127.0.0.1:0", "--raft", "127.0.0.1:0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines = []
        self.url = None
        ready = threading.Event()

        def drain():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if self.url is None and " serving http://" in line:
                    self.url = line.split(" serving ", 1)[1].split()[0]
                    ready.set()
            ready.set()

        threading.Thread(target=drain, name="server-output", daemon=True).start()
        if not ready.wait(start_timeout) or self.url is None:
            self.stop()
            raise RuntimeError("kron server did not start: %s" % "\n".join(self.lines[-20:]))
        token_path = os.path.join(data_dir, "kron.token")
        deadline = time.time() + start_timeout
        while not os.path.exists(token_path) and time.time() < deadline:
            time.sleep(0.05)
        with open(token_path) as fh:
            self.token = fh.read().strip()

    def cpu_s(self):
        """utime + stime of the server process (all its threads), in seconds."""
        try:
            with open("/proc/%d/stat" % self.proc.pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def thread_cpu(self):
        """{thread name: CPU ticks} summed over the server's threads of that name."""
        out = {}
        base = "/proc/%d/task" % self.proc.pid
        try:
            tids = os.listdir(base)
        except OSError:
            return out
        for tid in tids:
            try:
                with open("%s/%s/stat" % (base, tid)) as fh:
                    stat = fh.read()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def wire_at(epoch):
    return dt.datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_at(value):
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------
# timer creation
# --------------------------------------------------------------------------

def create(client, names, task, at_epoch, threads):
    """Creates one `at` timer per name (split over `threads` threads); answers the seconds taken
    and the errors met."""
    errors = []
    chunks = [names[i::threads] for i in range(threads)]

    def work(chunk):
        for name in chunk:
            try:
                client.schedule(name, task=task, at=wire_at(at_epoch(name)))
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append("%s: %s" % (type(exc).__name__, exc))

    t0 = time.perf_counter()
    if threads == 1:
        work(chunks[0])
    else:
        ts = [threading.Thread(target=work, args=(c,)) for c in chunks]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return time.perf_counter() - t0, errors


def create_batched(client, names, task, at_epoch, size):
    """Creates the timers with `Client.schedule_many`, `size` per request, from one thread."""
    errors = []
    t0 = time.perf_counter()
    for i in range(0, len(names), size):
        chunk = names[i:i + size]
        try:
            client.schedule_many([{"name": name, "task": task, "at": wire_at(at_epoch(name))}
                                  for name in chunk])
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.extend(["%s: %s" % (type(exc).__name__, exc)] * len(chunk))
    return time.perf_counter() - t0, errors


def batch_creation_rate(client, n, size, prefix):
    names = ["%s-%d" % (prefix, i) for i in range(n)]
    ahead = time.time() + 86400
    secs, errors = create_batched(client, names, "bench_never", lambda _n: ahead, size)
    return {"n": n, "batch": size, "s": round(secs, 3),
            "per_s": round((n - len(errors)) / secs, 1) if secs else None,
            "errors": len(errors), "first_error": errors[0] if errors else None}


def creation_rate(client, n, threads, prefix):
    names = ["%s-%d" % (prefix, i) for i in range(n)]
    ahead = time.time() + 86400
    secs, errors = create(client, names, "bench_never", lambda _n: ahead, threads)
    return {"n": n, "threads": threads, "s": round(secs, 3),
            "per_s": round((n - len(errors)) / secs, 1) if secs else None,
            "errors": len(errors), "first_error": errors[0] if errors else None}


def creation_child(url, token, names, threads, go, out):
    """One process of the parallel creation run: its own `kron.Client`, `threads` threads."""
    import kron

    client = kron.Client(url, token=token, timeout=30.0)
    ahead = time.time() + 86400
    go.wait()
    secs, errors = create(client, names, "bench_never", lambda _n: ahead, threads)
    out.put({"s": secs, "errors": errors[:1], "n_errors": len(errors)})


def creation_rate_procs(server, n, procs, threads, prefix):
    """Timer creations per second from `procs` processes of `threads` threads each (one
    Python process's GIL caps what one client can send; the server groups concurrent writes
    into shared log entries)."""
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    names = ["%s-%d" % (prefix, i) for i in range(n)]
    children = [ctx.Process(target=creation_child,
                            args=(server.url, server.token, names[i::procs], threads, go, out))
                for i in range(procs)]
    for child in children:
        child.start()
    time.sleep(2.0)  # every child imported kron and waits
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=300) for _ in children]
    secs = time.perf_counter() - t0
    for child in children:
        child.join(timeout=10)
    n_errors = sum(r["n_errors"] for r in results)
    first = next((r["errors"][0] for r in results if r["errors"]), None)
    return {"n": n, "procs": procs, "threads": threads, "s": round(secs, 3),
            "per_s": round((n - n_errors) / secs, 1) if secs else None,
            "errors": n_errors, "first_error": first}


# --------------------------------------------------------------------------
# worker processes (spawned: each imports kron on its own)
# --------------------------------------------------------------------------

def _child_cpu():
    t = os.times()
    return t.user + t.system


def real_worker_child(url, token, task, concurrency, go, stop, claimed, completed, out):
    """A `kron.Worker` whose task does nothing; the claims are counted as each poll answers,
    the completions when the server has acknowledged the batch that carried them (the Worker
    sends outcomes in batches)."""
    import kron

    worker = kron.Worker(url, token=token, concurrency=concurrency)
    # Instrumentation only, per request as for the raw worker (not per run, which would cost
    # a lock shared by every process in the task itself): count what each poll claimed and what
    # each acknowledged report carried.
    poll = worker._poll

    def counting_poll(max_runs, wait_s):
        runs = poll(max_runs, wait_s)
        if runs:
            with claimed.get_lock():
                claimed.value += len(runs)
        return runs

    worker._poll = counting_poll
    send = worker._reports._send

    def counting_send(batch):
        send(batch)
        with completed.get_lock():
            completed.value += len(batch)

    worker._reports._send = counting_send

    @worker.task(task)
    def _noop(payload):
        return None

    go.wait()
    cpu0 = _child_cpu()
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    worker.run()
    out.put({"pid": os.getpid(), "cpu_s": _child_cpu() - cpu0})


def raw_worker_child(url, token, task, batch, go, stop, claimed, completed, out):
    """A lean loop over the HTTP API: poll up to `batch` runs, complete them in one request."""
    host = url.split("://", 1)[1].rstrip("/")
    conn = http.client.HTTPConnection(host, timeout=30)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    worker_id = "raw-%d" % os.getpid()
    errors = []

    def call(path, body):
        conn.request("POST", path, body=json.dumps(body, separators=(",", ":")), headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError("%s -> HTTP %d %s" % (path, resp.status, data[:300]))
        return json.loads(data) if data else None

    call("/v1/workers/register", {"worker_id": worker_id, "tasks": [task]})
    go.wait()
    cpu0 = _child_cpu()
    while not stop.is_set():
        answer = call("/v1/workers/poll", {"worker_id": worker_id, "tasks": [task],
                                           "max_runs": batch, "wait_ms": 500})
        runs = (answer or {}).get("runs") or []
        if not runs:
            continue
        with claimed.get_lock():
            claimed.value += len(runs)
        results = [{"run_id": r["run_id"], "fencing_token": r["fencing_token"],
                    "status": "succeeded", "duration_ms": 0} for r in runs]
        answer = call("/v1/runs/complete", {"worker_id": worker_id, "results": results})
        refused = [r for r in (answer or {}).get("results", []) if not r.get("ok")]
        if refused and len(errors) < 5:
            errors.append(refused[0])
        with completed.get_lock():
            completed.value += len(runs) - len(refused)
    out.put({"pid": os.getpid(), "cpu_s": _child_cpu() - cpu0, "refused": errors})


def throughput(server, client, kind, procs, n, args, due_at):
    """Creates n due timers of a fresh task, then `procs` worker processes drain them."""
    task = "tp_%s_%d" % (kind, procs)
    names = ["%s-%d" % (task, i) for i in range(n)]
    prep_s, errors = create_batched(client, names, task, lambda _n: due_at, 1000)
    ctx = mp.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    claimed, completed = ctx.Value("q", 0), ctx.Value("q", 0)
    out = ctx.Queue()
    if kind == "worker":
        target, extra = real_worker_child, args.worker_concurrency
    else:
        target, extra = raw_worker_child, args.raw_batch
    children = [ctx.Process(target=target, args=(server.url, server.token, task, extra, go, stop,
                                                 claimed, completed, out))
                for _ in range(procs)]
    for c in children:
        c.start()
    time.sleep(args.settle)  # every child imported and connected, blocked on `go`
    expected = n - len(errors)
    threads0 = server.thread_cpu()
    cpu0, t0 = server.cpu_s(), time.perf_counter()
    go.set()
    deadline = t0 + args.max_wait
    t_claimed = None
    while time.perf_counter() < deadline:
        if t_claimed is None and claimed.value >= expected:
            t_claimed = time.perf_counter()
        if completed.value >= expected:
            break
        time.sleep(0.005)
    t_done = time.perf_counter()
    server_cpu = (server.cpu_s() or 0) - (cpu0 or 0)
    threads1 = server.thread_cpu()
    stop.set()
    reports = []
    for _ in children:
        try:
            reports.append(out.get(timeout=args.max_wait / 10 + 10))
        except Exception:  # noqa: BLE001 - a child that does not report is killed below
            break
    for c in children:
        c.join(timeout=10)
        if c.is_alive():
            c.kill()
            c.join(timeout=5)
    elapsed = t_done - t0
    worker_cpu = sum(r["cpu_s"] for r in reports)
    busiest = sorted(((name, t - threads0.get(name, 0)) for name, t in threads1.items()),
                     key=lambda item: -item[1])[:5]
    return {
        "kind": kind, "procs": procs, "n": n, "task": task,
        "worker_concurrency": args.worker_concurrency if kind == "worker" else None,
        "raw_batch": args.raw_batch if kind == "raw" else None,
        "prepare_s": round(prep_s, 2), "prepare_errors": len(errors),
        "first_prepare_error": errors[0] if errors else None,
        "claimed": claimed.value, "completed": completed.value,
        "timed_out": completed.value < expected,
        "elapsed_s": round(elapsed, 3),
        "claimed_per_s": round(claimed.value / (t_claimed - t0 if t_claimed else elapsed), 1),
        "runs_per_s": round(completed.value / elapsed, 1) if elapsed else None,
        "server_cpu_pct": round(100 * server_cpu / elapsed, 1) if elapsed else None,
        "workers_cpu_pct": round(100 * worker_cpu / elapsed, 1) if elapsed else None,
        "refused": [r.get("refused") for r in reports if r.get("refused")],
        # % of one core per server thread name (threads of one name summed), busiest first
        "server_threads_cpu_pct": {name: round(100 * t / CLK_TCK / elapsed, 1)
                                   for name, t in busiest if t > 0} if elapsed else None,
    }


# --------------------------------------------------------------------------
# due -> claimed latency
# --------------------------------------------------------------------------

def latency_child(url, token, task, expected, out):
    import kron

    worker = kron.Worker(url, token=token, concurrency=1)
    samples = []

    @worker.task(task)
    def _record(payload, context):
        now = time.time()
        samples.append((now - context["scheduled_at"].timestamp()) * 1000.0)
        if len(samples) >= expected:
            worker.stop()

    worker.run()
    out.put(samples)


def latency(server, client, args):
    task = "lat"
    n, spread = args.latency_n, args.latency_spread
    t_first = time.time() + args.latency_lead
    due = {"lat-%d" % i: t_first + spread * i / n for i in range(n)}
    # round to whole milliseconds, the wire's precision, so scheduled_at is exactly what we asked
    due = {k: round(v, 3) for k, v in due.items()}
    prep_s, errors = create_batched(client, list(due), task, due.__getitem__, 1000)
    if time.time() > t_first - 0.5:
        return {"error": "creating the latency timers took %.1fs, past --latency-lead" % prep_s}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=latency_child, args=(server.url, server.token, task, n - len(errors), out))
    child.start()
    try:
        samples = out.get(timeout=args.latency_lead + spread + 30)
    except Exception:  # noqa: BLE001 - reported as missing samples
        samples = []
    child.join(timeout=10)
    if child.is_alive():
        child.kill()
        child.join(timeout=5)
    return {"n": n, "spread_s": spread, "samples": len(samples), "prepare_errors": len(errors),
            "due_to_claimed_ms": common.summarize(samples)}


def verify(client, tasks):
    """From the server's own state: per drained task, its timers and how many of them ran once
    and succeeded (so every completion counted above was committed and accepted)."""
    counts = {task: {"timers": 0, "succeeded_once": 0} for task in tasks}
    for status in client.list():
        task = str(status.get("id", "")).rsplit("-", 1)[0]
        if task in counts:
            counts[task]["timers"] += 1
            if status.get("run_count") == 1 and str(status.get("last_status", "")).lower() in (
                    "succeeded", "success", "ok"):
                counts[task]["succeeded_once"] += 1
    return counts


# --------------------------------------------------------------------------

def main(argv=None):
    p = common.base_parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000, help="due timers drained per throughput run")
    p.add_argument("--procs", default="1,8", help="worker process counts")
    p.add_argument("--kinds", default="worker,raw", help="worker (kron.Worker), raw (HTTP loop)")
    p.add_argument("--worker-concurrency", type=int, default=32)
    p.add_argument("--raw-batch", type=int, default=500)
    p.add_argument("--creations", type=int, default=5000)
    p.add_argument("--creation-threads", type=int, default=4)
    p.add_argument("--creation-procs", type=int, default=4,
                   help="processes of the parallel creation run (each --creation-threads threads)")
    p.add_argument("--creation-batch", type=int, default=500,
                   help="timers per Client.schedule_many call in the batch creation run")
    p.add_argument("--latency-n", type=int, default=300)
    p.add_argument("--latency-spread", type=float, default=3.0)
    p.add_argument("--latency-lead", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--max-wait", type=float, default=120.0)
    p.add_argument("--parts", default="creations,latency,throughput",
                   help="which measurements to run (comma-separated)")
    p.add_argument("--quick", action="store_true", help="--n 5000 --creations 2000")
    args = p.parse_args(argv)
    if args.impl != "kron":
        raise SystemExit("server.py measures kron only")
    if args.quick:
        args.n, args.creations = min(args.n, 5000), min(args.creations, 2000)
    import kron

    data_dir = common.fresh_dir(args.data_dir, prefix="kron-bench-server-")
    result = {"workload": "server", "label": args.label, "env": common.env_info(),
              "kron_version": getattr(kron, "__version__", None), "n": args.n}
    server = None
    try:
        server = Server(data_dir)
        client = kron.Client(server.url, token=server.token, timeout=30.0)
        parts = set(args.parts.split(","))
        if "creations" in parts:
            result["creations"] = {
                "sequential": creation_rate(client, args.creations, 1, "c1"),
                "threads": creation_rate(client, args.creations, args.creation_threads, "cn"),
                "processes": creation_rate_procs(server, args.creations * 2, args.creation_procs,
                                                 args.creation_threads, "cp"),
                "batch": batch_creation_rate(client, args.creations * 4, args.creation_batch,
                                             "cb"),
            }
            print("creations: %s" % json.dumps(result["creations"]), file=sys.stderr, flush=True)
        if "latency" in parts:
            result["latency"] = latency(server, client, args)
            print("latency: %s" % json.dumps(result["latency"]), file=sys.stderr, flush=True)
        result["throughput"] = []
        for kind in [k for k in args.kinds.split(",") if k and "throughput" in parts]:
            for procs in [int(x) for x in args.procs.split(",") if x]:
                # due one second ago: every run is due when the workers start
                res = throughput(server, client, kind, procs, args.n, args, time.time() - 1.0)
                print("throughput: %s" % json.dumps(res), file=sys.stderr, flush=True)
                result["throughput"].append(res)
        result["verified"] = verify(client, [r["task"] for r in result["throughput"]])
        print("verified: %s" % json.dumps(result["verified"]), file=sys.stderr, flush=True)
        result["server_alive"] = server.proc.poll() is None
        result["data_dir"] = common.dir_report(data_dir)
    except Exception as exc:  # noqa: BLE001 - the JSON line says what failed
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        if server is not None:
            server.stop()
            result["server_output_tail"] = server.lines[-10:]
        if not args.keep:
            common.remove_dir(data_dir)
    common.emit(result)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
