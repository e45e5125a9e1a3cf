"""Server mode end to end: real `kron server` processes on loopback ports, driven through
``kron.Client``, ``kron.Worker``, raw HTTP and the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kron
from conftest import Children, find_kron
from server_node import ServerNode, sha256_hex

#: Bound on every wait for the server to do something.
WAIT = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerNode]:
    node = ServerNode(tmp_path / "srv", tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.kill()


_clients: list[kron.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Closes every test's clients at its end: a client held by a stored exception's traceback
    is collected with it as cyclic garbage, where its socket may be finalized (and warn) first."""
    yield
    while _clients:
        _clients.pop().close()


def client_of(node: ServerNode, token: str | None = None) -> kron.Client:
    client = kron.Client(node.url, token=token or node.admin_token)
    _clients.append(client)
    return client


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def run_until(worker: kron.Worker, predicate: Any, timeout: float = WAIT) -> None:
    """``worker.run_once`` (short polls) until ``predicate()`` holds, bounded in time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        worker.run_once(timeout=0.5)


def wait_for(predicate: Any, timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def kron_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_kron(), *args], capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------
# the seed's example
# ---------------------------------------------------------------------------


def test_seed_example_end_to_end(server: ServerNode) -> None:
    client = client_of(server)
    status = client.schedule("email_digest", every="1s", task="send_digest", payload={"list": "daily"})
    assert status["task"] == "send_digest"
    assert status["payload"] == {"list": "daily"}

    worker = kron.Worker(server.url, token=server.admin_token, worker_id="worker_1")
    seen: list[Any] = []

    @worker.task("send_digest")
    def send_digest(payload: Any) -> None:
        seen.append(payload)

    run_until(worker, lambda: seen)
    assert seen[0] == {"list": "daily"}

    def succeeded() -> list[dict[str, Any]]:
        return [e for e in client.history("email_digest") if e["kind"] == "RUN_SUCCEEDED"]

    wait_for(succeeded, what="RUN_SUCCEEDED")
    history = client.history("email_digest")
    order = kinds(history)
    assert "RUN_CLAIMED" in order
    assert order.index("RUN_CLAIMED") < order.index("RUN_SUCCEEDED")
    claimed = next(e for e in history if e["kind"] == "RUN_CLAIMED")
    assert claimed["worker_id"] == "worker_1"
    assert isinstance(claimed["fencing_token"], int)
    final = client.status("email_digest")
    assert final is not None and final["run_count"] >= 1 and final["last_status"] == "OK"
    assert [t["id"] for t in client.list()] == ["email_digest"]

    verify = kron_cli("--data-dir", str(server.data_dir), "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    # The CLI reads the server's directory (without taking its lock).
    listed = kron_cli("--data-dir", str(server.data_dir), "job", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "email_digest" in listed.stdout


# ---------------------------------------------------------------------------
# leases and fencing
# ---------------------------------------------------------------------------

SLOW_WORKER = """
url, token, marker = sys.argv[1:4]
worker = kron.Worker(url, token=token, worker_id="doomed", lease_seconds=2)

@worker.task("slow")
def slow(payload, context):
    dump(marker, {"run_id": context["run_id"], "attempt": context["attempt"],
                  "idempotency_key": context["idempotency_key"]})
    time.sleep(60)

