"""The command line against a server: `kron --server URL --token T job ...` (or KRON_SERVER and
KRON_TOKEN) on a real `kron server`, and `kron server join|leave|status`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import find_kron
from server_node import ServerNode

#: Bound on every wait for a server to do something.
WAIT = 20.0

TOKENS = [
    {"name": "reader", "token": "tok-reader", "role": "reader"},
    {"name": "operator", "token": "tok-operator", "role": "operator"},
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerNode]:
    node = ServerNode(tmp_path / "srv", tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def client(server: ServerNode) -> Iterator[kron.Client]:
    c = kron.Client(server.url, token=server.admin_token)
    try:
        yield c
    finally:
        c.close()


def wait_for(predicate: Any, timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def kron_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Runs `kron` with a clean environment: no server, token or home of the caller's."""
    base = {k: v for k, v in os.environ.items() if k not in ("KRON_SERVER", "KRON_TOKEN", "KRON_HOME")}
    base.update({"COLUMNS": "200", "NO_COLOR": "1", "TZ": "UTC"})
    base.update(env or {})
    return subprocess.run(
        [find_kron(), *args], capture_output=True, text=True, timeout=timeout, check=False, env=base
    )


def remote(server: ServerNode, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return kron_cli("--server", server.url, "--token", token or server.admin_token, *args)


def test_job_commands_against_a_server(server: ServerNode, client: kron.Client) -> None:
    client.schedule("digest", task="send-digest", payload={"to": "ops"}, every="1h")
    client.schedule("report", task="build-report", cron="0 6 * * *", timezone="Europe/Berlin")

    listed = remote(server, "job", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "STATE", "SCHEDULE"]
    assert [r.split()[0] for r in rows] == ["digest", "report"]

    as_json = json.loads(remote(server, "job", "list", "--json").stdout)
    assert as_json["server"] == server.url
    assert [t["id"] for t in as_json["timers"]] == ["digest", "report"]
    assert as_json["timers"][0]["task"] == "send-digest"

    status = remote(server, "job", "status", "digest")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0].split() == ["digest", "scheduled"]
    assert re.search(r"^\s+task\s+send-digest$", status.stdout, re.M), status.stdout
    status_json = json.loads(remote(server, "job", "status", "digest", "--json").stdout)
    assert status_json["payload"] == {"to": "ops"}
    assert status_json["state"] == "scheduled"

    paused = remote(server, "job", "pause", "digest")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith(f"Paused digest on {server.url}")
    assert client.status("digest")["state"] == "paused"
    resumed = remote(server, "job", "resume", "digest", "--json")
    assert json.loads(resumed.stdout) | {"server": None} == {
        "ok": True,
        "op": "resume",
        "timer": "digest",
        "via": "server",
        "server": None,
        "changed": None,
        "run_id": None,
        "pid": None,
    }
    assert client.status("digest")["state"] == "scheduled"

    triggered = json.loads(remote(server, "job", "trigger", "digest", "--json").stdout)
    assert triggered["run_id"]
    history = remote(server, "job", "history", "digest")
    assert history.returncode == 0, history.stderr
    kinds = [line.split()[2] for line in history.stdout.splitlines()[1:]]
    assert kinds[0] == "TIMER_CREATED"
    assert {"TIMER_PAUSED", "TIMER_RESUMED", "RUN_DUE"} <= set(kinds)
    limited = json.loads(remote(server, "job", "history", "digest", "--limit", "1", "--json").stdout)
    assert [e["kind"] for e in limited["events"]] == ["RUN_DUE"]
    assert limited["events"][0]["run_id"] == triggered["run_id"]
    only = json.loads(remote(server, "job", "history", "digest", "--kind", "paused", "--json").stdout)
    assert [e["kind"] for e in only["events"]] == ["TIMER_PAUSED"]

    removed = remote(server, "job", "rm", "report")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"Removed report on {server.url}; its history remains."
    assert client.status("report") is None
    again = remote(server, "job", "status", "report")
    assert again.returncode == 1
    assert 'timer "report" was removed' in again.stderr
    assert "kron job history report" in again.stderr


def test_unknown_timers_and_commands_of_a_directory(server: ServerNode) -> None:
    for args in (["job", "status", "nope"], ["job", "pause", "nope"], ["job", "history", "nope"]):
        result = remote(server, *args)
        assert result.returncode == 1, args
        assert result.stderr.strip() == f'kron: no timer named "nope" on {server.url}', args
    for args, name in (
        (["job", "explain", "x"], "job explain"),
        (["doctor"], "doctor"),
        (["runtime", "status"], "runtime status"),
        (["log", "compact", "--keep-runs", "1"], "log compact"),
    ):
        result = remote(server, *args)
        assert result.returncode == 2, args
        assert f"`kron {name}` works on a data directory only" in result.stderr, result.stderr


