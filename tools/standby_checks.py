"""The checks of the standby ledger (``tools/standby_ledger.py``), run over a finished work directory.

Reads ``config.json``, the callbacks' ledger (``ledger.jsonl``), the processes' notes
(``procs.jsonl``: workers note ``started``, ``took_over``, ``stopping``, ``released``; the harness
notes ``spawn``, ``kill``, ``stop``, ``died`` and ``owner``, marked ``"h": 1``) and the data
directory's history (Python's ``sqlite3``, read-only), and returns a summary whose ``violations``
list is empty when every invariant held.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, Optional

import crashloop

#: The signal of the final, clean stop (not a hand-over).
FINAL_STOP_SIGNAL = 15


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if isinstance(rec, dict):
                out.append(rec)
    return out


class HistoryChecker(crashloop.Checker):
    """The crash loop's replay of the whole history, run once over the final directory."""

    def violation(self, text: str) -> None:
        self.violations.append(f"history: {text}")


def percentiles(values: list[float]) -> dict[str, Any]:
    vals = sorted(values)
    if not vals:
        return {"n": 0}

    def q(p: float) -> float:
        pos = (len(vals) - 1) * p / 100
        lo = int(pos)
        hi = min(lo + 1, len(vals) - 1)
        return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)

    return {
        "n": len(vals),
        "p50": round(q(50), 1),
        "p90": round(q(90), 1),
        "p99": round(q(99), 1),
        "max": round(vals[-1], 1),
    }


def verify(work: Path, extra_violations: Optional[list[str]] = None) -> dict[str, Any]:
    """Checks a finished work directory; returns the summary (``violations`` included)."""
    cfg = json.loads((work / "config.json").read_text())
    data_dir, ledger_path = Path(cfg["data_dir"]), Path(cfg["ledger"])
    procs = read_jsonl(Path(cfg["procs"]))
    specs = {t["name"]: t for t in cfg["timers"]}
    violations = list(extra_violations or [])

    ck = HistoryChecker(data_dir, ledger_path, cfg["timers"], strict_cycles=False)
    ck.ledger_offset = 0
    ck.check("kill", final=True)

    ledger = read_jsonl(ledger_path)
    events: list[tuple[Any, ...]] = []
    runs_rows: list[tuple[Any, ...]] = []
    if (data_dir / "kron.db").exists():
        conn = sqlite3.connect(f"file:{data_dir / 'kron.db'}?mode=ro", uri=True, timeout=10)
        try:
            events = conn.execute(
                "SELECT seq, ts, timer_id, kind, run_id, attempt, detail FROM events ORDER BY seq"
            ).fetchall()
            runs_rows = conn.execute("SELECT run_id, timer_id, attempt, phase, fire_at FROM runs").fetchall()
        finally:
            conn.close()
    stats: dict[str, Any] = {}
    takeovers = check_takeovers(procs, ledger, cfg, violations, stats)
    check_single_active(procs, ledger, violations, stats)
    check_outcomes(events, runs_rows, specs, procs, violations, stats)
    check_lateness(events, specs, takeovers, cfg["lateness_margin"], violations, stats)
    check_interrupted(events, runs_rows, ledger, procs, specs, violations, stats)
    # The replay's findings last: one tampered event can make many of them.
    violations += ck.violations
    return {
        "seed": cfg.get("seed"),
        "timers": len(specs),
        "stats": stats,
        "history": ck.stats.__dict__,
        "violations": violations,
    }


