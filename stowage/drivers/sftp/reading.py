"""Read a range of a remote file, keeping reads in flight while the caller consumes.

The file is opened, then its size asked and its first block read in one
round trip: one READ request of at most the server's largest, so a small
file is read whole without a second READ after a short answer to find the
end. Then up to :data:`READ_AHEAD` reads of :data:`CHUNK` bytes (the client
splits each into parallel requests) stay in
flight on the loop while the caller handles the previous chunk. A file that
ends before its range does raises :class:`~stowage.exceptions.IncompleteRead`.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import cast

from stowage.drivers.base import MiB, ObjectInfo
from stowage.drivers.sftp.clients import Attributes, RemoteFile, Session
from stowage.drivers.sftp.connection import Connection
from stowage.drivers.sftp.packets import FXF_READ
from stowage.drivers.sftp.paths import is_file
from stowage.exceptions import IncompleteRead, NotFound

__all__ = ["CHUNK", "READ_AHEAD", "RangeReader", "open_read"]

#: Bytes per read or write call; the client splits it into parallel SFTP requests.
CHUNK = MiB
#: Read calls kept in flight while the consumer handles the previous chunk.
READ_AHEAD = 2


#: Closes sent without waiting for their answer, kept until they end.
_CLOSING: set[asyncio.Future[None]] = set()


async def open_read(
    sftp: Session, path: str, key: str, start: int, end: int | None
) -> tuple[RemoteFile | None, Attributes, bytes]:
    """Open ``path``; return it with its attributes and the range's first block from ``start``.

    The block is one READ request of at most the server's largest: its
    answer may be short of the range (the file's end, or the server's own
    limit), and the rest is read afterwards. When the block holds the whole
    range the file is closed at once, its answer not waited for, and no
    handle is returned.
    """
    handle = await sftp.open(path, FXF_READ, encoding=None)
    largest = handle.read_len
    first = CHUNK if end is None else max(0, min(CHUNK, end - start))
    if largest:
        first = min(first, largest)
    try:
        # The size and the first block in one round trip; read_len 0 makes the
        # client send the read as one request, not re-read after a short answer.
        handle.read_len = 0
        stat_task = asyncio.ensure_future(handle.stat())
        read_task = asyncio.ensure_future(handle.read(first, start)) if first else None
        attrs = await stat_task
        if not is_file(attrs):
            if read_task is not None:
                await asyncio.gather(read_task, return_exceptions=True)
            raise NotFound(f"{key!r} is a directory, not a file.")
        data = b"" if read_task is None else cast(bytes, await read_task)
    except BaseException:
        with contextlib.suppress(Exception):
            await handle.close()
        raise
    finally:
        handle.read_len = largest
    size = attrs.size or 0
    if start + len(data) >= (size if end is None else min(end, size)):
        closing = asyncio.ensure_future(_close_quietly(handle))
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)
        return None, attrs, data
    return handle, attrs, data


async def _close_quietly(handle: RemoteFile) -> None:
    # A read handle's close cannot lose data: a failure only frees it on the server later.
    with contextlib.suppress(Exception):
        await handle.close()


class RangeReader:
    """Stream one range of an open remote file, keeping reads in flight."""

    def __init__(
        self,
        connection: Connection,
        info: ObjectInfo,
        handle: RemoteFile | None,
        span: tuple[int, int | None],
        first: bytes,
        what: str,
    ) -> None:
        start, end = span
        self.connection = connection
        self.info = info
        self.handle: RemoteFile | None = handle
        self.what = what
        self.stop = max(start, info.size if end is None else min(end, info.size))
        # The first block came with the size; keep what the range covers of it.
        # Short of the range, the rest is read next (and found missing there
        # if the file ended early).
        self.first = first[: self.stop - start]
        self.next = start + len(self.first)
        self.queue: collections.deque[tuple[int, concurrent.futures.Future[bytes]]] = (
            collections.deque()
        )

    async def _read(self, handle: RemoteFile, size: int, offset: int) -> bytes:
        return cast(bytes, await self.connection.timed(handle.read(size, offset)))

    async def _close_handle(
        self,
        handle: RemoteFile,
        reads: Sequence[concurrent.futures.Future[bytes]] = (),
    ) -> None:
        await asyncio.gather(*(asyncio.wrap_future(read) for read in reads), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.connection.timed(handle.close())

    def _fill(self) -> None:
        runner = self.connection.loop()
        while self.handle is not None and len(self.queue) < READ_AHEAD and self.next < self.stop:
            size = min(CHUNK, self.stop - self.next)
            future = runner.submit(self._read(self.handle, size, self.next))
            self.queue.append((size, future))
            self.next += size

    def _check(self, missing: int) -> None:
        if missing > 0:
            raise IncompleteRead(
                f"{self.what}: the file ended {missing} bytes early (it changed while being read)."
            )

    def chunks(self) -> Iterator[bytes]:
        """Yield the range's bytes in order, reading ahead."""
        try:
            self._fill()
            if self.first:
                yield self.first
            while self.queue:
                wanted, future = self.queue.popleft()
                with self.connection.errors(self.what):
                    data = self.connection.loop().wait(future)
                self._check(wanted - len(data))
                self._fill()
                yield data
        finally:
            self.close()

    async def achunks(self) -> AsyncIterator[bytes]:
        """Yield the range's bytes in order, reading ahead, without blocking the loop."""
        try:
            self._fill()
            if self.first:
                yield self.first
            while self.queue:
                wanted, future = self.queue.popleft()
                with self.connection.errors(self.what):
                    data = await asyncio.wrap_future(future)
                self._check(wanted - len(data))
                self._fill()
                yield data
        finally:
            self.close()

    def close(self) -> None:
        """Close the remote file once the reads in flight end, without waiting for it."""
        handle, self.handle = self.handle, None
        # Not cancelled: the client would leave the parallel requests of a
        # cancelled read running with no one to collect their outcome.
        pending = [future for _, future in self.queue]
        self.queue.clear()
        if handle is not None:
            with contextlib.suppress(RuntimeError):
                self.connection.loop().submit(self._close_handle(handle, pending))
