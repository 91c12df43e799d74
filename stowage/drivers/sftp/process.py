"""The SFTP server's process and its pipes: packets out, replies back to their futures.

:class:`SFTPProcess` is the protocol of the child process (``ssh ... -s
sftp``, or ``sftp-server`` itself) that :class:`~stowage.drivers.sftp.wire.WireClient`
runs: it writes each request with an id, parses the replies on the
process's standard output and resolves the future kept under that id. The
tail of standard error is kept for messages; the session ends, failing the
requests in flight with :class:`~stowage.drivers.sftp.packets.ConnectionLost`,
when the process exits or its pipes close. A caller holding the event loop
stopped may also send a small request and read its reply on its own thread
(:meth:`SFTPProcess.ask`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import select
import time
from collections.abc import Callable
from typing import Any, TypeAlias, cast

from stowage.drivers.sftp.packets import FXP_INIT, FXP_VERSION, VERSION, ConnectionLost, uint32

__all__ = ["CLOSE_WAIT", "NotNow", "Orphan", "Reply", "SFTPProcess", "ignore"]

#: The longest packet taken from the server; a longer one ends the session.
MAX_PACKET = 16 * 1024 * 1024
#: Bytes of the server's standard error kept for messages.
STDERR_TAIL = 4096
#: Seconds :meth:`WireClient.close` waits for the process to exit, before and after killing it.
CLOSE_WAIT = 1.0
#: Bytes :meth:`SFTPProcess.ask` reads from the output at a time (as asyncio's pipes do).
READ_SIZE = 256 * 1024
#: Seconds after the process exits before the session ends even if its output stays open.
EXIT_GRACE = 1.0

#: A reply: its packet type and what follows the request id.
Reply: TypeAlias = tuple[int, memoryview]
#: What to do with the reply to a request whose caller went away.
Orphan: TypeAlias = Callable[[Reply], None]


class NotNow(Exception):
    """A request cannot go out without the event loop now; nothing was sent."""


def ignore(future: asyncio.Future[Any]) -> None:
    """Collect the outcome of a future no one awaits (so asyncio does not log it)."""
    if not future.cancelled():
        future.exception()


class SFTPProcess(asyncio.SubprocessProtocol):
    """The process and its pipes: sends packets, parses replies, resolves the futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.buffer = bytearray()
        self.stderr = bytearray()
        self.pending: dict[int, tuple[asyncio.Future[Reply], Orphan | None]] = {}
        self.next_id = 0
        #: The VERSION packet's body.
        self.version: asyncio.Future[memoryview] = loop.create_future()
        self.exited: asyncio.Future[None] = loop.create_future()
        #: Done when the process exited and all its pipes closed.
        self.finished: asyncio.Future[None] = loop.create_future()
        #: Why the session ended; None while it runs.
        self.lost: str | None = None
        self.paused = False
        self.drained: list[asyncio.Future[None]] = []
        #: The standard input and output descriptors, and a poller of the output, for ask().
        self._blocking: tuple[int, int, select.poll] | None = None

    # What the process does.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the process's transport and its standard input."""
        self.transport = cast(asyncio.SubprocessTransport, transport)
        self.stdin = cast(asyncio.WriteTransport, self.transport.get_pipe_transport(0))

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        """Parse the packets on standard output; keep the tail of standard error."""
        if fd == 2:
            self.stderr += data
            del self.stderr[:-STDERR_TAIL]
        elif self.lost is None:
            self._parse(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        """End the session when the replies stop, or the requests cannot be written."""
        if fd == 1:
            self.lose("the SFTP server closed its output", stderr=True)
        elif fd == 0 and exc is not None:
            self.lose(f"writing to the SFTP server failed ({exc})", stderr=True)

    def process_exited(self) -> None:
        """Note the exit; the session ends when the output closes, or soon anyway."""
        if not self.exited.done():
            self.exited.set_result(None)
        # Replies written before the exit may still be in the pipe: read them first.
        self.loop.call_later(EXIT_GRACE, self.lose, "the SFTP server exited", True)

    def connection_lost(self, exc: Exception | None) -> None:
        """The process exited and its pipes closed."""
        self.lose("the SFTP server exited", stderr=True)
        if not self.finished.done():
            self.finished.set_result(None)

    def pause_writing(self) -> None:
        """Hold writers back: the pipe to the process is full."""
        self.paused = True

    def resume_writing(self) -> None:
        """Let writers go on."""
        self.paused = False
        self._wake_writers()

    # Parsing.

    def _parse(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        with memoryview(buffer) as view:
            while len(view) - start >= 4 and self.lost is None:
                length = int.from_bytes(view[start : start + 4], "big")
                if not 1 <= length <= MAX_PACKET:
                    self.lose(f"the SFTP server sent a packet of {length} bytes")
                    break
                end = start + 4 + length
                if end > len(view):
                    break
                self._dispatch(view[start + 4 : end].tobytes())
                start = end
        del buffer[:start]

    def _dispatch(self, packet: bytes) -> None:
        kind = packet[0]
        if kind == FXP_VERSION:
            if not self.version.done():
                self.version.set_result(memoryview(packet)[1:])
            return
        if len(packet) < 5:
            self.lose(f"the SFTP server sent a packet of type {kind} without a request id")
            return
        entry = self.pending.pop(int.from_bytes(packet[1:5], "big"), None)
        if entry is None:
            return  # not a request of ours: ignored
        future, orphan = entry
        reply = (kind, memoryview(packet)[5:])
        if not future.done():
            future.set_result(reply)
        elif future.cancelled() and orphan is not None:
            orphan(reply)

    # Sending.

    def send_init(self) -> None:
        """Send the INIT packet (version 3, no extensions)."""
        self._write(uint32(5) + bytes((FXP_INIT,)) + uint32(VERSION))

    def send(
        self,
        kind: int,
        fields: bytes,
        tail: bytes | memoryview = b"",
        orphan: Orphan | None = None,
    ) -> asyncio.Future[Reply]:
        """Send a request of ``kind`` (``tail`` goes after ``fields``, uncopied); return its reply.

        ``orphan`` is called with the reply if the caller cancels the future.
        """
        request_id = self.next_id
        self.next_id = (request_id + 1) & 0xFFFFFFFF
        self._write(
            uint32(5 + len(fields) + len(tail)) + bytes((kind,)) + uint32(request_id) + fields,
            tail,
        )
        future: asyncio.Future[Reply] = self.loop.create_future()
        self.pending[request_id] = (future, orphan)
        return future

    def ask(self, kind: int, fields: bytes, timeout: float) -> Reply:
        """Send a request and wait for its reply on this thread, without the event loop.

        The caller holds the loop stopped (:meth:`SharedLoop.holding
        <stowage.drivers._ssh_loop.SharedLoop.holding>`): the request goes
        straight into the pipe and the reply is read from the other, which
        answers a small request in about two thirds of the time a turn
        through the loop takes. Replies to other requests read meanwhile
        reach their futures. Raises :class:`NotNow`, having sent nothing, when
        the request cannot go out at once (writes are queued, the pipe is
        full, the packet is longer than one atomic pipe write);
        :class:`TimeoutError` after ``timeout`` seconds without the reply.
        """
        if self.lost is not None:
            raise ConnectionLost(self.lost)
        pipes = self._pipes()
        if pipes is None:
            raise NotNow("requests are queued for the SFTP server")
        request_id = self.next_id
        packet = uint32(5 + len(fields)) + bytes((kind,)) + uint32(request_id) + fields
        if len(packet) > select.PIPE_BUF:
            raise NotNow("the request is longer than one pipe write")
        stdin, stdout, poller = pipes
        try:
            os.write(stdin, packet)  # all or nothing: at most PIPE_BUF bytes
        except BlockingIOError:
            raise NotNow("the pipe to the SFTP server is full") from None
        except OSError as exc:
            self.lose(f"writing to the SFTP server failed ({exc})")
            raise ConnectionLost(self.lost or "") from exc
        self.next_id = (request_id + 1) & 0xFFFFFFFF
        future: asyncio.Future[Reply] = self.loop.create_future()
        self.pending[request_id] = (future, None)
        deadline = time.monotonic() + timeout
        while not future.done():
            left = deadline - time.monotonic()
            if left <= 0:
                self.pending.pop(request_id, None)  # a late reply is not ours any more
                raise TimeoutError(f"no answer within {timeout:g} s")
            if not poller.poll(math.ceil(left * 1000)):
                continue
            try:
                data = os.read(stdout, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                self.lose(f"reading from the SFTP server failed ({exc})", stderr=True)
                break
            if not data:
                self.lose("the SFTP server closed its output", stderr=True)
                break
            self._parse(data)
        return future.result()

    def _pipes(self) -> tuple[int, int, select.poll] | None:
        """Return the pipes' descriptors and a poller of the output, if :meth:`ask` may write."""
        stdin, transport = self.stdin, self.transport
        if stdin is None or transport is None or stdin.is_closing():
            return None
        if stdin.get_write_buffer_size() or self.paused:
            return None
        if self._blocking is None:
            stdout = transport.get_pipe_transport(1)
            if stdout is None:
                return None
            out = stdout.get_extra_info("pipe").fileno()
            poller = select.poll()
            poller.register(out, select.POLLIN)
            self._blocking = (stdin.get_extra_info("pipe").fileno(), out, poller)
        return self._blocking

    def _write(self, *pieces: bytes | memoryview) -> None:
        if self.lost is not None:
            raise ConnectionLost(self.lost)
        assert self.stdin is not None
        for piece in pieces:
            if piece:
                self.stdin.write(piece)

    async def drain(self) -> None:
        """Wait while the pipe to the process is full."""
        if self.paused and self.lost is None:
            waiter: asyncio.Future[None] = self.loop.create_future()
            self.drained.append(waiter)
            await waiter

    def _wake_writers(self) -> None:
        waiters, self.drained = self.drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # Ending.

    def stderr_text(self) -> str:
        """Return the last bytes the process wrote to its standard error, as text."""
        return self.stderr.decode("utf-8", "replace")

    def lose(self, reason: str, stderr: bool = False) -> None:
        """End the session (once): fail the requests in flight and refuse new ones."""
        if self.lost is not None:
            return
        said = self.stderr_text().strip() if stderr else ""
        self.lost = f"{reason}: {said}" if said else reason
        pending, self.pending = self.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(self.lost))
        if not self.version.done():
            self.version.set_exception(ConnectionLost(self.lost))
            ignore(self.version)
        self._wake_writers()

    def kill(self) -> None:
        """Kill the process if it runs, and close the pipes."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if transport.get_returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                transport.kill()
        transport.close()

    async def exit_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the process to exit; tell whether it did."""
        try:
            await asyncio.wait_for(asyncio.shield(self.exited), seconds)
        except TimeoutError:
            return False
        return True

    async def ended(self, program: str) -> str:
        """Return what to say of a process that stopped before its handshake."""
        with contextlib.suppress(TimeoutError):
            # Its standard error is read to the end, and its exit status known.
            await asyncio.wait_for(asyncio.shield(self.finished), CLOSE_WAIT)
        assert self.transport is not None
        status = self.transport.get_returncode()
        what = "closed its output" if status is None else f"exited with status {status}"
        said = self.stderr_text().strip()
        return f"{program} {what} before the SFTP handshake" + (f": {said}" if said else "")