def _owner_intervals(procs: list[dict[str, Any]], ledger: list[dict[str, Any]]) -> dict[int, list[float]]:
    """pid -> [from, until]: when each process owned the directory, as far as the notes prove.

    From: the earliest of its take-over note, its ``start()`` returning as active, its first
    callback, and the harness seeing it in ``kron.lock``. Until, for a process killed (or dead)
    while it owned the directory: the later of when the kill was sent and the last thing it wrote
    (a dead process writes nothing). For one stopped gracefully: when it called ``shutdown()``,
    which starts no new runs; callbacks still running may end after that, and ones abandoned by
    the timeout may even outlive the release of the directory (the documented window)."""
    frm: dict[int, float] = {}
    kill_sent: dict[int, float] = {}
    stop_sent: dict[int, float] = {}
    stopping: dict[int, float] = {}
    last_write: dict[int, float] = {}

    def lower(pid: int, w: float) -> None:
        frm[pid] = min(frm.get(pid, w), w)

    for rec in procs:
        pid, w, e = rec["p"], rec["w"], rec["e"]
        if e == "took_over" or (e == "started" and rec.get("role") == "active") or e == "owner":
            lower(pid, w)
        elif e == "kill" and rec.get("owner"):
            kill_sent[pid] = w
        elif e == "stop" and rec.get("owner"):
            stop_sent[pid] = w
        elif e == "stopping":
            stopping[pid] = w
        if not rec.get("h"):
            last_write[pid] = max(last_write.get(pid, w), w)
    for rec in ledger:
        pid, w = rec.get("p"), rec.get("w")
        if pid is None or w is None:
            continue
        if rec.get("e") == "b":
            lower(pid, w)
        last_write[pid] = max(last_write.get(pid, w), w)
    out = {}
    for pid, start in frm.items():
        if pid in stop_sent:
            end = stopping.get(pid, stop_sent[pid])
        else:
            end = max(kill_sent.get(pid, 0.0), last_write.get(pid, start))
        out[pid] = [start, end]
    return out


def check_single_active(
    procs: list[dict[str, Any]], ledger: list[dict[str, Any]], violations: list[str], stats: dict[str, Any]
) -> None:
    owned = _owner_intervals(procs, ledger)
    stats["processes_that_owned"] = len(owned)
    spans = sorted((lo, hi, pid) for pid, (lo, hi) in owned.items())
    starts = [lo for lo, _hi, _pid in spans]
    found = 0
    for rec in ledger:
        if rec.get("e") != "b" or "w" not in rec:
            continue
        w, pid = rec["w"], rec["p"]
        # Owners follow one another, so only the last few spans that began before w can hold it.
        i = bisect.bisect_left(starts, w)
        for lo, hi, other in spans[max(0, i - 3) : i]:
            if other != pid and lo < w < hi:
                found += 1
                if found <= 20:
                    violations.append(
                        f"two active processes: pid {pid} began {rec.get('t')} run {rec.get('r')} attempt "
                        f"{rec.get('a')} at {w:.3f} while pid {other} owned the directory "
                        f"({lo:.3f} .. {hi:.3f})"
                    )
    if found > 20:
        violations.append(f"two active processes: {found - 20} more callbacks like the above")
    # Ownership intervals themselves must not overlap.
    for (lo1, hi1, p1), (lo2, _hi2, p2) in zip(spans, spans[1:]):
        if lo2 < hi1:
            violations.append(
                f"two active processes: pid {p2} owned the directory from {lo2:.3f}, "
                f"pid {p1} until {hi1:.3f} (from {lo1:.3f})"
            )
    # A run executed by two processes: the at-least-once window (the earlier attempt was
    # interrupted by its process's end, or failed and was retried by the next owner).
    pids_of: dict[str, set[int]] = {}
    for rec in ledger:
        if rec.get("e") == "b":
            pids_of.setdefault(rec["r"], set()).add(rec["p"])
    stats["runs_executed_by_two_processes"] = sum(1 for p in pids_of.values() if len(p) > 1)


