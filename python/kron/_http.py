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
from typing import Any, Union

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


class _PlainConnection:
    """HTTP/1.1 over one keep-alive TCP connection (``http://`` only): a request leaves in one
    send with Nagle's delay off, and the answer is read by its ``Content-Length`` (or chunks).
    ``http.client`` sends the headers and the body in two writes and parses every answer's
    headers with the email parser; a worker or a client making thousands of small requests a
    second paid for both on every one."""

    def __init__(self, netloc: str, timeout: float) -> None:
        parsed = urllib.parse.urlsplit("//" + netloc)
        self.host = parsed.hostname or ""
        self.port = parsed.port or 80
        self.netloc = netloc
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._reader: Any = None

    def close(self) -> None:
        sock, reader = self.sock, self._reader
        self.sock, self._reader = None, None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()

    def exchange(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, bool]:
        """Sends one request; answers the status, the body, and whether the server closes."""
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self._reader = sock, sock.makefile("rb")
        else:
            self.sock.settimeout(self.timeout)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.netloc}", "Accept-Encoding: identity"]
        lines.extend(f"{key}: {value}" for key, value in headers.items())
        if payload is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(payload or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + payload if payload else head)
        return self._read_answer(method)

    def _read_answer(self, method: str) -> tuple[int, bytes, bool]:
        reader = self._reader
        line = reader.readline(65537)
        if not line:
            raise http.client.RemoteDisconnected("the server closed the connection without an answer")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1", "replace").strip())
        status = int(parts[1])
        fields: dict[str, str] = {}
        while True:
            header = reader.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            key, _, value = header.partition(b":")
            fields[key.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        closes = fields.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, b"", closes
        length = fields.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise http.client.HTTPException(f"bad Content-Length {length!r}")
            body = reader.read(int(length))
            if len(body) < int(length):
                raise http.client.IncompleteRead(body, int(length) - len(body))
            return status, body, closes
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, self._read_chunks(), closes
        # Neither: the body runs to the end of the connection.
        return status, reader.read(), True

    def _read_chunks(self) -> bytes:
        reader = self._reader
        chunks: list[bytes] = []
        while True:
            size_line = reader.readline(65537)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.HTTPException(f"bad chunk size {size_line[:40]!r}") from None
            if size == 0:
                while reader.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunk = reader.read(size)
            if len(chunk) < size:
                raise http.client.IncompleteRead(chunk, size - len(chunk))
            chunks.append(chunk)
            reader.readline(65537)


_Connection = Union[http.client.HTTPConnection, _PlainConnection]


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
        self._open: set[_Connection] = set()
        self._open_lock = threading.Lock()
        # The path prefix of each node's URL (a server behind a proxy may live under one).
        self._prefix = {node: urllib.parse.urlsplit(node).path for node in self.nodes}

    def _connection(self, base: str, timeout: float) -> _Connection:
        pool: dict[str, _Connection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        conn = pool.get(base)
        if conn is None:
            parsed = urllib.parse.urlsplit(base)
            if parsed.scheme == "https":
                conn = http.client.HTTPSConnection(parsed.netloc, timeout=timeout)
            else:
                conn = _PlainConnection(parsed.netloc, timeout)
            pool[base] = conn
            with self._open_lock:
                self._open.add(conn)
        if conn.timeout != timeout:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn

    def _drop(self, base: str) -> None:
        pool: dict[str, _Connection] = getattr(self._local, "pool", None) or {}
        conn = pool.pop(base, None)
        if conn is not None:
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        conn.close()
        with self._open_lock:
            self._open.discard(conn)

    def close(self) -> None:
        """Closes this thread's connections."""
        pool: dict[str, _Connection] = getattr(self._local, "pool", None) or {}
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
        prefix = self._prefix.get(base)
        if prefix is None:
            prefix = urllib.parse.urlsplit(base).path
        for attempt in (1, 2):
            conn = self._connection(base, timeout)
            try:
                if isinstance(conn, _PlainConnection):
                    status, data, closes = conn.exchange(method, prefix + path, payload, headers)
                else:
                    conn.request(method, prefix + path, body=payload, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status = response.status
                    closes = response.getheader("Connection", "").lower() == "close"
                if closes:
                    self._drop(base)
                return status, data
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
