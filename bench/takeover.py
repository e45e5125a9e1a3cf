"""Kron only: standby take-over time, and what a waiting standby costs.

An owner and a standby (two child processes of this script, the same program) share one data
directory: each registers a timer every --every-ms (default 50 ms) and calls
``kron.start(dir, standby=True)``; the first becomes the active runtime, the second waits.

1. Idle cost of a standby: while the owner runs its timer, the standby's CPU seconds
   (utime + stime of /proc/PID/stat) and the context switches of all its threads
   (/proc/PID/task/*/status, voluntary + involuntary) are read before and after --idle seconds
   (default 10). A standby blocked on the directory's lock switches (almost) never; one that polls
   switches at its polling rate. Target: no loop waking more than once a second.
2. Take-over, --rounds times (default 50): at a random moment (--wait-min..--wait-max after the
   previous take-over, so at a random phase of the timer's period) the owner gets SIGKILL; the time
   from just before the kill to the first callback in the standby (the callback writes the wall
   clock; both processes are on this machine) is one sample. By then the next occurrence is due or
   overdue (catch-up runs it at once). Then a fresh standby is started and waited for (its
   ``start()`` returned as a standby) before the next kill, so process start-up never competes
   with the measured take-over. Also reported: kill -> the new owner's "took over" log line.
   Target: p99 <= 1 s.

    python bench/takeover.py --impl kron [--rounds 50] [--every-ms 50] [--idle 10]
"""

import os
import random
import signal
import subprocess
import sys
import time

import adapters
import common

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# the child: owner or standby, one program
# --------------------------------------------------------------------------

