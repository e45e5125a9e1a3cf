"""A real `kron server` process on loopback ports for the server tests: started on port 0 (the
bound address is read from its first output line), driven by raw HTTP, and killed at the end
whatever happened."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import find_kron

#: How long a server may take to print its address.
START_WAIT = 30.0
_SERVING = re.compile(r"serving (http://\S+)")


class ServerNode:
    """One `kron server start` process on ``data_dir``."""

    def __init__(self, data_dir: Path, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._starts = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ServerNode:
        """Starts the server (a fresh directory is bootstrapped; an existing one resumed) and
        waits until it answers /healthz as the leader."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._starts += 1
        out_path = self.log_dir / f"server_{self._starts}.out"
        err_path = self.log_dir / f"server_{self._starts}.err"
        env = dict(os.environ)
        env.update(self.env)
        env.pop("KRON_TOKEN", None)
        cmd = [
            find_kron(),
            "--data-dir",
            str(self.data_dir),
            "server",
            "start",
            "--http",
            "127.0.0.1:0",
            "--raft",
            "127.0.0.1:0",
        ]
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            found = _SERVING.search(out_path.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                break
            if self.proc.poll() is not None:
                raise AssertionError(f"kron server exited ({self.proc.returncode}): {self.output()}")
            time.sleep(0.05)
        else:
            self.kill()
            raise AssertionError(f"kron server printed no address in {START_WAIT}s: {self.output()}")
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                status, body = self.http("GET", "/healthz", token=None)
                if status == 200 and isinstance(body, dict) and body.get("role") == "leader":
                    return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"kron server did not become leader in {START_WAIT}s: {self.output()}")

    def kill(self) -> None:
        """SIGKILL (by pid) and reap."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds."""
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
        for suffix in ("out", "err"):
            path = self.log_dir / f"server_{self._starts}.{suffix}"
            if path.exists():
                parts.append(f"{suffix}:\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    # -- files -----------------------------------------------------------------------------------

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "kron.token").read_text().strip()

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "kron.audit.jsonl"

    def audit(self) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        lines = self.audit_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def write_tokens(self, tokens: list[dict[str, Any]]) -> None:
        """Writes DIR/kron.tokens.json (atomically: the server re-reads it when it changes)."""
        path = self.data_dir / "kron.tokens.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"tokens": tokens}))
        os.replace(tmp, path)

    # -- raw HTTP --------------------------------------------------------------------------------

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "admin",
        raw: bytes | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One request with urllib; answers (status, decoded JSON or text). ``token="admin"``
        uses the generated admin token, ``None`` sends no Authorization header."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {self.admin_token if token == 'admin' else token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode("utf-8", "replace")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