def check_takeovers(
    procs: list[dict[str, Any]],
    ledger: list[dict[str, Any]],
    cfg: dict[str, Any],
    violations: list[str],
    stats: dict[str, Any],
) -> list[tuple[float, float]]:
    """Take-over times; returns the intervals when no process owned the directory."""
    limit = cfg["takeover_limit"]
    first_cb: dict[int, float] = {}
    for rec in ledger:
        if rec.get("e") == "b" and "w" in rec:
            first_cb[rec["p"]] = min(first_cb.get(rec["p"], rec["w"]), rec["w"])
    took_over = {rec["p"]: rec["w"] for rec in procs if rec["e"] == "took_over"}
    ended: Optional[tuple[str, float, int]] = None  # the owner's end: (how, when, pid)
    lock_ms: list[float] = []
    log_ms: list[float] = []
    cb_ms: list[float] = []
    gaps: list[tuple[float, float]] = []
    new_owners: list[int] = []
    counts = {"owner_kills": 0, "handovers": 0, "standby_kills": 0, "owner_deaths": 0, "takeovers": 0}
    for rec in procs:
        e = rec["e"]
        if e == "kill" and not rec.get("owner"):
            counts["standby_kills"] += 1
        elif e in ("kill", "stop") and rec.get("owner") and rec.get("signal") != FINAL_STOP_SIGNAL:
            counts["owner_kills" if e == "kill" else "handovers"] += 1
            ended = ("kill" if e == "kill" else "handover", rec["w"], rec["p"])
        elif e == "died":
            counts["owner_deaths"] += 1
            ended = ("died", rec["w"], rec["p"])
        elif e == "owner" and rec.get("after") is not None and ended is not None:
            how, when, _old = ended
            counts["takeovers"] += 1
            new = rec["p"]
            new_owners.append(new)
            lock = (rec["w"] - when) * 1000
            end_of_gap = rec["w"]
            if how == "kill":
                lock_ms.append(lock)
                if new in took_over:
                    log_ms.append((took_over[new] - when) * 1000)
                    end_of_gap = max(end_of_gap, took_over[new])
                if new in first_cb:
                    cb_ms.append((first_cb[new] - when) * 1000)
                if lock > limit * 1000:
                    violations.append(
                        f"take-over by {new} took {lock:.0f} ms after the owner was killed "
                        f"(limit {limit * 1000:.0f} ms)"
                    )
            elif new in took_over:
                end_of_gap = max(end_of_gap, took_over[new])
            gaps.append((when, end_of_gap))
            ended = None
    stats.update(counts)
    stats["takeover_ms"] = {
        "kill_to_lock": percentiles(lock_ms),
        "kill_to_took_over_log": percentiles(log_ms),
        "kill_to_first_callback": percentiles(cb_ms),
    }
    # A replacement started while the directory was free becomes active without a take-over.
    stats["new_owners_without_took_over_line"] = sum(1 for pid in new_owners if pid not in took_over)
    return gaps


def check_outcomes(
    events: list[tuple[Any, ...]],
    runs_rows: list[tuple[Any, ...]],
    specs: dict[str, dict[str, Any]],
    procs: list[dict[str, Any]],
    violations: list[str],
    stats: dict[str, Any],
) -> None:
    """Every due run reached an outcome, or waits at the end for a retry whose time had not come."""
    final_stop = max((rec["w"] for rec in procs if rec["e"] == "released"), default=0.0)
    final = {}
    for _seq, _ts, _tid, kind, run_id, _attempt, _detail in events:
        if kind == "RUN_DUE":
            final.setdefault(run_id, None)
        elif kind in ("RUN_SUCCEEDED", "RUN_DEAD", "RUN_SKIPPED_OVERLAP") and run_id:
            final[run_id] = kind
    pending = {r[0]: r for r in runs_rows}
    lost = 0
    waiting = 0
    for run_id, outcome in final.items():
        if outcome is not None:
            continue
        row = pending.get(run_id)
        if row is None:
            lost += 1
            if lost <= 10:
                violations.append(
                    f"run {run_id} was made due but has no outcome and is not in the runs table"
                )
            continue
        _rid, timer_id, attempt, phase, fire_at = row
        waiting += 1
        # Anything due more than a second before the last process stopped should have started.
        if phase != "running" and fire_at is not None and fire_at / 1000 < final_stop - 1.0:
            violations.append(
                f"run {run_id} of {timer_id} (attempt {attempt}) is still {phase}, due at "
                f"{fire_at / 1000:.3f}, {final_stop - fire_at / 1000:.1f} s before the last stop"
            )
        if phase == "running":
            violations.append(f"run {run_id} of {timer_id} is still running after the clean stop")
    if lost > 10:
        violations.append(f"... and {lost - 10} more runs with no outcome")
    stats["runs_due"] = len(final)
    stats["runs_waiting_at_the_end"] = waiting
    stats["runs_lost"] = lost


