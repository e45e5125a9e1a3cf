"""Time to first render of the dashboard's timers page with many timers (docs/performance.md).

Starts a `kron server` on a fresh directory, creates N timers through `kron.Client` (8
threads), signs in to /ui in headless Chromium and loads /ui/timers several times: the time
from navigation start to the `kron-first-render` mark (set when the first page of rows is in
the document) is reported, with the JSON route's own time.

    python bench/dashboard_render.py --timers 100000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import kron
from dashboard_browser import browser, wait
from server_node import ServerNode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = ServerNode(Path(tmp) / "data", Path(tmp)).start()
        try:
            client = kron.Client(node.url, token=node.admin_token)
            started = time.monotonic()

            def create(chunk: range) -> None:
                for i in chunk:
                    client.schedule(f"timer-{i:06d}", task="bench.task", every=f"{60 + i % 3600}s")

            step = args.timers // 8 + 1
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                chunks = [range(i, min(i + step, args.timers)) for i in range(0, args.timers, step)]
                list(pool.map(create, chunks))
            print(f"created {args.timers} timers in {time.monotonic() - started:.1f}s")
            driver = browser()
            try:
                # The session cookie set directly: what is measured is the page, not the login.
                driver.get(f"{node.url}/ui/login")
                driver.add_cookie({"name": "kron_ui_session", "value": node.admin_token, "path": "/ui",
                                   "httpOnly": True, "sameSite": "Strict"})
                renders, routes = [], []
                for _ in range(args.loads):
                    driver.get(f"{node.url}/ui/timers")
                    mark = wait(lambda: driver.execute_script(
                        "const m = performance.getEntriesByName('kron-first-render');"
                        "return m.length ? m[0].startTime : null"), "the first render", timeout=60)
                    route = driver.execute_script(
                        "const r = performance.getEntriesByType('resource')"
                        ".filter(e => e.name.includes('/ui/api/timers'));"
                        "return r.length ? r[0].duration : null")
                    renders.append(mark)
                    routes.append(route)
                print(f"first render ms: median {statistics.median(renders):.0f}, "
                      f"min {min(renders):.0f}, max {max(renders):.0f} over {args.loads} loads")
                print(f"/ui/api/timers ms: median {statistics.median(routes):.0f}")
            finally:
                driver.quit()
        finally:
            node.stop()


if __name__ == "__main__":
    main()
