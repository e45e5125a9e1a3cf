"""Kron quick-start: a few timers firing in ./.kron, then their status and history.

Run it twice: the second run finds the timers, their state and history in ./.kron, and the
one-shot that already ran does not run again.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import kron

# Failed attempts are logged to the "kron" logger with their traceback; this demo fails on
# purpose, so keep its output short. Your application should leave it on.
logging.getLogger("kron").setLevel(logging.CRITICAL)

started = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - started:5.1f}s] {text}", flush=True)


@kron.schedule("heartbeat", every="2s")
def heartbeat() -> None:
    say("heartbeat")


@kron.schedule("every-5-seconds", cron="*/5 * * * * *")
def on_the_fives(context: dict[str, Any]) -> None:
    say(f"cron tick scheduled for {context['scheduled_at']:%H:%M:%S}")


@kron.schedule("flaky-report", every="4s", max_attempts=3)
def flaky_report(context: dict[str, Any]) -> None:
    # Fails on its first attempt of every due run, succeeds on the retry about 1 s later.
    if context["attempt"] == 1:
        raise ConnectionError("upstream not ready (the retry will succeed)")
    say(f"report sent on attempt {context['attempt']} (key {context['idempotency_key']})")


# `after` counts from the timer's first registration, so the definition is the same on every start
# and the persisted state stands: this runs once, ever, for this data directory. (An `at` computed
# from now() would be a new definition on every start.)
@kron.schedule("welcome", after="3s")
def welcome() -> None:
    say("one-shot: welcome (runs once, ever, for this data directory)")


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
    kron.start(data_dir=".kron")
    say(f"kron started in ./.kron; watching for {seconds:.0f} s")
    time.sleep(seconds)
    kron.shutdown(timeout=5)

    print("\nStatus:")
    print(f"  {'timer':<16} {'state':<10} {'runs':>4} {'fails':>5}  {'last status':<30} next run (UTC)")
    for timer in kron.list():
        nxt = timer["next_run_at"]
        next_text = f"{nxt:%H:%M:%S}" if nxt else "-"
        last = (timer["last_status"] or "-")[:30]
        print(
            f"  {timer['id']:<16} {timer['state']:<10} {timer['run_count']:>4}"
            f" {timer['failure_count']:>5}  {last:<30} {next_text}"
        )
    print("\nHistory of flaky-report (last 8 events):")
    for event in kron.history("flaky-report", limit=8):
        extra = event["error"].splitlines()[0] if event["error"] else ""
        when = f"{event['ts']:%H:%M:%S.%f}"[:-3]
        print(f"  {when}  {event['kind']:<20} attempt={event['attempt']}  {extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