def test_environment_and_the_token_file(server: ServerNode, client: kron.Client) -> None:
    client.schedule("env-timer", task="t", every="5m")
    by_env = kron_cli("job", "ls", env={"KRON_SERVER": server.url, "KRON_TOKEN": server.admin_token})
    assert by_env.returncode == 0, by_env.stderr
    assert "env-timer" in by_env.stdout
    # The flag wins over the environment.
    flag_wins = kron_cli(
        "--token", server.admin_token, "job", "ls", env={"KRON_SERVER": server.url, "KRON_TOKEN": "wrong"}
    )
    assert flag_wins.returncode == 0, flag_wins.stderr
    # No token given: the data directory's kron.token.
    by_file = kron_cli("--data-dir", str(server.data_dir), "--server", server.url, "job", "ls")
    assert by_file.returncode == 0, by_file.stderr
    assert "env-timer" in by_file.stdout


def test_token_refusals(server: ServerNode, client: kron.Client, tmp_path: Path) -> None:
    client.schedule("guarded", task="t", every="5m")
    server.write_tokens(TOKENS)
    wait_for(lambda: server.http("GET", "/v1/timers", token="tok-reader")[0] == 200, what="tokens file")

    bad = remote(server, "job", "list", token="not-a-token")
    assert bad.returncode == 1
    assert "refused the token (401 unauthorized)" in bad.stderr
    none = kron_cli("--data-dir", str(tmp_path / "empty"), "--server", server.url, "job", "list")
    assert none.returncode == 1
    assert "needs a token (401 unauthorized)" in none.stderr

    assert remote(server, "job", "list", token="tok-reader").returncode == 0
    refused = remote(server, "job", "pause", "guarded", token="tok-reader")
    assert refused.returncode == 1
    assert "may not run `kron job pause` (403 forbidden)" in refused.stderr
    assert "an operator or admin token" in refused.stderr
    assert client.status("guarded")["state"] == "scheduled"
    assert remote(server, "job", "pause", "guarded", token="tok-operator").returncode == 0
    assert client.status("guarded")["state"] == "paused"


def test_no_server_answers(tmp_path: Path) -> None:
    result = kron_cli("--server", "http://127.0.0.1:9", "--token", "t", "job", "list")
    assert result.returncode == 1
    assert result.stderr.startswith("kron: cannot reach server http://127.0.0.1:9: "), result.stderr
    usage = kron_cli("--server", "ftp://x", "job", "list")
    assert usage.returncode == 2
    assert "invalid server URL" in usage.stderr


def test_cluster_status(server: ServerNode) -> None:
    shown = remote(server, "server", "status")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["n1", "leader"]
    assert re.search(r"^\s+leader\s+n1 at 127\.0\.0\.1:\d+$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^\s+applied index\s+\d+$", shown.stdout, re.M), shown.stdout
    assert any(line.split()[:2] == ["n1", "leader"] for line in lines[1:] if line.startswith("n1"))
    as_json = json.loads(remote(server, "server", "status", "--json").stdout)
    assert as_json["role"] == "leader"
    assert as_json["leader_id"] == "n1"


class SecondNode:
    """A `kron server start --leader-id n1` process: starts empty, waits to be joined."""

    def __init__(self, data_dir: Path, log: Path, token: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("KRON_SERVER", "KRON_TOKEN", "KRON_HOME")}
        self.log = log
        cmd = [
            find_kron(),
            "--data-dir",
            str(data_dir),
            "server",
            "start",
            "--node-id",
            "n2",
            "--leader-id",
            "n1",
            "--http",
            "127.0.0.1:0",
            "--raft",
            "127.0.0.1:0",
            "--cluster-token",
            token,
        ]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        found = wait_for(
            lambda: (
                re.search(r"serving (http://(\S+)) \(Raft (\S+)\)", log.read_text(errors="replace"))
                or self.proc.poll() is not None
            ),
            what="the second node's address",
        )
        assert self.proc.poll() is None, log.read_text()
        self.url, self.http, self.raft = found.group(1), found.group(2), found.group(3)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


def test_join_then_writes_on_the_follower_reach_the_leader(
    server: ServerNode, client: kron.Client, tmp_path: Path
) -> None:
    second = SecondNode(tmp_path / "n2", tmp_path / "n2.log", server.admin_token)
    try:
        joined = remote(server, "server", "join", "n2", "--http", second.http, "--raft", second.raft)
        assert joined.returncode == 0, joined.stderr + second.log.read_text()
        assert joined.stdout.startswith("Node n2 joined the cluster")
        status = json.loads(remote(server, "server", "status", "--json").stdout)
        assert sorted(m["node_id"] for m in status["members"]) == ["n1", "n2"]

        client.schedule("replicated", task="t", every="1h")

        def on_follower(*args: str) -> subprocess.CompletedProcess[str]:
            return kron_cli("--server", second.url, "--token", server.admin_token, *args)

        # The follower serves reads (they may lag) and sends writes on to the leader.
        wait_for(lambda: "replicated" in on_follower("job", "ls").stdout, what="the timer on the follower")
        paused = on_follower("job", "pause", "replicated")
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.startswith(f"Paused replicated on {server.url}")
        assert client.status("replicated")["state"] == "paused"
        followed = json.loads(on_follower("server", "status", "--json").stdout)
        assert followed["node_id"] == "n2"
        assert followed["leader_id"] == "n1"

        left = remote(server, "server", "leave", "n2")
        assert left.returncode == 0, left.stderr
        status = json.loads(remote(server, "server", "status", "--json").stdout)
        assert [m["node_id"] for m in status["members"]] == ["n1"]
    finally:
        second.kill()