def check_lateness(
    events: list[tuple[Any, ...]],
    specs: dict[str, dict[str, Any]],
    gaps: list[tuple[float, float]],
    margin: float,
    violations: list[str],
    stats: dict[str, Any],
) -> None:
    """Each occurrence is made due (or recorded missed) on time, save for the time no process
    owned the directory: a take-over neither loses an occurrence nor delays the catch-up."""
    worst = 0.0
    worst_across = 0.0
    late = 0
    gap_ms = [(a * 1000, b * 1000) for a, b in gaps]
    for seq, ts, timer_id, kind, _run_id, _attempt, detail_json in events:
        if kind not in ("RUN_DUE", "RUN_MISSED"):
            continue
        detail = json.loads(detail_json) if detail_json else {}
        if detail.get("manual") or timer_id not in specs:
            continue
        spec = specs[timer_id]
        if spec["overlap"] == "delay" and spec["catchup"] == "all":
            # Replays the missed grid one run after another: late by design, by its backlog.
            continue
        scheduled = detail.get("scheduled_at")
        if scheduled is None:
            continue
        lateness = ts - scheduled
        down = sum(max(0.0, min(b, ts) - max(a, scheduled)) for a, b in gap_ms)
        effective = (lateness - down) / 1000
        if down:
            worst_across = max(worst_across, lateness / 1000)
        worst = max(worst, effective)
        if effective > margin:
            late += 1
            if late <= 10:
                violations.append(
                    f"event {seq}: {timer_id} occurrence {scheduled} made {kind} "
                    f"{lateness / 1000:.2f} s late, of which {down / 1000:.2f} s without an owner "
                    f"(margin {margin} s)"
                )
    if late > 10:
        violations.append(f"... and {late - 10} more late occurrences")
    stats["max_lateness_owned_s"] = round(worst, 3)
    stats["max_lateness_across_takeover_s"] = round(worst_across, 3)


def check_interrupted(
    events: list[tuple[Any, ...]],
    runs_rows: list[tuple[Any, ...]],
    ledger: list[dict[str, Any]],
    procs: list[dict[str, Any]],
    specs: dict[str, dict[str, Any]],
    violations: list[str],
    stats: dict[str, Any],
) -> None:
    """Every interrupted attempt is retried at once or dead by ``max_attempts``; every callback a
    killed process left unfinished was recorded interrupted."""
    by_run: dict[str, list[tuple[str, int]]] = {}
    interrupted: list[tuple[int, str, str, int]] = []
    for seq, _ts, timer_id, kind, run_id, attempt, _detail in events:
        if run_id:
            by_run.setdefault(run_id, []).append((kind, attempt))
        if kind == "RUN_INTERRUPTED":
            interrupted.append((seq, timer_id, run_id, attempt))
    pending = {r[0]: r for r in runs_rows}
    retried = dead = 0
    for seq, timer_id, run_id, attempt in interrupted:
        later = by_run[run_id]
        i = later.index(("RUN_INTERRUPTED", attempt))
        after = later[i + 1 :]
        max_attempts = specs[timer_id]["max_attempts"] if timer_id in specs else None
        if after[:1] == [("RUN_RETRYING", attempt + 1)]:
            retried += 1
            row = pending.get(run_id)
            if ("RUN_STARTED", attempt + 1) not in after and not (row and row[2] == attempt + 1):
                violations.append(
                    f"event {seq}: {run_id} was interrupted and retried, but attempt "
                    f"{attempt + 1} never started"
                )
        elif after[:1] == [("RUN_DEAD", attempt)] and attempt == max_attempts:
            dead += 1
        else:
            violations.append(
                f"event {seq}: {timer_id} run {run_id} attempt {attempt} was interrupted, then {after[:2]} "
                f"(expected RUN_RETRYING {attempt + 1}, or RUN_DEAD at max_attempts {max_attempts})"
            )
    stats["interrupted"] = len(interrupted)
    stats["retried_after_interruption"] = retried
    stats["dead_after_interruption"] = dead
    # Callbacks that a killed process left unfinished.
    killed = {rec["p"] for rec in procs if rec["e"] in ("kill", "died")}
    ends = {(rec["r"], rec["a"]) for rec in ledger if rec.get("e") in ("o", "f")}
    outcome: dict[tuple[str, int], str] = {}
    for _seq, _ts, _tid, kind, run_id, attempt, _detail in events:
        if kind in ("RUN_SUCCEEDED", "RUN_FAILED", "RUN_INTERRUPTED") and run_id:
            outcome[(run_id, attempt)] = kind
    cut = 0
    for rec in ledger:
        if rec.get("e") != "b" or rec["p"] not in killed or (rec["r"], rec["a"]) in ends:
            continue
        cut += 1
        got = outcome.get((rec["r"], rec["a"]))
        if got != "RUN_INTERRUPTED":
            violations.append(
                f"{rec['t']} run {rec['r']} attempt {rec['a']} was cut short by the kill of pid {rec['p']}, "
                f"but history records {got}"
            )
    stats["callbacks_cut_by_a_kill"] = cut
    dup = 0
    for key in ends:
        if outcome.get(key) == "RUN_INTERRUPTED":
            dup += 1
    stats["callbacks_completed_then_interrupted"] = dup


