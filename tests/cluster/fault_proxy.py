"""A TCP proxy that injects network faults in front of one node's Raft port.

Every peer reaches the node through its proxy (the address the node joined the cluster with), and
each node's outgoing Raft connections come from its own loopback IP (127.0.0.N), so one proxy per
node can cut any link: what arrives from a given source IP, or everything. Standard library
threads: two pump threads per connection, few connections (Raft keeps them alive).

Modes, for new and existing connections alike:

* ``pass``: bytes are forwarded both ways.
* ``drop``: new connections are closed at once, existing ones are closed (the peer sees a reset
  or an end of stream, like a refused connection).
* ``blackhole``: connections are accepted and kept open, but nothing is forwarded either way (the
  peer sees silence and its requests time out, like a cable pulled out).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Optional

PASS = "pass"
DROP = "drop"
BLACKHOLE = "blackhole"
MODES = (PASS, DROP, BLACKHOLE)

#: How long a pump waits on a socket before looking at the mode again.
_TICK = 0.2


class _Link:
    """One accepted connection and the upstream connection it is forwarded to."""

    def __init__(self, downstream: socket.socket, source_ip: str) -> None:
        self.downstream = downstream
        self.upstream: Optional[socket.socket] = None
        self.source_ip = source_ip
        self.closed = threading.Event()
        # Set once the link stopped forwarding: it never forwards again (a stream cut in the
        # middle cannot be resumed), it is only closed when the fault is healed.
        self.silenced = threading.Event()

    def close(self) -> None:
        self.closed.set()
        for sock in (self.downstream, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


class FaultProxy:
    """Listens on ``listen`` (host, port) and forwards to ``target`` (host, port)."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen = listen
        self.target = target
        self._default = PASS
        self._by_source: dict[str, str] = {}
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._server: Optional[socket.socket] = None
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        #: Source IPs seen so far (to check that nodes connect from their own IP).
        self.sources_seen: set[str] = set()

    @property
    def address(self) -> str:
        return f"{self.listen[0]}:{self.listen[1]}"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.listen)
        server.listen(64)
        server.settimeout(_TICK)
        self._server = server
        self._stopped.clear()
        self._thread = threading.Thread(target=self._accept_loop, name=f"proxy-{self.address}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
            self._server = None
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close()

    # -- faults ----------------------------------------------------------------------------------

    def set_mode(self, mode: str, source_ip: Optional[str] = None) -> None:
        """Sets the mode for everything (``source_ip=None``) or for one source IP, and applies
        it to the connections already open."""
        if mode not in MODES:
            raise ValueError(f"invalid mode {mode!r}: one of {MODES}")
        with self._lock:
            if source_ip is None:
                self._default = mode
            elif mode == PASS:
                self._by_source.pop(source_ip, None)
            else:
                self._by_source[source_ip] = mode
            links = list(self._links)
        for link in links:
            now = self._mode_of(link.source_ip)
            if now == DROP:
                link.close()
            elif now == BLACKHOLE:
                link.silenced.set()
            elif link.silenced.is_set():
                # Healed: a silenced stream is broken mid-request; close it so the peer reconnects.
                link.close()

    def heal(self) -> None:
        """Everything passes again."""
        with self._lock:
            self._default = PASS
            self._by_source.clear()
        self.set_mode(PASS)

    def _mode_of(self, source_ip: str) -> str:
        with self._lock:
            return self._by_source.get(source_ip, self._default)

    # -- forwarding ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopped.is_set():
            try:
                conn, (source_ip, _port) = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.sources_seen.add(source_ip)
            mode = self._mode_of(source_ip)
            if mode == DROP:
                with contextlib.suppress(OSError):
                    conn.close()
                continue
            link = _Link(conn, source_ip)
            with self._lock:
                self._links.add(link)
            if mode == BLACKHOLE:
                link.silenced.set()
            threading.Thread(target=self._open, args=(link,), daemon=True).start()

    def _open(self, link: _Link) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=2.0)
        except OSError:
            # The node is down: the peer sees its connection closed, as it would without a proxy.
            self._forget(link)
            return
        link.upstream = upstream
        if link.closed.is_set():
            self._forget(link)
            return
        upstream.settimeout(_TICK)
        link.downstream.settimeout(_TICK)
        back = threading.Thread(target=self._pump, args=(link, upstream, link.downstream), daemon=True)
        back.start()
        self._pump(link, link.downstream, upstream)
        back.join(timeout=5)
        self._forget(link)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        while not link.closed.is_set() and not self._stopped.is_set():
            try:
                data = source.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if link.silenced.is_set():
                continue  # blackholed: swallowed
            try:
                sink.sendall(data)
            except OSError:
                break
        link.close()

    def _forget(self, link: _Link) -> None:
        link.close()
        with self._lock:
            self._links.discard(link)
