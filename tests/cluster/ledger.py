"""A worker speaking the raw worker protocol to a cluster, keeping its own ledger of what the
server told it: every run it was handed (claims) and every answer to a completion. The failure
tests and the chaos checker compare these ledgers with every node's history.

Raw HTTP (not kron.Worker) so that a test decides when to complete, can hold a lease without
heartbeats, and can send a completion with a stale fencing token on purpose.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from harness import TOKEN, http


@dataclass
class Claim:
    """A run handed to this worker by a poll."""

    run_id: str
    timer_id: str
    attempt: int
    fencing_token: int
    at: float
    worker_id: str


@dataclass
class Completion:
    """A completion this worker sent, and what the cluster answered (``accepted`` only on a 2xx
    answer; ``status`` 0 when no node answered, which may or may not have been committed)."""

    run_id: str
    fencing_token: int
    outcome: str
    status: int
    answer: Any
    worker_id: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class LedgerWorker:
    """One worker id, polling whichever node leads among ``urls``."""

    worker_id: str
    urls: list[str]
    tasks: list[str]
    lease_seconds: int = 2
    timeout: float = 5.0
    claims: list[Claim] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    _leader: Optional[str] = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, method: str, path: str, body: Any, timeout: Optional[float] = None) -> tuple[int, Any]:
        """Sends to the known leader first, then every node, following ``not_leader``; answers
        the first answer that is not a redirect or a dead node."""
        order = ([self._leader] if self._leader else []) + [u for u in self.urls if u != self._leader]
        last: tuple[int, Any] = (0, "no node answered")
        hops = 0
        while order and hops < 8:
            url = order.pop(0)
            hops += 1
            code, answer = http(url, method, path, body, token=TOKEN, timeout=timeout or self.timeout)
            if code == 409 and isinstance(answer, dict) and answer.get("error") == "not_leader":
                leader = answer.get("leader_http")
                if leader:
                    target = leader if "://" in str(leader) else f"http://{leader}"
                    if target != url:
                        order.insert(0, target)
                last = (code, answer)
                continue
            if code == 0 or code >= 500:
                last = (code, answer)
                continue
            self._leader = url
            return code, answer
        return last

    def register(self) -> bool:
        body = {"worker_id": self.worker_id, "tasks": self.tasks, "lease_seconds": self.lease_seconds}
        code, _ = self._send("POST", "/v1/workers/register", body)
        return 200 <= code < 300

    def poll(self, max_runs: int = 16, wait_ms: int = 0) -> list[Claim]:
        """One poll: the runs claimed (recorded in the ledger). Registers first, every time: the
        registry is the leader's own, and a worker unknown to a new leader would be given the
        default lease instead of this one."""
        if not self.register():
            return []
        body = {"worker_id": self.worker_id, "tasks": self.tasks, "max_runs": max_runs, "wait_ms": wait_ms}
        code, answer = self._send("POST", "/v1/workers/poll", body, timeout=self.timeout + wait_ms / 1000)
        if not 200 <= code < 300 or not isinstance(answer, dict):
            return []
        claims = [
            Claim(
                run_id=str(run["run_id"]),
                timer_id=str(run.get("timer_id")),
                attempt=int(run["attempt"]),
                fencing_token=int(run["fencing_token"]),
                at=time.time(),
                worker_id=self.worker_id,
            )
            for run in answer.get("runs", [])
        ]
        with self._lock:
            self.claims.extend(claims)
        return claims

    def complete(
        self, claim: Claim, outcome: str = "succeed", fencing_token: Optional[int] = None
    ) -> Completion:
        """Reports ``claim``'s outcome (``succeed`` or ``fail``), with its own fencing token
        unless another is given."""
        token = claim.fencing_token if fencing_token is None else fencing_token
        body: dict[str, Any] = {"worker_id": self.worker_id, "fencing_token": token}
        if outcome == "fail":
            body["error"] = "failed on purpose"
        code, answer = self._send("POST", f"/v1/runs/{claim.run_id}/{outcome}", body)
        done = Completion(claim.run_id, token, outcome, code, answer, self.worker_id)
        with self._lock:
            self.completions.append(done)
        return done

    def complete_batch(self, claims: list[Claim]) -> list[Completion]:
        """Reports every claim in ``claims`` succeeded, in one ``POST /v1/runs/complete``."""
        results = [
            {"run_id": c.run_id, "fencing_token": c.fencing_token, "status": "succeeded"} for c in claims
        ]
        body = {"worker_id": self.worker_id, "results": results}
        code, answer = self._send("POST", "/v1/runs/complete", body)
        answers = answer.get("results", []) if code == 200 and isinstance(answer, dict) else []
        by_run = {str(a.get("run_id")): a for a in answers if isinstance(a, dict)}
        done = []
        for claim in claims:
            item = by_run.get(claim.run_id)
            status = code if item is None else (200 if item.get("ok") else int(item.get("status") or 400))
            done.append(Completion(claim.run_id, claim.fencing_token, "succeed", status, item or answer,
                                   self.worker_id))
        with self._lock:
            self.completions.extend(done)
        return done

    def heartbeat(self) -> bool:
        code, _ = self._send("POST", "/v1/workers/heartbeat", {"worker_id": self.worker_id})
        return 200 <= code < 300