def print_summary(report: dict[str, Any], out: Any = sys.stdout) -> None:
    s, h = report["stats"], report["history"]
    tk = s.get("takeover_ms", {})

    def dist(d: dict[str, Any]) -> str:
        if not d or not d.get("n"):
            return "-"
        return f"{d['p50']:.0f} / {d['p99']:.0f} / {d['max']:.0f} ms"

    rows = [
        ("owner SIGKILLs", s.get("owner_kills")),
        ("graceful hand-overs (shutdown(0.5))", s.get("handovers")),
        ("standby SIGKILLs", s.get("standby_kills")),
        ("take-overs", s.get("takeovers")),
        ("processes that owned the directory", s.get("processes_that_owned")),
        ("kill -> new pid in kron.lock: p50 / p99 / max", dist(tk.get("kill_to_lock", {}))),
        ("kill -> 'took over' logged: p50 / p99 / max", dist(tk.get("kill_to_took_over_log", {}))),
        ("kill -> first callback: p50 / p99 / max", dist(tk.get("kill_to_first_callback", {}))),
        ("events checked", h.get("events")),
        ("scheduled runs (RUN_DUE)", s.get("runs_due")),
        ("attempts started", h.get("attempts_started")),
        ("succeeded", h.get("succeeded")),
        ("failed (planned)", h.get("failed")),
        ("dead", h.get("dead")),
        ("skipped for overlap", h.get("skipped_overlap")),
        ("RUN_MISSED events / occurrences", f"{h.get('missed_events')} / {h.get('missed_occurrences')}"),
        ("coalesced runs / occurrences", f"{h.get('coalesced_runs')} / {h.get('coalesced_occurrences')}"),
        ("interrupted", s.get("interrupted")),
        ("  retried at once", s.get("retried_after_interruption")),
        ("  dead at max_attempts", s.get("dead_after_interruption")),
        ("callbacks cut short by a kill", s.get("callbacks_cut_by_a_kill")),
        ("callbacks completed, outcome not committed", s.get("callbacks_completed_then_interrupted")),
        ("runs executed by two processes", s.get("runs_executed_by_two_processes")),
        ("runs waiting at the end (retry not yet due)", s.get("runs_waiting_at_the_end")),
        ("max lateness while owned (s)", s.get("max_lateness_owned_s")),
        ("max lateness across a take-over (s)", s.get("max_lateness_across_takeover_s")),
        ("ledger lines (begin / end)", f"{h.get('ledger_begins')} / {h.get('ledger_ends')}"),
        ("elapsed", f"{report.get('elapsed_s', 0):.0f} s"),
        ("VIOLATIONS", len(report["violations"])),
    ]
    width = max(len(r[0]) for r in rows)
    print("-" * (width + 24), file=out)
    for label, value in rows:
        print(f"{label:<{width}}  {'-' if value is None else value!s:>20}", file=out)
    print("-" * (width + 24), file=out)
    for v in report["violations"][:30]:
        print(f"VIOLATION {v}", file=out)
    if len(report["violations"]) > 30:
        print(f"... and {len(report['violations']) - 30} more", file=out)
