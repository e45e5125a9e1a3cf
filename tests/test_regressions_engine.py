"""Scheduling decisions found wrong by an adversarial pass: re-registering a timer while it runs,
resuming a timer without a function, jitter against the interval, and catch-up of jittered
occurrences."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import Children, Recorder, count, find_kron, hold, kinds_of, wait_until

# ---------------------------------------------------------------------------
# a changed definition while a run is in progress
# ---------------------------------------------------------------------------

CHANGES: dict[str, dict[str, Any]] = {
    "every": {"every": "301ms"},
    "cron": {"cron": "* * * * * *"},
    "timezone": {"every": "300ms", "timezone": "Europe/Berlin"},
    "jitter": {"every": "300ms", "jitter": "50ms"},
}


@pytest.mark.parametrize("overlap", ["delay", "skip"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_definition_mid_run_never_runs_the_timer_alongside_itself(
    name: str, data_dir: str, recorder: Recorder, change: str, overlap: str
) -> None:
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="300ms", overlap=overlap)
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 1)
    hold(0.2)  # mid-run
    kron.schedule(name, recorder.callback(name, sleep=1.0), overlap=overlap, **CHANGES[change])
    hold(3.5)
    assert recorder.max_concurrency(name) == 1
    assert recorder.n(name) >= 2  # it goes on


def test_several_changes_mid_run_keep_one_run_at_a_time(name: str, data_dir: str, recorder: Recorder) -> None:
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="300ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 1)
    for every in ("301ms", "302ms", "303ms"):
        hold(0.3)
        kron.schedule(name, recorder.callback(name, sleep=1.0), every=every)
    hold(3.5)
    assert recorder.max_concurrency(name) == 1


def test_delay_counts_the_changed_interval_from_the_finish(
    name: str, data_dir: str, recorder: Recorder
) -> None:
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="300ms")
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 1)
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="1500ms")
    # No next run while the first is in progress; then 1.5 s after it finished.
    assert kron.status(name)["next_run_at"] is None
    wait_until(lambda: recorder.n(name) >= 2, timeout=20)
    first, second = recorder.calls_of(name)[:2]
    assert first["end"] is not None
    assert second["start"] - first["end"] >= 1.4


@pytest.mark.parametrize(("before", "after"), [("allow", "delay"), ("skip", "delay"), ("allow", "skip")])
def test_a_change_of_overlap_mid_run_ends_in_one_run_at_a_time(
    name: str, data_dir: str, recorder: Recorder, before: str, after: str
) -> None:
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="300ms", overlap=before)
    kron.start(data_dir)
    wait_until(lambda: recorder.n(name) >= 1)
    hold(0.5)
    kron.schedule(name, recorder.callback(name, sleep=1.0), every="300ms", overlap=after)
    changed_at = len(recorder.calls_of(name))
    hold(1.5)  # the runs in flight when it changed are over
    settled = len(recorder.calls_of(name))
    hold(3.0)
    calls = recorder.calls_of(name)[settled:]
    assert len(calls) >= 2, (changed_at, settled)
    # From then on, each run begins after the one before it ended.
    for earlier, later in zip(calls, calls[1:]):
        assert earlier["end"] is not None and later["start"] >= earlier["end"]


# ---------------------------------------------------------------------------
# resuming a timer whose function is not registered
# ---------------------------------------------------------------------------

CREATE = """
data_dir, name = sys.argv[1], sys.argv[2]
kron.schedule(name, fn=lambda: None, every="200ms")
kron.start(data_dir)
kron.shutdown()
finish(0)
"""

PAUSE = """
data_dir, name = sys.argv[1], sys.argv[2]
kron.schedule(name, fn=lambda: None, every="200ms")
kron.start(data_dir)
kron.pause(name)
kron.shutdown()
finish(0)
"""


def test_resuming_a_paused_timer_without_a_function_leaves_it_orphaned(
    name: str, data_dir: str, children: Children, recorder: Recorder
) -> None:
    children.run(PAUSE, data_dir, name)
    kron.start(data_dir)  # this process does not register it
    assert kron.status(name)["state"] == "paused"
    with pytest.raises(kron.TimerNotRunnableError):
        kron.trigger(name)
    kron.resume(name)
    assert kron.status(name)["state"] == "orphaned"
    hold(1.5)
    assert kron.status(name)["state"] == "orphaned"
    assert count(name, "RUN_STARTED") == 0
    assert count(name, "RUN_DEAD") == 0
    assert kinds_of(name)[-2:] == ["TIMER_RESUMED", "TIMER_ORPHANED"]
    # Registering it revives it.
    kron.schedule(name, recorder.callback(name), every="200ms")
    # Its occurrence passed while it was orphaned, so it may already be running.
    assert kron.status(name)["state"] in ("scheduled", "running")
    wait_until(lambda: recorder.n(name) >= 1)
    assert count(name, "RUN_DEAD") == 0


def test_a_paused_orphan_resumed_stays_orphaned(name: str, data_dir: str, children: Children) -> None:
    children.run(CREATE, data_dir, name)
    kron.start(data_dir)
    assert kron.status(name)["state"] == "orphaned"
    kron.pause(name)
    kron.resume(name)
    assert kron.status(name)["state"] == "orphaned"
    hold(1.0)
    assert count(name, "RUN_STARTED") == 0
    assert count(name, "RUN_DEAD") == 0


APP = """
data_dir, ready = sys.argv[1], sys.argv[2]
kron.schedule("keep", fn=lambda: None, every="1h")
kron.start(data_dir)
touch(ready)
while True:
    time.sleep(0.1)
