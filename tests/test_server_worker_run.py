"""``kron.Worker.run`` (the polling loop and its task threads), ``Client.schedule_many``, and the
transport's own HTTP/1.1 connection, against a real ``kron server``."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import kron
from kron._http import Transport
from server_node import ServerNode

#: Bound on every wait for the server or the worker to do something.
WAIT = 30.0


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
    client = kron.Client(server.url, token=server.admin_token)
    try:
        yield client
    finally:
        client.close()


def past(seconds: float = 1.0) -> str:
    instant = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
    return instant.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_in_thread(worker: kron.Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name="test-worker-run", daemon=True)
    thread.start()
    return thread


def wait_until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {WAIT}s waiting for {what}"
        time.sleep(0.02)


def stop(worker: kron.Worker, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(timeout=WAIT)
    assert not thread.is_alive()


def succeeded(client: kron.Client, names: list[str]) -> int:
    statuses = [client.status(name) for name in names]
    return sum(1 for s in statuses if s is not None and s["last_status"] == "OK")


def test_run_never_exceeds_its_concurrency_and_runs_slow_tasks_side_by_side(
    server: ServerNode, client: kron.Client
) -> None:
    names = [f"slow-{i}" for i in range(12)]
    client.schedule_many([{"name": n, "task": "slow", "at": past()} for n in names])
    worker = kron.Worker(server.url, token=server.admin_token, concurrency=3)
    lock = threading.Lock()
    running = 0
    most = 0
    done: list[int] = []

    @worker.task("slow")
    def slow(payload: Any) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.15)
        with lock:
            running -= 1
            done.append(1)

    thread = run_in_thread(worker)
    try:
        wait_until(lambda: len(done) == len(names), "every slow run")
    finally:
        stop(worker, thread)
    # Three at once, never four: each poll claims only free slots, and a poll's runs start side
    # by side on the task threads (a run does not wait behind another's sleep).
    assert most == 3
    wait_until(lambda: succeeded(client, names) == len(names), "every outcome reported")


def test_run_serves_sync_async_and_context_tasks_and_reports_failures(
    server: ServerNode, client: kron.Client
) -> None:
    due = past(2.0)
    client.schedule_many(
        [
            {"name": "plain", "task": "plain", "at": due, "payload": {"n": 1}},
            {"name": "ctx", "task": "ctx", "at": due, "payload": [1, 2]},
            {"name": "aio", "task": "aio", "at": due, "payload": "a"},
            {"name": "boom", "task": "boom", "at": due, "max_attempts": 1},
        ]
    )
    worker = kron.Worker(server.url, token=server.admin_token, concurrency=4, worker_id="w-run")
    seen: dict[str, Any] = {}

    @worker.task("plain")
    def plain(payload: Any) -> None:
        seen["plain"] = payload

    @worker.task("ctx")
    def ctx(payload: Any, context: dict[str, Any]) -> None:
        seen["ctx"] = (payload, context)

    @worker.task("aio")
    async def aio(payload: Any, context: dict[str, Any]) -> None:
        seen["aio"] = (payload, context["attempt"])

    @worker.task("boom")
    def boom(payload: Any) -> None:
        raise ValueError("no such thing")

    thread = run_in_thread(worker)
    try:
        wait_until(lambda: len(seen) == 3, "the three tasks")
        wait_until(
            lambda: (s := client.status("boom")) is not None and s["last_status"] not in (None, "OK"),
            "the failed outcome",
        )
        wait_until(lambda: succeeded(client, ["plain", "ctx", "aio"]) == 3, "the three outcomes")
    finally:
        stop(worker, thread)
    assert seen["plain"] == {"n": 1}
    assert seen["aio"] == ("a", 1)
    payload, context = seen["ctx"]
    assert payload == [1, 2]
    assert context["timer_id"] == "ctx"
    assert context["attempt"] == 1
    assert isinstance(context["fencing_token"], int)
    assert context["scheduled_at"] == dt.datetime.fromisoformat(due.replace("Z", "+00:00"))
    assert context["idempotency_key"] == f"ctx:{context['scheduled_at'].isoformat()}"
    claimed = [e for e in client.history("ctx") if e["kind"] == "RUN_CLAIMED"]
    assert claimed[0]["worker_id"] == "w-run"
    assert claimed[0]["fencing_token"] == context["fencing_token"]
    failed = [e for e in client.history("boom") if e["kind"] == "RUN_FAILED"]
    assert "ValueError: no such thing" in failed[0]["error"]
    assert "Traceback" in failed[0]["error"]


def test_schedule_many_creates_every_timer_and_answers_in_order(client: kron.Client) -> None:
    statuses = client.schedule_many(
        [
            {"name": "m1", "task": "t", "every": "30m", "payload": {"k": 1}},
            {"name": "m2", "task": "t", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
            {"name": "m3", "task": "u", "after": dt.timedelta(hours=1), "max_attempts": 5},
        ]
    )
    assert [s["id"] for s in statuses] == ["m1", "m2", "m3"]
    assert statuses[0]["payload"] == {"k": 1}
    assert statuses[1]["schedule"] == client.status("m2")["schedule"]  # type: ignore[index]
    assert statuses[2]["max_attempts"] == 5
    assert isinstance(statuses[0]["next_run_at"], dt.datetime)
    # The same as schedule() answers for the same timer.
    one = client.schedule("m1", task="t", every="30m", payload={"k": 1})
    assert {k: v for k, v in one.items() if k != "updated_at"} == {
        k: v for k, v in client.status("m1").items() if k != "updated_at"  # type: ignore[union-attr]
    }
    assert client.schedule_many([]) == []
    assert [t["id"] for t in client.list()] == ["m1", "m2", "m3"]


def test_schedule_many_refuses_a_bad_item_by_index_and_writes_nothing(client: kron.Client) -> None:
    good = {"name": "g1", "task": "t", "every": "1m"}
    with pytest.raises(ValueError, match=r"timers\[1\].*max_attempts") as bad:
        client.schedule_many([good, {"name": "g2", "task": "t", "every": "1m", "max_attempts": 0}])
    assert isinstance(bad.value, kron.InvalidArgumentError)
    assert bad.value.arg == "timers[1].max_attempts"
    # What only the server reads (a duration's text) is refused by it, naming the item.
    with pytest.raises(ValueError, match=r"invalid timers\[1\] \(name \"g2\"\).*soon"):
        client.schedule_many([good, {"name": "g2", "task": "t", "every": "soon"}])
    with pytest.raises(ValueError, match=r"timers\[0\]: unknown argument 'evry'") as unknown:
        client.schedule_many([{"name": "g3", "task": "t", "evry": "1m"}])
    assert unknown.value.arg == "timers[0].evry"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"timers\[0\]: task is required"):
        client.schedule_many([{"name": "g4", "every": "1m"}])
    with pytest.raises(TypeError, match=r"timers\[1\] must be a dict"):
        client.schedule_many([good, "g5"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="iterable of dicts"):
        client.schedule_many(good)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="more than 1000"):
        client.schedule_many({"name": f"n{i}", "task": "t", "every": "1m"} for i in range(1001))
    # Refused by the server (a name given twice): named by index too, and nothing written.
    with pytest.raises(ValueError, match=r"timers\[2\] \(name \"g1\"\).*twice"):
        client.schedule_many([good, {"name": "g6", "task": "t", "every": "1m"}, good])
    assert client.list() == []


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        _Handler.connections.append(self.client_address[1])
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"echo": ', body, b"}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            answer = b'{"closing": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer)
            self.close_connection = True
        else:
            answer = b'{"error": "bad thing", "field": "thing"}'
            self.send_response(400)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def test_the_transport_reads_chunks_follows_connection_close_and_reuses_connections() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    serving = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    transport = Transport(f"http://127.0.0.1:{httpd.server_address[1]}", token="t", timeout=5.0)
    try:
        _Handler.connections.clear()
        assert transport.request("POST", "/chunked", [1, 2]) == {"echo": [1, 2]}
        assert transport.request("POST", "/chunked", {"a": "b"}) == {"echo": {"a": "b"}}
        # Kept alive: both requests came on one connection.
        assert len(set(_Handler.connections)) == 1
        assert transport.request("POST", "/close", None) == {"closing": True}
        # The server closed it: the next request opens a new one.
        assert transport.request("POST", "/chunked", 3) == {"echo": 3}
        assert len(set(_Handler.connections)) == 2
        with pytest.raises(kron.InvalidArgumentError, match="bad thing") as bad:
            transport.request("POST", "/bad", {})
        assert bad.value.arg == "thing"
    finally:
        transport.close()
        httpd.shutdown()
        httpd.server_close()
        serving.join(timeout=5)
