"""The web dashboard in a real headless Chromium: `kron ui` over a running application's data
directory, and `/ui` of a `kron server`. The tests also take the screenshots docs/dashboard.md
shows: into a temporary directory, or into docs/dashboard-img/ with KRON_UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import find_kron
from dashboard_browser import UiProcess, browser, screenshot, screenshot_dir, sign_in, wait
from server_node import ServerNode

pytestmark = pytest.mark.timeout(240)

APP = """\
import os, sys, time
import kron

data_dir, out = sys.argv[1], sys.argv[2]

@kron.schedule("heartbeat", every="1s")
def heartbeat():
    time.sleep(0.05)

@kron.schedule("flaky-upload", every="1s", max_attempts=2)
def flaky_upload(ctx):
    if ctx["attempt"] == 1:
        raise ConnectionError("upstream not ready")

@kron.schedule("doomed-export", every="2s", max_attempts=1)
def doomed_export():
    def parse(row):
        return int(row)
    parse("not a number")

@kron.schedule("nightly-report", cron="30 2 * * *", timezone="Europe/Berlin")
def nightly_report():
    pass

kron.start(data_dir)
open(os.path.join(out, "started"), "w").close()
while True:
    time.sleep(0.5)
"""


class App:
    """An application with a live runtime on ``workdir/data``, in a child process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        script = workdir / "app.py"
        script.write_text(textwrap.dedent(APP))
        self.log = open(workdir / "app.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.data_dir), str(workdir)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait(lambda: (workdir / "started").exists() or self.proc.poll() is not None, "the app to start")
        assert self.proc.poll() is None, (workdir / "app.log").read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.log.close()

    def control_token(self) -> str:
        return (self.data_dir / "control.token").read_text().strip()

    def status(self, name: str) -> dict[str, Any]:
        result = subprocess.run(
            [find_kron(), "--data-dir", str(self.data_dir), "job", "status", name, "--json"],
            capture_output=True, text=True, timeout=60, check=True, stdin=subprocess.DEVNULL,
        )
        status: dict[str, Any] = json.loads(result.stdout)
        return status


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    application = App(tmp_path_factory.mktemp("dashboard-app"))
    yield application
    application.stop()


@pytest.fixture(scope="module")
def ui(app: App) -> Iterator[UiProcess]:
    process = UiProcess(app.data_dir, app.workdir)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    session = browser()
    yield session
    session.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (see dashboard_browser.screenshot_dir)."""
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


def by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def test_the_timers_page_lists_what_a_running_app_registered(
    driver: Any, ui: UiProcess, shots: Path
) -> None:
    By = by()
    driver.get(f"{ui.url}/ui/timers")
    rows = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#timers-body tr[data-timer]"), "timer rows")
    names = {row.get_attribute("data-timer") for row in rows}
    assert names == {"heartbeat", "flaky-upload", "doomed-export", "nightly-report"}
    nightly = driver.find_element(By.CSS_SELECTOR, "tr[data-timer='nightly-report']").text
    assert "30 2 * * *" in nightly and "Europe/Berlin" in nightly and "scheduled" in nightly
    # Filtering by name happens on the server: one row left.
    driver.find_element(By.ID, "filter-name").send_keys("nightly")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#timers-body tr[data-timer]")) == 1, "the filter")
    assert "name" not in driver.current_url.split("?")[0]
    driver.get(f"{ui.url}/ui/timers")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#timers-body tr[data-timer]")) == 4, "all rows")
    # Runs counts move without a reload (the page polls).
    first = driver.find_element(By.CSS_SELECTOR, "tr[data-timer='heartbeat'] td.num").text
    wait(lambda: driver.find_element(By.CSS_SELECTOR, "tr[data-timer='heartbeat'] td.num").text != first,
         "the runs count to update without a reload", timeout=15)
    screenshot(driver, shots, "timers")
    driver.set_window_size(390, 844)
    try:
        driver.get(f"{ui.url}/ui/timers")
        wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#timers-body tr[data-timer]"), "rows on a phone")
        # No sideways scrolling on a phone: the table is stacked into cards.
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        screenshot(driver, shots, "timers-phone")
        for page, ready in (("timers/flaky-upload", "#run-chart"), ("runs", "#dead")):
            driver.get(f"{ui.url}/ui/{page}")
            wait(functools.partial(driver.find_elements, By.CSS_SELECTOR, ready), f"{page} on a phone")
            assert driver.execute_script(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1"), page
    finally:
        driver.set_window_size(1280, 900)


def test_a_timer_page_shows_its_chart_and_a_failed_runs_traceback(
    driver: Any, ui: UiProcess, shots: Path
) -> None:
    By = by()
    driver.get(f"{ui.url}/ui/timers/flaky-upload")
    failed_point = "#run-chart circle.pt.failed"
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, failed_point), "a failed run on the chart")
    assert driver.find_elements(By.CSS_SELECTOR, "#run-chart circle.pt.succeeded")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#next-fires li")) == 10
    assert driver.find_element(By.ID, "explanation").text.strip()
    assert "[object" not in driver.find_element(By.ID, "main").text
    failed = driver.find_element(By.CSS_SELECTOR, "#history tr[data-kind='RUN_FAILED'] details")
    failed.find_element(By.TAG_NAME, "summary").click()
    traceback = failed.find_element(By.CSS_SELECTOR, "pre.traceback").text
    assert "Traceback" in traceback
    assert "ConnectionError: upstream not ready" in traceback
    # A reader of `kron ui` without the control token is offered no action.
    assert not driver.find_elements(By.CSS_SELECTOR, "button[data-action]")
    screenshot(driver, shots, "timer")
    driver.get(f"{ui.url}/ui/timers/nightly-report")
    wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#next-fires li")) == 10, "the next fire times")
    assert "+01:00 CET" in driver.find_element(By.ID, "next-fires").text


def test_the_runs_page_shows_runs_in_progress_and_dead_runs(
    driver: Any, ui: UiProcess, shots: Path
) -> None:
    By = by()
    driver.get(f"{ui.url}/ui/runs")
    dead = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "table#dead tbody tr"), "dead runs")
    assert "doomed-export" in dead[0].text
    dead[0].find_element(By.TAG_NAME, "summary").click()
    assert "ValueError" in dead[0].find_element(By.CSS_SELECTOR, "pre.traceback").text
    # Every dead run of the day is counted; fewer than a page of them: all listed, no "more".
    with urllib.request.urlopen(f"{ui.url}/ui/api/activity", timeout=10) as answer:
        activity = json.load(answer)
    assert 0 < len(activity["dead"]) == activity["dead_total"] < 100, activity["dead_total"]
    assert {d["timer"] for d in activity["dead"]} == {"doomed-export"}
    ats = [d["at"] for d in activity["dead"]]
    assert ats == sorted(ats, reverse=True)
    assert not driver.find_elements(By.ID, "dead-more")
    assert "null" not in driver.find_element(By.ID, "main").text
    screenshot(driver, shots, "runs")


def test_pause_from_the_page_pauses_the_timer(driver: Any, ui: UiProcess, app: App, shots: Path) -> None:
    By = by()
    sign_in(driver, ui.url, app.control_token())
    driver.get(f"{ui.url}/ui/timers/heartbeat")
    wait(lambda: driver.find_element(By.ID, "action-pause"), "the pause button").click()
    wait(lambda: driver.find_element(By.ID, "confirm").get_attribute("open") is not None, "the confirmation")
    screenshot(driver, shots, "confirm")
    driver.find_element(By.ID, "confirm-ok").click()
    wait(lambda: driver.find_element(By.ID, "timer-state").text == "paused", "the page to show paused")
    assert app.status("heartbeat")["state"] == "paused"
    driver.find_element(By.ID, "action-resume").click()
    driver.find_element(By.ID, "confirm-ok").click()
    wait(lambda: app.status("heartbeat")["state"] != "paused", "kron job status to agree it resumed")
    assert "allowed" in ui.output()


# -- server mode --------------------------------------------------------------------------------

READER = "reader-secret-token"
OPERATOR = "operator-secret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerNode]:
    root = tmp_path_factory.mktemp("dashboard-server")
    node = ServerNode(root / "data", root).start()
    node.write_tokens([
        {"name": "alice-reader", "token": READER, "role": "reader"},
        {"name": "olga-operator", "token": OPERATOR, "role": "operator"},
    ])
    for body in (
        {"name": "invoice-run", "task": "billing.invoice", "cron": "0 6 * * 1-5",
         "timezone": "America/New_York", "payload": {"batch": 500}},
        {"name": "cache-warm", "task": "web.warm", "every": "30s"},
    ):
        status, answer = node.http("POST", "/v1/timers", body)
        assert status == 200, answer
    yield node
    node.stop()


def test_a_reader_token_sees_no_write_buttons_and_a_forged_write_is_refused_and_audited(
    driver: Any, server: ServerNode, shots: Path
) -> None:
    By = by()
    driver.delete_all_cookies()
    driver.get(f"{server.url}/ui/timers")
    wait(lambda: driver.current_url.endswith("/ui/login"), "the login page")
    screenshot(driver, shots, "login")
    sign_in(driver, server.url, READER)
    # The token is in an HttpOnly cookie: the page's script cannot read it, and no URL holds it.
    assert READER not in driver.execute_script("return document.cookie")
    assert READER not in driver.current_url
    driver.get(f"{server.url}/ui/timers/invoice-run")
    wait(lambda: driver.find_element(By.ID, "timer-name").text == "invoice-run", "the timer page")
    assert not driver.find_elements(By.CSS_SELECTOR, "button[data-action]")
    screenshot(driver, shots, "server-timer-reader")
    # A write forged from the page itself, CSRF token and all: the role refuses it.
    answer = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/ui/api/session').then(r => r.json()).then(s =>
          fetch('/ui/api/timers/invoice-run/pause', {method: 'POST', headers: {'X-Kron-CSRF': s.csrf}}))
          .then(r => r.json().then(body => done({status: r.status, body})));
    """)
    assert answer["status"] == 403, answer
    # A cross-site request carrying the session cookie, without the CSRF token: refused too.
    cookie = driver.get_cookie("kron_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    request = urllib.request.Request(f"{server.url}/ui/api/timers/invoice-run/pause", data=b"", method="POST")
    request.add_header("Cookie", f"kron_ui_session={cookie['value']}")
    request.add_header("Origin", "http://evil.example")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    refused.value.close()
    status, timer = server.http("GET", "/v1/timers/invoice-run")
    assert status == 200 and timer["state"] == "scheduled"
    records = [r for r in server.audit() if r.get("path") == "/ui/api/timers/invoice-run/pause"]
    assert [r["status"] for r in records] == [403, 403]
    assert all(r["decision"] == "refused" for r in records)
    assert records[0]["actor"] == "alice-reader" and records[0]["role"] == "reader"
    verify = subprocess.run(
        [find_kron(), "--data-dir", str(server.data_dir), "audit", "verify"],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert verify.returncode == 0, verify.stderr


def test_an_operator_pauses_from_the_server_dashboard_and_sees_the_cluster(
    driver: Any, server: ServerNode, shots: Path
) -> None:
    By = by()
    driver.delete_all_cookies()
    sign_in(driver, server.url, OPERATOR)
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "tr[data-timer='invoice-run']"), "the timers")
    screenshot(driver, shots, "server-timers")
    driver.get(f"{server.url}/ui/timers/cache-warm")
    wait(lambda: driver.find_element(By.ID, "action-pause"), "the pause button").click()
    driver.find_element(By.ID, "confirm-ok").click()
    wait(lambda: driver.find_element(By.ID, "timer-state").text == "paused", "paused")
    status, timer = server.http("GET", "/v1/timers/cache-warm")
    assert status == 200 and timer["state"] == "paused"
    allowed = [r for r in server.audit() if r.get("path") == "/ui/api/timers/cache-warm/pause"]
    assert [(r["status"], r["decision"], r["actor"]) for r in allowed] == [(200, "allowed", "olga-operator")]
    driver.get(f"{server.url}/ui/cluster")
    members = wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#members tbody tr"), "the members")
    headers = [th.text.lower() for th in driver.find_elements(By.CSS_SELECTOR, "#members th")]
    assert headers[:5] == ["node", "role", "term", "matched index", "lag (entries)"], headers
    status, cluster = server.http("GET", "/v1/cluster/status")
    assert status == 200, cluster
    page = driver.find_element(By.ID, "main").text
    assert "[object" not in page and "null" not in page, page
    assert "Term" in page and "Applied index" in page, page
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    cells = [td.text for td in members[0].find_elements(By.TAG_NAME, "td")]
    # The only member leads; the leader measures its term, matched index and lag (0).
    assert cells[:5] == [cluster["node_id"], "leader",
                         str(cluster["term"]), str(cluster["members"][0]["matched_index"]), "0"], cells
    screenshot(driver, shots, "cluster")
