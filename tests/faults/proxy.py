"""A loopback TCP proxy that injects faults between a client and a real server.

Each accepted connection is served by a pair of threads copying bytes. The
next connections can be told to fail in one of these ways (a queue of
faults; when it is empty connections pass through untouched):

- ``reset``: close the client socket with RST as soon as the request arrives;
- ``reset_after``: pass ``after`` response bytes, then RST;
- ``truncate``: pass ``after`` response bytes, then close cleanly (FIN);
- ``stall``: hold the response for ``seconds`` before passing it on;
- ``status``: answer an HTTP request with the status (500, 503 …) without
  reaching the server.

``latency`` delays every response by that many seconds, as a network would
(the benchmarks use it to stand for the round trip to a real service).
``cut_after(count)`` resets every open connection once clients have sent
``count`` more bytes, wherever that falls: a network dropping mid-upload.

Only 127.0.0.1 is ever bound or connected to.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["Fault", "FaultProxy"]


@dataclass(frozen=True)
class Fault:
    """One fault to inject into one connection."""

    kind: str
    after: int = 0
    seconds: float = 0.0
    status: int = 503


_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class FaultProxy:
    """Forward 127.0.0.1:``port`` to 127.0.0.1:``target_port``, injecting queued faults."""

    def __init__(self, target_port: int, *, latency: float = 0.0) -> None:
        self.target_port = target_port
        self.latency = latency
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self.injected: list[str] = []
        self._clients: set[socket.socket] = set()
        self._cut_budget: int | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next connections, one each."""
        with self._lock:
            self._faults.extend(faults)

    def pending(self) -> int:
        """Return how many queued faults no connection has taken yet."""
        with self._lock:
            return len(self._faults)

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                fault = self._faults.popleft() if self._faults else None
                self.connections += 1
                if fault is not None:
                    self.injected.append(fault.kind)
            threading.Thread(target=self._serve, args=(client, fault), daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The other pipe thread may be blocked reading this socket, which keeps
        # it open past close(): shutting reading down first makes it let go, so
        # the client gets its RST now rather than waiting for its timeout.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)
        sock.close()

    def cut_after(self, count: int) -> None:
        """Reset every open connection once clients have sent ``count`` more bytes.

        The bytes are counted over all connections, so the cut lands in the
        middle of whatever is being sent then; later connections pass.
        """
        with self._lock:
            self._cut_budget = count

    def _count_sent(self, size: int) -> bool:
        """Count ``size`` bytes sent by a client; cut and return True when the budget is spent."""
        with self._lock:
            if self._cut_budget is None:
                return False
            self._cut_budget -= size
            if self._cut_budget > 0:
                return False
            self._cut_budget = None
            self.injected.append("cut")
            clients = list(self._clients)
        for client in clients:
            self._reset(client)
        return True

    def clear(self) -> None:
        """Drop the faults no connection has taken."""
        with self._lock:
            self._faults.clear()

    def _serve(self, client: socket.socket, fault: Fault | None) -> None:
        if fault is not None and fault.kind in ("reset", "status"):
            client.settimeout(5)
            try:
                client.recv(65536)
                if fault.kind == "status":
                    reason = _REASONS.get(fault.status, "Error")
                    body = f"injected {fault.status}".encode()
                    client.sendall(
                        f"HTTP/1.1 {fault.status} {reason}\r\nContent-Length: {len(body)}\r\n"
                        f"Connection: close\r\nContent-Type: text/plain\r\n\r\n".encode()
                        + body
                    )
                    client.close()
                else:
                    self._reset(client)
            except OSError:
                client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
        except OSError:
            self._reset(client)
            return
        with self._lock:
            self._clients.add(client)
        threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
        if fault is None and self.latency:
            fault = Fault("stall", seconds=self.latency)
        try:
            self._pipe(upstream, client, fault)
        finally:
            with self._lock:
                self._clients.discard(client)

    def _pipe(self, source: socket.socket, target: socket.socket, fault: Fault | None) -> None:
        passed = 0
        try:
            sending = target.getpeername()[1] == self.target_port  # client to server
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if sending and self._cut_budget is not None and self._count_sent(len(data)):
                    return
                if fault is not None and fault.kind == "stall":
                    time.sleep(fault.seconds)
                    fault = None
                if fault is not None and fault.kind in ("reset_after", "truncate"):
                    room = fault.after - passed
                    if len(data) >= room:
                        target.sendall(data[:room])
                        if fault.kind == "reset_after":
                            self._reset(target)
                        else:
                            target.shutdown(socket.SHUT_RDWR)
                            target.close()
                        source.close()
                        return
                target.sendall(data)
                passed += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
