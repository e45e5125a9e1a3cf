"""The HTTP transport of ``kron.Client`` and ``kron.Worker``: JSON over persistent connections,
bearer tokens, and the server's answers turned into Kron's exceptions.

Standard library only (``http.client``): one keep-alive connection per thread and node, so a
worker's poll/complete loop does not pay a TCP handshake per request. A write sent to a node that
is not the leader is answered ``409 {"error": "not_leader", "leader_http": ...}``: the transport
follows it to the leader (and remembers it). When no node answers it raises
``ServerUnavailableError`` (a ``ConnectionError``).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from typing import Any

from ._errors import (
    InvalidArgumentError,
    KronError,
    PermissionDeniedError,
    ServerError,
    ServerUnavailableError,
)

#: How many leader changes one request follows before giving up.
MAX_REDIRECTS = 5


class NotFound(KronError, KeyError):
    """404: the caller decides what that means (``None`` for ``status``, a ``TimerNotFoundError``
    elsewhere)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Conflict(ServerError):
    """409 other than ``not_leader``: the request is valid but the timer's state refuses it (a
    finished one-shot cannot be paused, a name held by another tenant). The message is the
    server's, so the client can raise embedded mode's exception with embedded mode's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409)


def _split_nodes(url: str | list[str] | tuple[str, ...]) -> list[str]:
    items = url.split(",") if isinstance(url, str) else list(url)
    nodes = [_normalize(item.strip()) for item in items if item and item.strip()]
    if not nodes:
        raise InvalidArgumentError(
            f"invalid url {url!r}: give the server's address, e.g. http://127.0.0.1:7379", "url", url
        )
    return nodes


def _normalize(node: str) -> str:
    if "://" not in node:
        node = "http://" + node
    parsed = urllib.parse.urlsplit(node)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidArgumentError(f"invalid url {node!r}: must be http(s)://host:port", "url", node)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"


class Transport:
    """Requests to a Kron server (or the nodes of a cluster), following the leader."""

    def __init__(self, url: str | list[str] | tuple[str, ...], token: str | None, timeout: float) -> None:
        if token is None:
            token = os.environ.get("KRON_TOKEN")
        if token is not None and not isinstance(token, str):
            raise InvalidArgumentError(f"token must be a str, got {type(token).__name__}", "token", None)
        self.nodes = _split_nodes(url)
        self.token = token
        self.timeout = timeout
        self._leader: str | None = None
        self._local = threading.local()
        # Every thread's connections, so that a transport dropped without close() still closes
        # its sockets (an unclosed socket is a ResourceWarning when it is collected).
        self._open: set[http.client.HTTPConnection] = set()
        self._open_lock = threading.Lock()

    def _connection(self, base: str, timeout: float) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = getattr(self._local, "pool", None) or {}
        self._local.pool = pool
        conn = pool.get(base)
        if conn is None:
            parsed = urllib.parse.urlsplit(base)
            cls = http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection
            conn = cls(parsed.netloc, timeout=timeout)
            pool[base] = conn
            with self._open_lock:
                self._open.add(conn)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _drop(self, base: str) -> None:
        pool: dict[str, http.client.HTTPConnection] = getattr(self._local, "pool", None) or {}
        conn = pool.pop(base, None)
        if conn is not None:
            self._forget(conn)

    def _forget(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._open_lock:
            self._open.discard(conn)

    def close(self) -> None:
        """Closes this thread's connections."""
        pool: dict[str, http.client.HTTPConnection] = getattr(self._local, "pool", None) or {}
        for conn in pool.values():
            self._forget(conn)
        pool.clear()

    def __del__(self) -> None:
        # No thread can be using the connections any more: close them all.
        for conn in list(getattr(self, "_open", ())):
            conn.close()

    def request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        """Sends one request and answers the decoded JSON body (``None`` when empty)."""
        wait = self.timeout if timeout is None else timeout
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        candidates = ([self._leader] if self._leader else []) + [n for n in self.nodes if n != self._leader]
        tried: list[str] = []
        redirects = 0
        while candidates:
            base = candidates.pop(0)
            try:
                status, data = self._send(base, method, path, payload, headers, wait)
            except (OSError, http.client.HTTPException) as exc:
                tried.append(f"{base} ({exc})")
                continue
            if status == 409:
                answer = _decode(data)
                if isinstance(answer, dict) and answer.get("error") == "not_leader":
                    leader = answer.get("leader_http")
                    if leader and redirects < MAX_REDIRECTS:
                        redirects += 1
                        self._leader = _normalize(str(leader))
                        candidates.insert(0, self._leader)
                        continue
                    tried.append(f"{base} (not the leader, and it knows no leader yet)")
                    continue
            if base in self.nodes or base == self._leader:
                self._leader = base if method != "GET" else self._leader
            return _answer(status, data, method, path)
        raise ServerUnavailableError(f"no Kron server answered {method} {path}: " + "; ".join(tried))

    def _send(
        self,
        base: str,
        method: str,
        path: str,
        payload: bytes | None,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, bytes]:
        prefix = urllib.parse.urlsplit(base).path
        for attempt in (1, 2):
            conn = self._connection(base, timeout)
            try:
                conn.request(method, prefix + path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._drop(base)
                return response.status, data
            except (
                ConnectionResetError,
                BrokenPipeError,
                http.client.RemoteDisconnected,
                http.client.CannotSendRequest,
            ):
                # A keep-alive connection the server closed meanwhile: once more on a new one.
                self._drop(base)
                if attempt == 2:
                    raise
            except (OSError, socket.timeout, http.client.HTTPException):
                self._drop(base)
                raise
        raise ServerUnavailableError(f"{base} did not answer")


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {"error": data.decode("utf-8", "replace")[:500]}


def _answer(status: int, data: bytes, method: str, path: str) -> Any:
    answer = _decode(data)
    if 200 <= status < 300:
        return answer
    message = answer.get("error") if isinstance(answer, dict) else None
    text = str(message) if message else f"HTTP {status}"
    if status in (400, 413, 422):
        raise InvalidArgumentError(text, _field_of(answer), None)
    if status in (401, 403):
        raise PermissionDeniedError(f"{text} ({method} {path}: HTTP {status})", status)
    if status == 404:
        raise NotFound(text)
    if status == 409:
        raise Conflict(text)
    raise ServerError(f"{method} {path} failed with HTTP {status}: {text}", status)


def _field_of(answer: Any) -> str:
    if isinstance(answer, dict):
        field = answer.get("field")
        if isinstance(field, str):
            return field
    return ""