worker.run()
"""


@pytest.mark.slow
def test_killed_worker_loses_its_lease_and_its_late_completion_is_refused(
    server: ServerNode, children: Children, tmp_path: Path
) -> None:
    client = client_of(server)
    client.schedule("lease", after="100ms", task="slow", payload={"n": 1}, max_attempts=3)
    marker = tmp_path / "claimed.json"
    doomed = children.spawn(SLOW_WORKER, server.url, server.admin_token, str(marker))
    children.wait_for_file(doomed, marker, timeout=WAIT)
    first = json.loads(marker.read_text())
    children.kill(doomed)

    claims = [e for e in client.history("lease") if e["kind"] == "RUN_CLAIMED"]
    assert claims and claims[0]["worker_id"] == "doomed"
    first_token = claims[0]["fencing_token"]

    rescuer = kron.Worker(server.url, token=server.admin_token, worker_id="rescuer", lease_seconds=5)
    done: list[dict[str, Any]] = []

    @rescuer.task("slow")
    def slow(payload: Any, context: dict[str, Any]) -> None:
        done.append(context)

    run_until(rescuer, lambda: done, timeout=30.0)
    assert done[0]["attempt"] >= 2
    # Another attempt of the same due run: the key a task deduplicates on is the same.
    assert done[0]["idempotency_key"] == first["idempotency_key"]
    history = wait_for(
        lambda: (h := client.history("lease")) and "RUN_SUCCEEDED" in kinds(h) and h,
        what="the retry to succeed",
    )
    order = kinds(history)
    expired = [e for e in history if e["kind"] == "RUN_LEASE_EXPIRED"]
    assert expired and expired[0]["worker_id"] == "doomed", order
    claims = [e for e in history if e["kind"] == "RUN_CLAIMED"]
    assert [c["worker_id"] for c in claims] == ["doomed", "rescuer"], order
    assert claims[1]["fencing_token"] > first_token
    assert order.index("RUN_LEASE_EXPIRED") < order.index("RUN_SUCCEEDED")

    # The first worker's late completion, as it would have sent it.
    status, answer = server.http(
        "POST",
        f"/v1/runs/{first['run_id']}/succeed",
        {"worker_id": "doomed", "fencing_token": first_token},
    )
    assert status == 400, answer
    assert "stale fencing token" in answer["error"] or "run not active" in answer["error"]
    late = [e for e in client.history("lease") if e["kind"] == "RUN_SUCCEEDED"]
    assert len(late) == 1
    refused = [r for r in server.audit() if r["path"] == f"/v1/runs/{first['run_id']}/succeed"]
    assert refused and refused[-1]["status"] == 400, refused


def test_a_failing_task_is_a_failed_attempt_with_its_traceback(server: ServerNode) -> None:
    client = client_of(server)
    client.schedule("fails", task="boom", after="100ms", max_attempts=1)
    client.schedule("awaits", task="later", after="100ms", payload=[1, 2])
    # A fractional lease: the server counts whole seconds, the worker rounds up.
    worker = kron.Worker(server.url, token=server.admin_token, lease_seconds=0.5)
    calls: list[str] = []

    @worker.task("boom")
    def boom(payload: Any) -> None:
        calls.append("boom")
        raise RuntimeError("kaboom")

    @worker.task("later")
    async def later(payload: Any, context: dict[str, Any]) -> None:
        calls.append(f"later {payload} {context['attempt']}")

    run_until(worker, lambda: len(calls) >= 2)
    assert sorted(calls) == ["boom", "later [1, 2] 1"]
    assert worker.run_once(timeout=0.2) is False
    failed = wait_for(
        lambda: [e for e in client.history("fails") if e["kind"] == "RUN_FAILED"], what="RUN_FAILED"
    )
    assert "RuntimeError: kaboom" in failed[0]["error"]
    assert "Traceback" in failed[0]["error"]
    wait_for(lambda: "RUN_SUCCEEDED" in kinds(client.history("awaits")), what="the async task")
    # As in embedded mode, a finished one-shot cannot be paused: a RuntimeError (409).
    with pytest.raises(RuntimeError, match="one-shot that has finished") as finished:
        client.pause("awaits")
    assert isinstance(finished.value, kron.TimerNotRunnableError)


@pytest.mark.slow
def test_a_lease_expiry_is_counted_in_metrics(server: ServerNode) -> None:
    client = client_of(server)
    client.schedule("expires", task="e", after="100ms")
    server.http("POST", "/v1/workers/register", {"worker_id": "gone", "tasks": ["e"], "lease_seconds": 1})
    _, run = server.http("POST", "/v1/workers/poll", {"worker_id": "gone", "tasks": ["e"], "wait_ms": 5000})
    assert isinstance(run, dict), run
    wait_for(lambda: "RUN_LEASE_EXPIRED" in kinds(client.history("expires")), what="RUN_LEASE_EXPIRED")
    status, metrics = server.http("GET", "/metrics")
    assert status == 200
    assert "kron_lease_expiries_total 1" in metrics
    assert 'kron_runs_total{outcome="lease_expired"} 1' in metrics


# ---------------------------------------------------------------------------
# security: every refusal has its status and its audit record
# ---------------------------------------------------------------------------

HOUR_AGO = "2020-01-01T00:00:00Z"
FAR_FUTURE = "2999-01-01T00:00:00Z"
TOKENS = [
    {"name": "reader", "token": "tok-reader", "role": "reader"},
    {"name": "worker", "token_sha256": sha256_hex("tok-worker"), "role": "worker"},
    {"name": "raft", "token": "tok-raft", "role": "raft"},
    {"name": "expired", "token": "tok-expired", "role": "admin", "expires_at": HOUR_AGO},
    {"name": "early", "token": "tok-early", "role": "admin", "not_before": FAR_FUTURE},
    {"name": "acme", "token": "tok-acme", "role": "operator", "tenant_id": "acme"},
    {"name": "globex", "token": "tok-globex", "role": "operator", "tenant_id": "globex"},
]

# (case, method, path, token, status): each path is unique so its audit record can be found.
REFUSALS = [
    ("no token", "GET", "/v1/timers/r-none", None, 401),
    ("wrong token", "GET", "/v1/timers/r-wrong", "not-a-token", 401),
    ("expired", "GET", "/v1/timers/r-expired", "tok-expired", 401),
    ("not yet valid", "GET", "/v1/timers/r-early", "tok-early", 401),
    ("reader writes", "POST", "/v1/timers/r-reader/pause", "tok-reader", 403),
    ("worker reads timers", "GET", "/v1/timers/r-worker", "tok-worker", 403),
    ("raft token on the API", "GET", "/v1/timers/r-raft", "tok-raft", 403),
    ("operator shuts down", "POST", "/v1/runtime/shutdown", "tok-acme", 403),
]


@pytest.fixture
def secured(server: ServerNode) -> ServerNode:
    server.write_tokens(TOKENS)
    # The server re-reads the file when it changes: wait until the new tokens work.
    wait_for(lambda: server.http("GET", "/v1/timers", token="tok-reader")[0] == 200, what="tokens file")
    return server


def test_every_refusal_has_its_status_and_audit_record(secured: ServerNode) -> None:
    for case, method, path, token, expected in REFUSALS:
        status, answer = secured.http(method, path, {} if method == "POST" else None, token=token)
        assert status == expected, (case, answer)
        assert answer == {"error": "unauthorized" if expected == 401 else "forbidden"}, case
    audit = secured.audit()
    for case, method, path, _token, expected in REFUSALS:
        records = [r for r in audit if r["path"] == path and r["method"] == method]
        assert len(records) == 1, (case, records)
        assert records[0]["status"] == expected, case
        assert records[0]["decision"] != "allowed", (case, records[0])
    # The reader and the worker are who they say they are.
    refused_reader = next(r for r in audit if r["path"] == "/v1/timers/r-reader/pause")
    assert refused_reader["actor"] == "reader" and refused_reader["role"] == "reader"
    assert secured.proc is not None and secured.proc.poll() is None  # not shut down

    # Through the Client: PermissionError (a KronError) for 401 and for 403.
    for token in ("not-a-token", "tok-expired", "tok-early"):
        with pytest.raises(PermissionError) as info:
            client_of(secured, token).list()
        assert isinstance(info.value, kron.KronError)
    with pytest.raises(PermissionError):
        client_of(secured, "tok-reader").schedule("r-x", task="t", every="1h")
    assert secured.http("GET", "/v1/timers/r-x")[0] == 404


def test_another_tenants_timer_is_invisible(secured: ServerNode) -> None:
    acme = client_of(secured, "tok-acme")
    globex = client_of(secured, "tok-globex")
    acme.schedule("acme-report", task="report", every="1h")
    assert [t["id"] for t in acme.list()] == ["acme-report"]
    assert globex.list() == []
    assert globex.status("acme-report") is None
    with pytest.raises(KeyError):
        globex.pause("acme-report")
    status, answer = secured.http("GET", "/v1/timers/acme-report", token="tok-globex")
    assert status == 404, answer
    status, _ = secured.http("DELETE", "/v1/timers/acme-report", token="tok-globex")
    assert status == 404
    assert acme.status("acme-report") is not None
    refused = [
        r for r in secured.audit() if r["path"].startswith("/v1/timers/acme-report") and r["status"] == 404
    ]
    assert {(r["actor"], r["method"]) for r in refused} >= {("globex", "GET"), ("globex", "DELETE")}


def test_tokens_rotate_without_restart(secured: ServerNode) -> None:
    secured.write_tokens([{"name": "next", "token": "tok-next", "role": "reader"}])
    wait_for(lambda: secured.http("GET", "/v1/timers", token="tok-reader")[0] == 401, what="revocation")
    assert secured.http("GET", "/v1/timers", token="tok-next")[0] == 200
    # A file that does not parse grants nothing; the admin token keeps working.
    (secured.data_dir / "kron.tokens.json").write_text("{not json")
    wait_for(lambda: secured.http("GET", "/v1/timers", token="tok-next")[0] == 401, what="broken file")
    assert secured.http("GET", "/v1/timers")[0] == 200


# ---------------------------------------------------------------------------
# the audit log's hash chain
# ---------------------------------------------------------------------------


def test_an_edited_audit_record_is_detected(server: ServerNode) -> None:
    client = client_of(server)
    for i in range(3):
        client.schedule(f"audited-{i}", task="t", every="1h")
    client.pause("audited-1")
    verify = kron_cli("--data-dir", str(server.data_dir), "audit", "verify")
    assert verify.returncode == 0, verify.stderr
    assert len(server.audit()) >= 4
    server.stop()

    lines = server.audit_path.read_text().splitlines()
    record = json.loads(lines[1])
    assert record["seq"] == 2
    edited = lines[1].replace('"status":200', '"status":201', 1)
    assert edited != lines[1], lines[1]
    lines[1] = edited
    server.audit_path.write_text("\n".join(lines) + "\n")

    verify = kron_cli("--data-dir", str(server.data_dir), "audit", "verify")
    assert verify.returncode != 0
    assert "record 2" in verify.stderr, verify.stderr
    report = kron_cli("--data-dir", str(server.data_dir), "audit", "verify", "--json")
    assert report.returncode != 0
    answer = json.loads(report.stdout)
    assert answer["ok"] is False and answer["bad_record"] == 2, answer


# ---------------------------------------------------------------------------
# durability
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_restart_after_sigkill_keeps_every_committed_timer_run_and_event(server: ServerNode) -> None:
    client = client_of(server)
    client.schedule("hourly", task="t", every="1h", payload={"k": [1, 2]})
    client.schedule("nightly", task="t", cron="0 3 * * *", timezone="Europe/Paris")
    client.schedule("ran", task="t", every="1h")
    client.schedule("paused", task="t", every="1h")
    client.pause("paused")
    worker = kron.Worker(server.url, token=server.admin_token, worker_id="w")
    outcomes: list[str] = []

    @worker.task("t")
    def t(payload: Any, context: dict[str, Any]) -> None:
        outcomes.append(context["run_id"])

    client.trigger("ran")
    run_until(worker, lambda: outcomes)
    wait_for(lambda: "RUN_SUCCEEDED" in kinds(client.history("ran")), what="the run to commit")

    # A run claimed (under a long lease) before the crash, completed after it.
    client.schedule("held", task="h", after="100ms")
    server.http("POST", "/v1/workers/register", {"worker_id": "h", "tasks": ["h"], "lease_seconds": 60})
    _, held = server.http("POST", "/v1/workers/poll", {"worker_id": "h", "tasks": ["h"], "wait_ms": 5000})
    assert isinstance(held, dict) and held["timer_id"] == "held", held

    names = ["hourly", "nightly", "ran", "paused", "held"]
    before = {t["id"]: t for t in client.list()}
    histories = {n: client.history(n, limit=1000) for n in names}
    server.kill()
    server.start()
    client = client_of(server)
    verify = kron_cli("--data-dir", str(server.data_dir), "audit", "verify")
    assert verify.returncode == 0, verify.stderr

    after = {t["id"]: t for t in client.list()}
    assert sorted(after) == sorted(before)
    for name in names:
        for key in ("task", "payload", "schedule", "timezone", "state", "run_count", "last_status"):
            assert after[name][key] == before[name][key], (name, key)
        history = client.history(name, limit=1000)
        assert history[: len(histories[name])] == histories[name], name
    assert after["paused"]["state"] == "paused"
    status, answer = server.http(
        "POST",
        f"/v1/runs/{held['run_id']}/succeed",
        {"worker_id": "h", "fencing_token": held["fencing_token"]},
    )
    assert status == 200, answer
    assert kinds(client.history("held"))[-2:] == ["RUN_CLAIMED", "RUN_SUCCEEDED"]
    assert after["ran"]["run_count"] == 1 and after["ran"]["last_status"] == "OK"


def test_server_stops_gracefully_on_shutdown_and_sigterm(server: ServerNode) -> None:
    client_of(server).schedule("survives", task="t", every="1h")
    assert server.http("POST", "/v1/runtime/shutdown") == (200, {"shutting_down": True})
    assert server.proc is not None and server.proc.wait(timeout=WAIT) == 0
    server.start()
    assert client_of(server).status("survives") is not None
    assert server.stop(timeout=WAIT) == 0


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

BASE = {"name": "bad", "task": "t"}


def body(**fields: Any) -> bytes:
    return json.dumps({**BASE, **fields}).encode()


BAD_INPUT = [
    ("invalid cron", body(cron="61 * * * *"), 400, "cron"),
    ("unknown zone", body(every="1h", timezone="Mars/Olympus"), 400, "timezone"),
    ("every and cron", body(every="1h", cron="* * * * *"), 400, "cron, every"),
    ("no schedule", json.dumps(BASE).encode(), 400, "exactly one of"),
    ("bad every", body(every="soon"), 400, "every"),
    ("oversized", body(every="1h", payload="x" * (2 << 20)), 413, ""),
    ("malformed JSON", b'{"name": "bad", "task": ', 400, "malformed JSON"),
]


@pytest.mark.parametrize(("case", "raw", "status", "mentions"), BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    server: ServerNode, case: str, raw: bytes, status: int, mentions: str
) -> None:
    client = client_of(server)
    client.schedule("kept", task="t", every="1h")
    before = client.list()
    got, answer = server.http("POST", "/v1/timers", raw=raw)
    assert got == status, (case, answer)
    assert isinstance(answer, dict) and isinstance(answer.get("error"), str), answer
    assert mentions in answer["error"], (case, answer)
    assert client.list() == before
    assert client.status("bad") is None
    assert any(r["status"] == status for r in server.audit()), case


# ---------------------------------------------------------------------------
# the Client's errors
# ---------------------------------------------------------------------------


def test_client_error_classes(server: ServerNode) -> None:
    client = client_of(server)
    with pytest.raises(ValueError) as bad:
        client.schedule("c", task="t", cron="61 * * * *")
    with pytest.raises(ValueError) as both:
        client.schedule("c", task="t", cron="* * * * *", every="1m")
    with pytest.raises(ValueError) as too_big:  # refused by the server (413)
        client.schedule("c", task="t", every="1h", payload="x" * (2 << 20))
    with pytest.raises(PermissionError) as refused:
        client_of(server, "nope").list()
    with pytest.raises(KeyError) as unknown:
        client.pause("nope")
    for act in (client.resume, client.trigger, client.remove):
        with pytest.raises(KeyError):
            act("nope")
    with pytest.raises(ConnectionError) as down:
        kron.Client("http://127.0.0.1:1", token="x", timeout=2).list()
    for info in (bad, both, too_big, refused, unknown, down):
        assert isinstance(info.value, kron.KronError), info.value
    assert client.status("nope") is None
    assert client.list() == []


# ---------------------------------------------------------------------------
# a worker stops on SIGTERM, finishing its task
# ---------------------------------------------------------------------------

GRACEFUL_WORKER = """
url, token, started, finished = sys.argv[1:5]
worker = kron.Worker(url, token=token, worker_id="graceful", lease_seconds=5)