def child(args):
    # Blocked before any thread exists: only the main thread's sigwait() sees SIGTERM, so the
    # waiting process has no thread of its own that wakes up.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    import logging

    import kron

    pid = os.getpid()
    fd = os.open(args.marks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def mark(kind, extra=""):
        os.write(fd, ("%s %d %.6f %s\n" % (kind, pid, time.time(), extra)).encode())

    class TookOver(logging.Handler):
        def emit(self, record):
            if "took over" in record.getMessage():
                mark("took_over")

    log = logging.getLogger("kron")
    log.addHandler(TookOver())
    log.setLevel(logging.INFO)
    log.propagate = False

    def tick(context):
        mark("cb")

    kron.schedule("tick", tick, every="%dms" % args.every_ms, overlap="skip")
    kron.start(args.data_dir, standby=True)
    mark("ready", kron.runtime_info().get("role") or "?")
    signal.sigwait({signal.SIGTERM})
    kron.shutdown(timeout=2.0)
    os._exit(0)


# --------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------

class Marks:
    """Reads the lines the children append to the marks file, from where it left off."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.lines = []  # (kind, pid, wall time, extra)

    def poll(self):
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode().splitlines():
            parts = line.split(" ", 3)
            if len(parts) >= 3:
                self.lines.append((parts[0], int(parts[1]), float(parts[2]),
                                   parts[3].strip() if len(parts) > 3 else ""))

    def wait_for(self, kind, pid, after=0.0, timeout=10.0):
        """The first (time, extra) of a `kind` line from `pid` later than `after`, or None."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for k, p, w, extra in self.lines:
                if k == kind and p == pid and w > after:
                    return w, extra
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.001)

    def forget_before(self, when):
        self.lines = [ln for ln in self.lines if ln[2] >= when]


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_switches(pid):
    """Voluntary + involuntary context switches of all threads of `pid` so far."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as fh:
                for line in fh:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def proc_threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def measure_idle(pid, seconds):
    cpu0, cs0, t0 = proc_cpu_s(pid), proc_switches(pid), time.time()
    time.sleep(seconds)
    cpu1, cs1, t1 = proc_cpu_s(pid), proc_switches(pid), time.time()
    wall = t1 - t0
    return {
        "idle_s": round(wall, 3),
        "cpu_s": round(cpu1 - cpu0, 3),
        "cpu_pct": round(100.0 * (cpu1 - cpu0) / wall, 3),
        "switches": cs1 - cs0,
        "wakeups_per_s": round((cs1 - cs0) / wall, 3),
        "threads": proc_threads(pid),
    }


def main(argv=None):
    p = common.base_parser(__doc__)
    p.add_argument("--rounds", type=int, default=50, help="take-overs measured (default 50)")
    p.add_argument("--every-ms", type=int, default=50, help="the timer's period in ms (default 50)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds of standby idle measurement")
    p.add_argument("--wait-min", type=float, default=0.1, help="shortest owner life after a take-over (s)")
    p.add_argument("--wait-max", type=float, default=0.6, help="longest owner life after a take-over (s)")
    p.add_argument("--round-timeout", type=float, default=10.0, help="give up on a round after this (s)")
    p.add_argument("--seed", type=int, default=None, help="kill-moment seed (default random)")
    p.add_argument("--child", action="store_true", help=argparse_hidden())
    p.add_argument("--marks", default=None, help=argparse_hidden())
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0

    ad = adapters.adapter_from_args(args)
    if ad.impl != "kron":
        p.error("takeover.py measures Kron's standby mode only (--impl kron)")
    out = adapters.header(args, ad, "takeover")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    data_dir = common.fresh_dir(args.data_dir)
    # Beside the data directory, not in it: the children's lines are not Kron's data.
    marks = Marks(os.path.abspath(data_dir.rstrip("/") + ".marks"))
    procs = {}
    errors = []

    def spawn():
        cmd = [sys.executable, os.path.abspath(__file__), "--impl", "kron", "--child",
               "--data-dir", data_dir, "--marks", marks.path, "--every-ms", str(args.every_ms)]
        with open(marks.path + ".err", "ab") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        procs[proc.pid] = proc
        return proc.pid

    def ready(pid, timeout=30.0):
        got = marks.wait_for("ready", pid, timeout=timeout)
        if got is None:
            with open(marks.path + ".err", "rb") as fh:
                err = fh.read().decode(errors="replace")[-1500:]
            raise RuntimeError("process %d did not return from start() in %.0f s %s" % (pid, timeout, err))
        return got[1]

    samples, took_over, standby_start_s = [], [], []
    idle = None
    owner = standby = None
    t_begin = time.time()
    try:
        owner = spawn()
        role = ready(owner)
        if role != "active":
            raise RuntimeError("the first process started as %r, not active" % role)
        if marks.wait_for("cb", owner, timeout=10.0) is None:
            raise RuntimeError("the owner ran no callback within 10 s")
        standby = spawn()
        role = ready(standby)
        if role != "standby":
            raise RuntimeError("the second process started as %r, not standby" % role)
        time.sleep(1.0)  # let the standby's start-up settle before measuring it idle
        idle = measure_idle(standby, args.idle)
        for r in range(args.rounds):
            time.sleep(rng.uniform(args.wait_min, args.wait_max))
            marks.forget_before(time.time() - 5.0)
            killed_at = time.time()
            os.kill(owner, signal.SIGKILL)
            procs[owner].wait()
            got = marks.wait_for("cb", standby, after=killed_at, timeout=args.round_timeout)
            if got is None:
                errors.append("round %d: no callback in the standby %d within %.0f s of the kill"
                              % (r + 1, standby, args.round_timeout))
                break
            samples.append((got[0] - killed_at) * 1000.0)
            log = marks.wait_for("took_over", standby, after=killed_at, timeout=0.5)
            if log is not None:
                took_over.append((log[0] - killed_at) * 1000.0)
            owner = standby
            t_spawn = time.time()
            standby = spawn()
            role = ready(standby)
            standby_start_s.append(time.time() - t_spawn)
            if role != "standby":
                errors.append("round %d: the fresh process started as %r, not standby" % (r + 1, role))
                break
    except RuntimeError as e:
        errors.append(str(e))
    finally:
        # Standbys first, so that none takes over from the owner's clean shutdown.
        for pid in sorted(procs, key=lambda p: p == owner):
            if procs[pid].poll() is None:
                os.kill(pid, signal.SIGTERM)
                try:
                    procs[pid].wait(timeout=15)
                except subprocess.TimeoutExpired:
                    procs[pid].kill()
                    procs[pid].wait()
    out.update({
        "seed": seed,
        "rounds": len(samples),
        "every_ms": args.every_ms,
        "takeover_ms": common.summarize(samples, digits=1),
        "took_over_log_ms": common.summarize(took_over, digits=1),
        "standby_start_s": common.summarize(standby_start_s),
        "standby_idle": idle,
        "samples_ms": [round(s, 1) for s in samples],
        "wall_s": round(time.time() - t_begin, 1),
    })
    if errors:
        out["error"] = "; ".join(errors)
    if not args.keep:
        common.remove_dir(data_dir)
        for path in (marks.path, marks.path + ".err"):
            if os.path.exists(path):
                os.remove(path)
    common.emit(out)
    return 0


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
