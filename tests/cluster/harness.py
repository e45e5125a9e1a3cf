"""A cluster of real `kron server` processes on loopback, with a fault proxy in front of each
node's Raft port, for the failure matrix (docs/cluster.md) and the chaos run.

Node i (from 1) is ``n<i>`` on 127.0.0.<i+1>: its HTTP API, its Raft listener and its proxy all
bind that IP, on free ports chosen once (a restarted node keeps its addresses, as the membership
names them). The address every peer knows for a node's Raft is its proxy's, so that:

* cutting everything *to* node X is a mode of X's proxy;
* cutting everything *from* X is a per-source-IP mode of every other proxy (X's Raft client
  connects from X's IP).

The first node bootstraps the cluster once with its proxy's address as its Raft address (so the
membership names the proxy), is stopped, and then runs behind the proxy like the others.

Standard library only (no pytest), so that tools/cluster_chaos.py and bench/failover.py use it
too. Every wait is bounded; :meth:`Cluster.close` kills every process it started and stops every
proxy, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_proxy import BLACKHOLE, DROP, PASS, FaultProxy

#: How long a node may take to print that it serves.
START_WAIT = 30.0
#: How long joined nodes may take to be voters once caught up.
JOIN_WAIT = 20.0
#: The shared admin token of test clusters (also the Raft token).
TOKEN = "cluster-test-token-0123456789"

_SERVING = re.compile(r"serving (http://\S+)")

__all__ = ["BLACKHOLE", "DROP", "PASS", "TOKEN", "Cluster", "ClusterNode", "NotReady", "find_kron", "wait"]


class NotReady(Exception):
    """The build lacks something the cluster needs (a feature not there yet): the message says
    what. Tests turn it into an expected failure, not a pass."""


def find_kron() -> str:
    """The `kron` command line: $KRON_BIN, else the one next to this Python, else on PATH."""
    explicit = os.environ.get("KRON_BIN")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "kron"
    if beside.exists():
        return str(beside)
    found = shutil.which("kron")
    if found:
        return found
    raise RuntimeError("the `kron` command line is not installed (`pip install .`, or set KRON_BIN)")


def wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls ``predicate`` until it answers something truthy (returned); AssertionError after
    ``timeout`` seconds, naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http(
    base: str, method: str, path: str, body: Any = None, *, token: Optional[str] = TOKEN, timeout: float = 5.0
) -> tuple[int, Any]:
    """One request; answers (status, decoded JSON or text). A node that does not answer (refused,
    reset, timed out) gives status 0 and the error's text."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        # URLError, refused, reset, timeout; http.client.RemoteDisconnected is an OSError too.
        return 0, str(exc)
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text.decode("utf-8", "replace")


