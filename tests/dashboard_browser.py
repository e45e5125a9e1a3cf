"""A real headless Chromium (Debian's `chromium` and `chromium-driver` packages) driven with
Selenium for the dashboard tests, and `kron ui` processes on loopback ports."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, find_kron

#: Where the screenshots docs/dashboard.md shows are kept. The tests write there only when
#: KRON_UPDATE_SCREENSHOTS=1; otherwise into a temporary directory, so that a test run does not
#: rewrite tracked files.
SCREENSHOTS = ROOT / "docs" / "dashboard-img"
UPDATE_SCREENSHOTS = "KRON_UPDATE_SCREENSHOTS"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_SERVING = re.compile(r"serving (http://\S+)/ui")


def browser() -> Any:
    """A headless Chromium session, or a skip (a failure under CI, which installs it)."""
    try:
        from selenium import webdriver
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are not installed (.ci/run installs them)")
        pytest.skip("apt-get install chromium chromium-driver to run the browser tests")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


def wait(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = predicate()
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {last!r}")


def screenshot_dir(scratch: Path) -> Path:
    """docs/dashboard-img when KRON_UPDATE_SCREENSHOTS=1, else `scratch`."""
    return SCREENSHOTS if os.environ.get(UPDATE_SCREENSHOTS) == "1" else scratch


def screenshot(driver: Any, into: Path, name: str) -> Path:
    """Saves the page (the whole page's height) as INTO/NAME.png and checks that it is a PNG
    image of the window's size with something drawn in it."""
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{name}.png"
    width = driver.execute_script("return window.innerWidth")
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 2400)")
    current = driver.get_window_size()
    driver.set_window_size(current["width"], max(current["height"], height + 120))
    time.sleep(0.2)
    assert driver.save_screenshot(str(path)), f"no screenshot saved to {path}"
    driver.set_window_size(current["width"], current["height"])
    assert width > 0
    data = path.read_bytes()
    assert data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG image"
    png_width, png_height = struct.unpack(">II", data[16:24])
    assert png_width >= width and png_height > 0, (png_width, png_height, width)
    # A blank page compresses to almost nothing; a rendered one does not.
    assert len(data) > 5_000, f"{path} looks empty ({len(data)} bytes)"
    return path


def sign_in(driver: Any, base: str, token: str) -> None:
    """Signs in through the login form, as a person does."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/ui/login")
    field = wait(lambda: driver.find_element(By.ID, "token"), "the login form")
    field.send_keys(token)
    driver.find_element(By.ID, "login-submit").click()
    wait(lambda: driver.current_url.endswith("/ui/timers"), "the timers page after sign-in")
    wait(lambda: driver.find_element(By.ID, "viewer").text, "the signed-in viewer")


class UiProcess:
    """A `kron ui` process on a loopback port (port 0: the bound address is read from its
    first output line)."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        self.log_path = log_dir / "ui.out"
        self.log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [find_kron(), "--data-dir", str(data_dir), "ui", "--listen", "127.0.0.1:0"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        found = wait(lambda: _SERVING.search(self.log_path.read_text(errors="replace")), "kron ui to serve")
        self.url: str = found.group(1)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


def have_browser() -> bool:
    return shutil.which("chromium") is not None
