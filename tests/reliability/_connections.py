"""Faults on the long-lived connections of SFTP and FTP, the same for both.

SFTP keeps one SSH connection per storage; FTP keeps a small pool of
control connections. A fault at connect time is only half the story: the
faults that matter hit a connection that is already open and idle between
two calls. :class:`LiveFaultProxy` can do that: besides the proxy's queue
for new connections, faults *armed* on it hit the next request (a reset
when the client sends) or the next reply (held back, or cut after some
bytes) on any connection already open.

What is covered, per service (``ConnectionFaultContract``):

- an idempotent call (size, exists, read, listdir, delete) survives its
  connection being reset when the request is sent, its reply stalling past
  the timeout, or the server having closed the idle connection;
- a connection that cannot be opened at all (every attempt reset, or
  stalled) ends in ServiceUnavailable or ServiceTimeout: never a hang;
- a read whose connection is cut mid-reply resumes or raises a stowage
  error, never returning truncated data as complete;
- an upload whose connection is reset mid-body leaves no visible object,
  or a complete one.

FTP's data connections are not proxied: in passive mode the server
announces its own data port, so only the control connection goes through
the proxy. A cut of the control connection during a transfer is what these
tests do to FTP transfers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from typing import Any

import pytest
from django.core.files.base import ContentFile

from stowage import Storage
from stowage.exceptions import ServiceError, ServiceTimeout, ServiceUnavailable
from tests.faults.proxy import Fault, FaultProxy
from tests.reliability._faults import (
    DATA,
    NAME,
    OPERATIONS,
    SourceBreakContract,
    absent_or_complete,
    bounded,
)
from tests.reliability._figures import FIGURES
from tests.reliability.conftest import Backend

__all__ = ["ConnectionFaultContract", "LiveFaultProxy"]

#: Seconds an armed stall holds a reply: well past the 1 s timeout of the test storages.
STALL = 4.0
#: Faults taken by the next request (client to server); the others by the next reply.
_ON_REQUEST = {"reset"}

LIVE_FAULTS = {
    "reset": Fault("reset"),
    "stall": Fault("stall", seconds=STALL),
    "closed": Fault("closed"),
}


class LiveFaultProxy(FaultProxy):
    """A fault proxy that can also fault connections already open.

    ``arm()`` queues faults for open connections: ``reset`` resets the
    connection carrying the next request; ``stall`` holds the next reply;
    ``truncate`` and ``reset_after`` pass ``after`` more reply bytes, then
    close or reset. ``closed`` closes every open connection at once, as a
    server dropping idle clients does. New connections still take the
    queue of :meth:`inject`, where ``drop`` resets a connection as soon as
    it is accepted.
    """

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self._armed: deque[Fault] = deque()
        self._open: set[socket.socket] = set()
        #: Kinds of the armed faults that hit a connection, in order.
        self.fired: list[str] = []

    def arm(self, *faults: Fault) -> None:
        """Queue faults for the connections already open."""
        for fault in faults:
            if fault.kind == "closed":
                self._close_open()
                with self._lock:
                    self.fired.append("closed")
                continue
            with self._lock:
                self._armed.append(fault)

    def disarm(self) -> None:
        """Drop the armed faults nothing took."""
        with self._lock:
            self._armed.clear()

    def _close_open(self) -> None:
        with self._lock:
            clients = list(self._open)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)

    def take(self, request: bool) -> Fault | None:
        """Return the first armed fault for this direction, if any."""
        with self._lock:
            for fault in self._armed:
                if (fault.kind in _ON_REQUEST) == request:
                    self._armed.remove(fault)
                    if fault.kind in ("reset", "stall"):
                        self.fired.append(fault.kind)
                    return fault
        return None

    def _serve(self, client: socket.socket, fault: Fault | None) -> None:
        if fault is not None and fault.kind == "drop":
            self._reset(client)
            return
        with self._lock:
            self._open.add(client)
        try:
            super()._serve(client, fault)
        finally:
            with self._lock:
                self._open.discard(client)

    def _pipe(self, source: Any, target: socket.socket, fault: Fault | None) -> None:
        super()._pipe(_Tap(self, source, target), target, fault)


class _Tap:
    """Read from one side of a proxied connection, applying the armed faults."""

    def __init__(self, proxy: LiveFaultProxy, source: socket.socket, target: socket.socket) -> None:
        self.proxy = proxy
        self.source = source
        self.target = target
        try:
            self.request = target.getpeername()[1] == proxy.target_port
        except OSError:
            self.request = False
        self.cut: Fault | None = None
        self.left = 0

    def recv(self, size: int) -> bytes:
        data = self.source.recv(size)
        if not data:
            return data
        if self.cut is None:
            fault = self.proxy.take(self.request)
            if fault is None:
                return data
            if fault.kind == "reset":
                self.proxy._reset(self.source)
                return b""
            if fault.kind == "stall":
                threading.Event().wait(fault.seconds)
                return data
            self.cut, self.left = fault, fault.after
        if len(data) < self.left:
            self.left -= len(data)
            return data
        with contextlib.suppress(OSError):
            self.target.sendall(data[: self.left])
        with self.proxy._lock:
            self.proxy.fired.append(self.cut.kind)
        if self.cut.kind == "reset_after":
            self.proxy._reset(self.target)
        else:
            with contextlib.suppress(OSError):
                self.target.shutdown(socket.SHUT_RDWR)
        return b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


_MiB = 1024 * 1024
#: A body several chunks long, so a cut lands inside a transfer.
BIG = bytes(range(256)) * (3 * _MiB // 256)


class ConnectionFaultContract(SourceBreakContract):
    """Connection fault tests over one service; subclasses supply ``backend``."""

    @pytest.fixture
    def direct(self, backend: Backend) -> Storage:
        """Return a storage on the server directly, holding NAME."""
        storage = backend.direct()
        assert storage.save(NAME, ContentFile(DATA)) == NAME
        return storage

    @pytest.fixture
    def live(self, backend: Backend) -> Any:
        """Return a live fault proxy in front of the backend's server."""
        assert backend.port is not None
        proxy = LiveFaultProxy(backend.port)
        yield proxy
        proxy.close()

    def _warm(self, backend: Backend, live: LiveFaultProxy, **options: Any) -> Storage:
        """Return a storage through ``live`` whose connection is open and idle."""
        storage = backend.through(live, **options)
        assert storage.exists(NAME)
        assert live.connections >= 1
        return storage

    @pytest.mark.parametrize("fault", LIVE_FAULTS)
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_idempotent_operation_survives_a_fault_on_its_connection(
        self,
        backend: Backend,
        direct: Storage,
        live: LiveFaultProxy,
        operation: str,
        fault: str,
    ) -> None:
        storage = self._warm(backend, live)
        opened = live.connections
        live.arm(LIVE_FAULTS[fault])
        raised = bounded(lambda: OPERATIONS[operation](storage, direct))
        live.disarm()
        assert raised is None, f"{raised!r} from {raised.__cause__!r}" if raised else ""
        assert live.fired == [fault], "the fault did not hit the connection"
        assert live.connections > opened, "no new connection replaced the faulted one"
        FIGURES.add("faults survived by reconnecting (idempotent operations)", backend.name, fault)

    @pytest.mark.parametrize("fault", ["reset", "stall"])
    @pytest.mark.parametrize("operation", ["size", "read", "listdir", "delete"])
    def test_persistent_fault_ends_in_a_clear_error(
        self,
        backend: Backend,
        direct: Storage,
        live: LiveFaultProxy,
        operation: str,
        fault: str,
    ) -> None:
        storage = self._warm(backend, live, **backend.few_retries)
        # The open connection fails, and so does every new one.
        live.arm(LIVE_FAULTS[fault])
        on_connect = Fault("drop") if fault == "reset" else Fault("stall", seconds=STALL)
        live.inject(*[on_connect] * 20)
        raised = bounded(lambda: OPERATIONS[operation](storage, direct))
        live.clear()
        live.disarm()
        expected = ServiceUnavailable if fault == "reset" else ServiceTimeout
        assert isinstance(raised, expected), repr(raised)
        assert raised.__cause__ is not None
        assert live.fired == [fault], f"the armed {fault} never hit the open connection"
        assert len(live.injected) >= 1, "gave up without trying a new connection"
        assert direct.exists(NAME) or operation == "delete"
        table = "persistent faults ending in a clear error"
        FIGURES.add(table, backend.name, f"connection {fault}")
        FIGURES.add(table, backend.name, "faults injected", 1 + len(live.injected))

    @pytest.mark.parametrize("cut", [50_000, 1_500_000], ids=["early", "late"])
    @pytest.mark.parametrize("fault", ["truncate", "reset_after"])
    def test_read_cut_midway_is_resumed_or_raises(
        self,
        backend: Backend,
        direct: Storage,
        live: LiveFaultProxy,
        fault: str,
        cut: int,
    ) -> None:
        direct.save("faults/big.bin", ContentFile(BIG))
        storage = self._warm(backend, live)
        live.arm(Fault(fault, after=cut))
        result: list[bytes] = []

        def read() -> None:
            with storage.open("faults/big.bin") as handle:
                result.append(handle.read())

        raised = bounded(read)
        live.disarm()
        # A read the cut never reached proves nothing: the proxy must report the cut.
        assert live.fired == [fault], f"the {fault} after {cut} bytes never fired"
        if raised is None:
            assert result == [BIG], "a cut body was returned as if complete"
            outcome = "resumed"
        else:
            assert isinstance(raised, ServiceError), repr(raised)
            outcome = "raised"
        FIGURES.add("reads cut mid-body", backend.name, f"{outcome} ({fault})")

    @pytest.mark.parametrize("fault", ["reset", "stall"])
    def test_upload_cut_on_its_connection_leaves_no_partial_object(
        self, backend: Backend, direct: Storage, live: LiveFaultProxy, fault: str
    ) -> None:
        storage = self._warm(backend, live, **backend.no_retries)
        live.arm(LIVE_FAULTS[fault])
        live.inject(*[Fault("drop")] * 5)
        raised = bounded(lambda: storage.save("faults/new.bin", ContentFile(BIG)))
        live.clear()
        live.disarm()
        assert live.fired == [fault], f"the armed {fault} never hit the upload's connection"
        assert isinstance(raised, ServiceError), repr(raised)
        outcome = absent_or_complete(direct, "faults/new.bin", BIG)
        assert direct.listdir("faults")[1] in (["object.bin"], ["new.bin", "object.bin"])
        table = "uploads interrupted, no partial object"
        FIGURES.add(table, backend.name, f"connection {fault}")
        FIGURES.add(table, backend.name, outcome)