class ClusterNode:
    """One node: its addresses, data directory, process and Raft proxy."""

    def __init__(self, index: int, root: Path, env: dict[str, str], proxied: bool = True) -> None:
        self.index = index
        self.name = f"n{index}"
        self.ip = f"127.0.0.{index + 1}"
        self.http_port = free_port(self.ip)
        self.raft_port = free_port(self.ip)
        self.proxy = FaultProxy((self.ip, free_port(self.ip)), (self.ip, self.raft_port))
        self.data_dir = root / self.name
        self.log_dir = root / f"{self.name}-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.proxied = proxied
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.http_port}"

    @property
    def http_addr(self) -> str:
        return f"{self.ip}:{self.http_port}"

    @property
    def raft_addr(self) -> str:
        """The address the cluster knows this node's Raft by: its proxy (unless unproxied)."""
        return self.proxy.address if self.proxied else f"{self.ip}:{self.raft_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"<{self.name} {self.url} {'up' if self.alive else 'down'}>"

    # -- process ---------------------------------------------------------------------------------

    def spawn(self, *, leader_id: Optional[str] = None, raft_bind: Optional[str] = None) -> None:
        """Starts `kron server start` (returns at once; see :meth:`wait_serving`)."""
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        cmd = [
            find_kron(),
            "--data-dir",
            str(self.data_dir),
            "server",
            "start",
            "--node-id",
            self.name,
            "--http",
            self.http_addr,
            "--raft",
            raft_bind or f"{self.ip}:{self.raft_port}",
            "--cluster-token",
            TOKEN,
        ]
        if leader_id is not None:
            cmd += ["--leader-id", leader_id]
        env = dict(os.environ)
        env.pop("KRON_TOKEN", None)
        env.update(self.env)
        out, err = self.out_path, self.err_path
        with open(out, "wb") as o, open(err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env)

    @property
    def out_path(self) -> Path:
        return self.log_dir / f"start_{self.starts}.out"

    @property
    def err_path(self) -> Path:
        return self.log_dir / f"start_{self.starts}.err"

    def wait_serving(self, timeout: float = START_WAIT) -> None:
        def serving() -> bool:
            if self.out_path.exists() and _SERVING.search(self.out_path.read_text(errors="replace")):
                return True
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}): {self.output()}")
            return False

        try:
            wait(serving, timeout, f"{self.name} to serve")
        except AssertionError:
            self.kill()
            raise

    def start(self, *, leader_id: Optional[str] = None) -> None:
        """Starts (or restarts on its directory) and waits until it serves HTTP."""
        self.spawn(leader_id=leader_id)
        self.wait_serving()

    def kill(self) -> None:
        """SIGKILL by pid, and reap."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> str:
        parts = []
        for path in (self.out_path, self.err_path):
            if path.exists():
                parts.append(f"{path.name}:\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    # -- HTTP ------------------------------------------------------------------------------------

    def http(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return http(self.url, method, path, body, **kwargs)

    def status(self, timeout: float = 2.0) -> Optional[dict[str, Any]]:
        """GET /v1/cluster/status, or None when the node does not answer."""
        code, body = self.http("GET", "/v1/cluster/status", timeout=timeout)
        return body if code == 200 and isinstance(body, dict) else None

    def timers(self) -> Optional[dict[str, dict[str, Any]]]:
        """Every timer as this node has applied it, by name (None when it does not answer)."""
        code, body = self.http("GET", "/v1/timers")
        if code != 200:
            return None
        items = body.get("timers", body) if isinstance(body, dict) else body
        return {str(t["id"]): t for t in items}

    def history(self, timer: str, limit: int = 100_000) -> Optional[list[dict[str, Any]]]:
        code, body = self.http("GET", f"/v1/timers/{timer}/history?limit={limit}")
        if code != 200:
            return None
        return list(body.get("events", body) if isinstance(body, dict) else body)


class Cluster:
    """``size`` nodes, joined into one cluster by :meth:`start`. A context manager.

    ``proxies=False`` joins the nodes by their own Raft addresses (no fault injection, no proxy
    in the path: for measurements)."""

    def __init__(
        self, root: Path, size: int = 3, env: Optional[dict[str, str]] = None, proxies: bool = True
    ) -> None:
        self.root = root
        self.env = dict(env or {})
        self.proxies = proxies
        self.nodes = [ClusterNode(i, root, self.env, proxies) for i in range(1, size + 1)]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def node(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def urls(self) -> str:
        """Every node's URL, comma-separated (what kron.Client and kron.Worker take)."""
        return ",".join(n.url for n in self.nodes)

    # -- forming ---------------------------------------------------------------------------------

    def start(self) -> Cluster:
        """Bootstraps n1, joins the others through the leader, and waits until every node is a
        voter that has applied the leader's commit index. :class:`NotReady` when a joined node
        stays a learner (promotion missing from the build)."""
        first = self.nodes[0]
        if self.proxies:
            # Bootstrap with the proxy's address as the Raft address, so the membership names
            # it...
            first.spawn(raft_bind=first.raft_addr)
            first.wait_serving()
            wait(lambda: (first.status() or {}).get("role") == "leader", START_WAIT, "n1 to bootstrap")
            first.stop()
            # ...then run behind the proxy like every other node.
            for node in self.nodes:
                node.proxy.start()
        first.start()
        self.wait_leader(timeout=START_WAIT)
        for node in self.nodes[1:]:
            node.start(leader_id=first.name)
            self.join(node)
        self.wait_voters(timeout=JOIN_WAIT)
        self.wait_converged()
        return self

    def join(self, node: ClusterNode, timeout: float = 60.0) -> None:
        body = {"node_id": node.name, "http_addr": node.http_addr, "raft_addr": node.raft_addr}

        def joined() -> bool:
            leader = self.leader_node()
            if leader is None:
                return False
            code, answer = leader.http("POST", "/v1/cluster/join", body, timeout=timeout)
            if code == 200:
                return True
            if code in (400, 401, 403, 404, 413):
                raise AssertionError(f"join of {node.name} refused: {code} {answer}")
            return False

        wait(joined, timeout, f"{node.name} to join", interval=0.5)

    def wait_voters(self, timeout: float = JOIN_WAIT) -> None:
        names = {n.name for n in self.nodes}

        def voters() -> bool:
            leader = self.leader_node()
            status = leader.status() if leader else None
            if not status:
                return False
            got = {m["node_id"] for m in status.get("members", []) if m.get("voter")}
            return got == names

        try:
            wait(voters, timeout, "every node to be a voter", interval=0.2)
        except AssertionError as exc:
            raise NotReady(
                "joined nodes are not promoted from learner to voter once caught up "
                f"(issue 16, membership): {exc}"
            ) from None

    # -- observing -------------------------------------------------------------------------------

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The cluster status of every live node that answers, by name."""
        found = {}
        for node in self.nodes:
            if node.alive:
                status = node.status()
                if status is not None:
                    found[node.name] = status
        return found

    def leader_node(self, among: Optional[list[ClusterNode]] = None) -> Optional[ClusterNode]:
        """The node that says it is the leader, when the others among ``among`` (default: every
        live node) that name a leader name it too."""
        pool = [n for n in (among or self.nodes) if n.alive]
        statuses = {n.name: s for n in pool if (s := n.status()) is not None}
        leaders = [name for name, s in statuses.items() if s.get("role") == "leader"]
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        term = statuses[leader].get("term")
        for s in statuses.values():
            if s.get("leader_id") not in (None, leader) and s.get("term", 0) >= term:
                return None
        return self.node(leader)

    def wait_leader(
        self, timeout: float = 15.0, among: Optional[list[ClusterNode]] = None, not_: Optional[str] = None
    ) -> ClusterNode:
        """Waits for a leader (other than ``not_``) among ``among`` (default: the live nodes)."""

        def found() -> Optional[ClusterNode]:
            node = self.leader_node(among)
            return node if node is not None and node.name != not_ else None

        result: ClusterNode = wait(found, timeout, "a leader", interval=0.05)
        return result

    def wait_converged(self, nodes: Optional[list[ClusterNode]] = None, timeout: float = 30.0) -> int:
        """Waits until the given (default: live) nodes have applied the same index, at least the
        leader's commit index when this was called; answers that index."""
        pool = [n for n in (nodes or self.nodes) if n.alive]
        leader = self.leader_node(pool)
        target = (leader.status() or {}).get("commit_index", 0) if leader else 0

        def same() -> Optional[int]:
            applied = set()
            for node in pool:
                status = node.status()
                if status is None:
                    return None
                applied.add(status.get("applied_index"))
            if len(applied) == 1:
                index = applied.pop()
                if isinstance(index, int) and index >= target:
                    return index or -1
            return None

        return int(wait(same, timeout, f"{[n.name for n in pool]} to apply the same index"))

    def raft_sources_distinct(self) -> bool:
        """Whether each node's Raft traffic arrives from its own IP (what partitions by source
        need). Only meaningful once the cluster has exchanged some traffic."""
        seen = set().union(*(n.proxy.sources_seen for n in self.nodes))
        return bool(seen) and seen <= {n.ip for n in self.nodes}

    # -- faults ----------------------------------------------------------------------------------

    def partition(self, isolated: list[ClusterNode], mode: str = DROP) -> None:
        """Cuts ``isolated`` from the other nodes, both ways (they still talk among themselves)."""
        rest = [n for n in self.nodes if n not in isolated]
        for a in isolated:
            for b in rest:
                b.proxy.set_mode(mode, source_ip=a.ip)
                a.proxy.set_mode(mode, source_ip=b.ip)

    def heal(self) -> None:
        for node in self.nodes:
            node.proxy.heal()

    def restart(self, node: ClusterNode) -> None:
        node.kill()
        node.start()

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.proxy.close()