@worker.task("long")
def long(payload):
    dump(started, {"t": time.time()})
    time.sleep(2)
    dump(finished, {"t": time.time()})

worker.run()
print("run returned", flush=True)
"""


@pytest.mark.slow
def test_worker_run_stops_on_sigterm_finishing_its_task(
    server: ServerNode, children: Children, tmp_path: Path
) -> None:
    client = client_of(server)
    client.schedule("graceful", task="long", after="100ms")
    started, finished = tmp_path / "started.json", tmp_path / "finished.json"
    proc = children.spawn(GRACEFUL_WORKER, server.url, server.admin_token, str(started), str(finished))
    children.wait_for_file(proc, started, timeout=WAIT)
    proc.send_signal(signal.SIGTERM)
    out = children.wait(proc, timeout=WAIT)
    assert "run returned" in out
    assert finished.exists()
    history = wait_for(
        lambda: (h := client.history("graceful")) and "RUN_SUCCEEDED" in kinds(h) and h,
        what="the in-flight task's success",
    )
    assert "RUN_LEASE_EXPIRED" not in kinds(history)


IDLE_WORKER = """
url, token, ready = sys.argv[1:4]
worker = kron.Worker(url, token=token, worker_id="idle")

@worker.task("never-scheduled")
def never(payload):
    pass

touch(ready)
worker.run()
print("run returned", flush=True)
"""


@pytest.mark.slow
def test_an_idle_worker_stops_on_sigterm_within_one_poll(
    server: ServerNode, children: Children, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    proc = children.spawn(IDLE_WORKER, server.url, server.admin_token, str(ready))
    children.wait_for_file(proc, ready, timeout=WAIT)
    time.sleep(1.0)  # inside a long poll
    proc.send_signal(signal.SIGTERM)
    # The long poll in progress (up to 5 s) ends before run() sees the stop.
    assert "run returned" in children.wait(proc, timeout=15.0)