"""


_kron_bin = find_kron


def _cli(data_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KRON_HOME", "COLUMNS")}
    env.update(TZ="UTC", NO_COLOR="1")
    return subprocess.run(
        [_kron_bin(), "--data-dir", data_dir, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_cli_resume_of_a_timer_without_a_function_leaves_it_orphaned(
    name: str, data_dir: str, tmp_path: Path, children: Children
) -> None:
    children.run(PAUSE, data_dir, name)
    ready = tmp_path / "ready"
    app = children.spawn(APP, data_dir, ready)
    children.wait_for_file(app, ready)
    resumed = _cli(data_dir, "job", "resume", name)
    assert resumed.returncode == 0, resumed.stderr
    assert "panicked" not in resumed.stderr

    def state() -> Any:
        shown = _cli(data_dir, "job", "status", name, "--json")
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)["state"]

    assert state() == "orphaned"
    hold(1.5)
    assert state() == "orphaned"
    history = _cli(data_dir, "job", "history", name, "--json")
    assert history.returncode == 0, history.stderr
    assert "RUN_STARTED" not in history.stdout and "RUN_DEAD" not in history.stdout
    trigger = _cli(data_dir, "job", "trigger", name)
    assert trigger.returncode != 0
    children.kill(app)


# ---------------------------------------------------------------------------
# jitter
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("every", "jitter"), [("1s", "1s"), ("1s", "5s"), ("200ms", "1m")])
def test_jitter_as_long_as_the_interval_is_rejected(name: str, every: str, jitter: str) -> None:
    with pytest.raises(ValueError) as info:
        kron.schedule(name, fn=lambda: None, every=every, jitter=jitter)
    assert isinstance(info.value, kron.KronError)
    message = str(info.value)
    assert "jitter" in message and every in message and jitter in message, message
    assert kron.status(name) is None


def test_jitter_shorter_than_the_interval_is_accepted(name: str) -> None:
    kron.schedule(name, fn=lambda: None, every="1s", jitter="999ms")


def test_a_jittered_occurrence_is_never_taken_for_a_missed_one(
    name: str, data_dir: str, recorder: Recorder
) -> None:
    # A cron every second with up to 8 s of jitter: most occurrences are planned while the one
    # before them has yet to fire.
    kron.schedule(
        name, recorder.callback(name), cron="* * * * * *", jitter="8s", overlap="allow", catchup="skip"
    )
    kron.start(data_dir)
    hold(12.0)
    assert count(name, "RUN_MISSED") == 0
    assert count(name, "RUN_SUCCEEDED") >= 2
