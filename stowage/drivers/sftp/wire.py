"""An SFTP version 3 client speaking over the pipes of a child process.

The process is OpenSSH's ``ssh ... -s sftp`` (or ``sftp-server`` itself): it
reads requests on its standard input and writes replies on its standard
output. :class:`WireClient` offers the part of ``asyncssh.SFTPClient`` the
SFTP driver uses, and :class:`WireFile` that of ``asyncssh.SFTPClientFile``.

Every request carries an id; its reply resolves the future kept under that
id, so any number of requests can be in flight. Reads and writes larger than
one request send theirs in a window of at most :data:`WINDOW`, which bounds
the memory a transfer holds. Everything runs on the event loop that started
the client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import subprocess
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from stowage.drivers.sftp.packets import (
    FX_OK,
    FXP_ATTRS,
    FXP_CLOSE,
    FXP_DATA,
    FXP_EXTENDED,
    FXP_EXTENDED_REPLY,
    FXP_FSETSTAT,
    FXP_FSTAT,
    FXP_HANDLE,
    FXP_LSTAT,
    FXP_MKDIR,
    FXP_NAME,
    FXP_OPEN,
    FXP_OPENDIR,
    FXP_READ,
    FXP_READDIR,
    FXP_REMOVE,
    FXP_RENAME,
    FXP_RMDIR,
    FXP_SETSTAT,
    FXP_STAT,
    FXP_STATUS,
    FXP_WRITE,
    VERSION,
    Attrs,
    BadMessage,
    ConnectionLost,
    EndOfFile,
    Name,
    OpUnsupported,
    Reader,
    StatusError,
    status_error,
    string,
    uint32,
    uint64,
)
from stowage.drivers.sftp.process import CLOSE_WAIT, Orphan, Reply, SFTPProcess, ignore

__all__ = ["WINDOW", "OpenRequest", "WireClient", "WireFile"]

#: Requests of one read or write kept in flight.
WINDOW = 16
#: Bytes per READ and WRITE request when the server does not say its limits.
DEFAULT_BLOCK = 32 * 1024
#: The most bytes per READ or WRITE request, whatever limits the server gives.
MAX_BLOCK = 1024 * 1024


def _check(reply: Reply, expect: int) -> Reader:
    """Return a reader of ``reply`` if it is of type ``expect``; raise what a status says."""
    kind, body = reply
    reader = Reader(body)
    if kind == FXP_STATUS:
        code = reader.uint32()
        if code == FX_OK:
            if expect == FXP_STATUS:
                return reader
            raise BadMessage(f"the server answered OK where packet type {expect} was due")
        raise status_error(code, "" if reader.at_end() else reader.text())
    if kind != expect:
        raise BadMessage(f"the server answered packet type {kind} where {expect} was due")
    return reader


def _discard(futures: Iterable[asyncio.Future[Reply]]) -> None:
    """Give up on replies still due: cancel them, or collect what came."""
    for future in futures:
        if future.done():
            ignore(future)
        else:
            future.cancel()


class WireClient:
    """An SFTP version 3 session with a child process, over its pipes: see :meth:`start`."""

    def __init__(self, session: SFTPProcess) -> None:
        """Wrap a running session; use :meth:`start` to make one."""
        self._session = session
        #: The extensions the server announced, by name.
        self.extensions: dict[str, bytes] = {}
        #: The most bytes one READ request asks for.
        self.max_read = DEFAULT_BLOCK
        #: The most bytes one WRITE request carries.
        self.max_write = DEFAULT_BLOCK

    @classmethod
    async def start(
        cls, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> WireClient:
        """Run ``argv`` and open an SFTP session with it.

        Raises :class:`~stowage.drivers.sftp.packets.ConnectionLost`, naming
        what the process wrote to its standard error, if it ends before the
        handshake; :class:`OSError` if it cannot be run. A cancelled start
        kills the process.
        """
        if not argv:
            raise ValueError("argv names no program")
        loop = asyncio.get_running_loop()
        session = SFTPProcess(loop)
        await loop.subprocess_exec(
            lambda: session,
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
        client = cls(session)
        try:
            await client._handshake(argv[0])
        except BaseException:
            client.abort()
            raise
        return client

    async def _handshake(self, program: str) -> None:
        session = self._session
        try:
            session.send_init()
            reader = Reader(await session.version)
        except ConnectionLost:
            raise ConnectionLost(await session.ended(program)) from None
        version = reader.uint32()
        if version != VERSION:
            raise BadMessage(f"the server speaks SFTP version {version}, not {VERSION}")
        while not reader.at_end():
            name = reader.text()
            self.extensions[name] = reader.raw()
        if "limits@openssh.com" in self.extensions:
            try:
                limits = await self._extended("limits@openssh.com", b"", FXP_EXTENDED_REPLY)
            except ConnectionLost:
                raise
            except StatusError:
                return  # refused: the defaults hold
            limits.uint64()  # the longest packet: the read and write limits follow from it
            max_read, max_write = limits.uint64(), limits.uint64()
            self.max_read = min(max_read or DEFAULT_BLOCK, MAX_BLOCK)
            self.max_write = min(max_write or DEFAULT_BLOCK, MAX_BLOCK)

    @property
    def supports_remote_copy(self) -> bool:
        """Tell whether the server copies data itself (the ``copy-data`` extension)."""
        return "copy-data" in self.extensions

    def is_closed(self) -> bool:
        """Tell whether the session ended (closed, aborted or lost)."""
        return self._session.lost is not None

    def stderr_text(self) -> str:
        """Return the last 4 KiB the process wrote to its standard error."""
        return self._session.stderr_text()

    def abort(self) -> None:
        """End the session now: kill the process, fail the requests in flight."""
        self._session.lose("the SFTP session was aborted")
        self._session.kill()

    async def close(self) -> None:
        """End the session: close the process's input, give it a second to exit, then kill it."""
        session = self._session
        session.lose("the SFTP session was closed")
        try:
            if session.stdin is not None:
                session.stdin.close()
            if not await session.exit_within(CLOSE_WAIT):
                session.kill()
                await session.exit_within(CLOSE_WAIT)
        finally:
            session.kill()

    # Requests.

    async def _call(
        self,
        kind: int,
        fields: bytes,
        expect: int = FXP_STATUS,
        *,
        tail: bytes | memoryview = b"",
        orphan: Orphan | None = None,
    ) -> Reader:
        return _check(await self._session.send(kind, fields, tail, orphan), expect)

    async def _extended(self, name: str, fields: bytes, expect: int = FXP_STATUS) -> Reader:
        if name not in self.extensions:
            raise OpUnsupported(f"the SFTP server does not support {name}")
        return await self._call(FXP_EXTENDED, string(name) + fields, expect)

    def _forget(self, handle: bytes) -> None:
        """Close ``handle`` without waiting for the answer."""
        with contextlib.suppress(ConnectionLost):
            self._session.send(FXP_CLOSE, string(handle)).add_done_callback(ignore)

    def _close_orphan(self, reply: Reply) -> None:
        """Close the handle an open that was given up on returned."""
        if reply[0] == FXP_HANDLE:
            with contextlib.suppress(StatusError):
                self._forget(Reader(reply[1]).raw())

    async def stat(self, path: str) -> Attrs:
        """Return the attributes of ``path``, following symbolic links."""
        return (await self._call(FXP_STAT, string(path), FXP_ATTRS)).attrs()

    def stat_now(self, path: str, timeout: float) -> Attrs:
        """Do :meth:`stat` on this thread, the event loop held stopped.

        See :meth:`SFTPProcess.ask`: raises
        :class:`~stowage.drivers.sftp.process.NotNow` when the request cannot
        go out without the loop.
        """
        return _check(self._session.ask(FXP_STAT, string(path), timeout), FXP_ATTRS).attrs()

    async def lstat(self, path: str) -> Attrs:
        """Return the attributes of ``path`` itself (a symbolic link is not followed)."""
        return (await self._call(FXP_LSTAT, string(path), FXP_ATTRS)).attrs()

    async def remove(self, path: str) -> None:
        """Remove the file at ``path``."""
        await self._call(FXP_REMOVE, string(path))

    async def rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new``; fails if ``new`` exists."""
        await self._call(FXP_RENAME, string(old) + string(new))

    async def posix_rename(self, old: str, new: str) -> None:
        """Rename ``old`` to ``new``, replacing it (``posix-rename@openssh.com``)."""
        await self._extended("posix-rename@openssh.com", string(old) + string(new))

    async def mkdir(self, path: str, attrs: Attrs | None = None) -> None:
        """Create the directory ``path``."""
        await self._call(FXP_MKDIR, string(path) + (attrs or Attrs()).encode())

    async def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``."""
        await self._call(FXP_RMDIR, string(path))

    async def readdir(self, path: str) -> list[Name]:
        """Return the entries of the directory ``path``, ``.`` and ``..`` included."""
        reply = await self._call(FXP_OPENDIR, string(path), FXP_HANDLE, orphan=self._close_orphan)
        handle = reply.raw()
        names: list[Name] = []
        try:
            while True:
                try:
                    reader = await self._call(FXP_READDIR, string(handle), FXP_NAME)
                except EndOfFile:
                    break
                names += [reader.name() for _ in range(reader.uint32())]
        except BaseException:
            self._forget(handle)
            raise
        await self._call(FXP_CLOSE, string(handle))
        return names

    async def setstat(self, target: str | WireFile, attrs: Attrs) -> None:
        """Set the attributes of the file at ``target``, a path or an open file."""
        if isinstance(target, WireFile):
            await self._call(FXP_FSETSTAT, target._field() + attrs.encode())
        else:
            await self._call(FXP_SETSTAT, string(target) + attrs.encode())

    async def remote_copy(
        self,
        src: WireFile,
        dst: WireFile,
        src_offset: int = 0,
        src_length: int = 0,
        dst_offset: int = 0,
    ) -> None:
        """Have the server copy ``src_length`` bytes (0: to the end) of ``src`` into ``dst``."""
        fields = src._field() + uint64(src_offset) + uint64(src_length)
        await self._extended("copy-data", fields + dst._field() + uint64(dst_offset))

    def open(
        self,
        path: str,
        pflags: int,
        attrs: Attrs | None = None,
        *,
        encoding: None = None,
        block_size: int = -1,
    ) -> OpenRequest:
        """Open the file at ``path``: await the result, or use it in ``async with``.

        ``pflags`` combines the ``FXF_*`` flags. ``block_size`` sets the bytes
        per request (capped at the server's limits); 0 makes each read one
        request of at most the server's limit, -1 uses the limits.
        """
        if encoding is not None:
            raise ValueError("the SFTP wire client reads and writes bytes only")
        return OpenRequest(functools.partial(self._open, path, pflags, attrs, block_size))

    async def _open(self, path: str, pflags: int, attrs: Attrs | None, block_size: int) -> WireFile:
        fields = string(path) + uint32(pflags) + (attrs or Attrs()).encode()
        reply = await self._call(FXP_OPEN, fields, FXP_HANDLE, orphan=self._close_orphan)
        return WireFile(self, reply.raw(), block_size)

    # Reads and writes.

    def _send_read(self, handle: bytes, offset: int, length: int) -> asyncio.Future[Reply]:
        return self._session.send(FXP_READ, handle + uint64(offset) + uint32(length))

    async def _read(self, handle: bytes, offset: int, end: int | None, block: int) -> bytes:
        """Read from ``offset`` to ``end`` (None: the end of file) in requests of ``block``."""
        pieces: list[memoryview] = []
        window: collections.deque[tuple[int, int, asyncio.Future[Reply]]] = collections.deque()
        # Without a size, the window grows from one request, as the file proves long.
        limit = WINDOW if end is not None else 1
        position = offset
        try:
            while True:
                while len(window) < limit and (end is None or position < end):
                    length = block if end is None else min(block, end - position)
                    window.append((position, length, self._send_read(handle, position, length)))
                    position += length
                if not window:
                    break
                start, length, future = window.popleft()
                try:
                    data = _check(await future, FXP_DATA).view()
                except EndOfFile:
                    break
                if not data:
                    break
                if len(data) > length:
                    raise BadMessage(f"the server sent {len(data)} bytes for a read of {length}")
                pieces.append(data)
                if len(data) < length:
                    # A short answer: the rest of its block comes before the blocks after it.
                    rest, missing = start + len(data), length - len(data)
                    window.appendleft((rest, missing, self._send_read(handle, rest, missing)))
                elif limit < WINDOW:
                    limit *= 2
        finally:
            _discard(future for _, _, future in window)
        return b"".join(pieces)

    async def _write(self, handle: bytes, data: bytes, offset: int, block: int) -> int:
        """Write ``data`` at ``offset`` in requests of ``block``; raise the first error."""
        view = memoryview(data).cast("B")
        window: collections.deque[asyncio.Future[Reply]] = collections.deque()
        error: StatusError | None = None
        try:
            for start in range(0, len(view), block):
                if len(window) >= WINDOW:
                    error = await self._outcome(window.popleft())
                    if error is not None:
                        break
                piece = view[start : start + block]
                fields = handle + uint64(offset + start) + uint32(len(piece))
                window.append(self._session.send(FXP_WRITE, fields, piece))
                await self._session.drain()
            while window:
                outcome = await self._outcome(window.popleft())
                error = error or outcome
        finally:
            _discard(window)
        if error is not None:
            raise error
        return len(view)

    @staticmethod
    async def _outcome(future: asyncio.Future[Reply]) -> StatusError | None:
        try:
            _check(await future, FXP_STATUS)
        except StatusError as exc:
            return exc
        return None


class WireFile:
    """A file open on a :class:`WireClient`'s server."""

    def __init__(self, client: WireClient, handle: bytes, block_size: int = -1) -> None:
        """Wrap the server's ``handle``; see :meth:`WireClient.open`."""
        self._client = client
        self._handle = handle
        self._closed = False
        size = block_size if block_size > 0 else None
        #: Bytes per READ request; 0 makes a read one request (at most the server's limit).
        self.read_len = 0 if block_size == 0 else min(size or MAX_BLOCK, client.max_read)
        self._write_len = min(size or MAX_BLOCK, client.max_write)

    def _field(self) -> bytes:
        """Return the handle, as a request's string field."""
        if self._closed:
            raise ValueError("I/O operation on a closed SFTP file")
        return string(self._handle)

    async def read(self, size: int = -1, offset: int = 0) -> bytes:
        """Return up to ``size`` bytes from ``offset`` (all to the end if negative).

        The result is short only at the end of the file (past it, it is empty),
        or with :attr:`read_len` 0, which makes the read one request.
        """
        if size == 0:
            return b""
        limit = self._client.max_read
        if self.read_len == 0:
            # One request, whatever it brings: short of ``size`` at the end of the
            # file or past the server's limit (no second request to find the end).
            length = limit if size < 0 else min(size, limit)
            request = self._client._send_read(self._field(), offset, length)
            try:
                reply = _check(await request, FXP_DATA)
            except EndOfFile:
                return b""
            return reply.view().tobytes()
        block = min(self.read_len, limit)
        end = None if size < 0 else offset + size
        return await self._client._read(self._field(), offset, end, block)

    async def write(self, data: bytes, offset: int = 0) -> int:
        """Write ``data`` at ``offset``; return its length."""
        return await self._client._write(self._field(), data, offset, self._write_len)

    async def stat(self) -> Attrs:
        """Return the attributes of the open file."""
        return (await self._client._call(FXP_FSTAT, self._field(), FXP_ATTRS)).attrs()

    async def setstat(self, attrs: Attrs) -> None:
        """Set the attributes of the open file."""
        await self._client.setstat(self, attrs)

    async def close(self) -> None:
        """Close the file (a second close does nothing)."""
        if self._closed:
            return
        field = self._field()
        self._closed = True
        await self._client._call(FXP_CLOSE, field)

    async def __aenter__(self) -> WireFile:
        """Return the file; it is closed when the block ends."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the file (quietly if the block failed: its error matters more)."""
        if exc is None:
            await self.close()
        else:
            with contextlib.suppress(Exception):
                await self.close()


class OpenRequest:
    """A file being opened: await it for the :class:`WireFile`, or open it with ``async with``."""

    __slots__ = ("_file", "_open")

    def __init__(self, open_file: Callable[[], Coroutine[Any, Any, WireFile]]) -> None:
        """Wrap the coroutine function that opens the file."""
        self._open = open_file
        self._file: WireFile | None = None

    def __await__(self) -> Generator[Any, None, WireFile]:
        """Open the file and return it."""
        return self._open().__await__()

    async def __aenter__(self) -> WireFile:
        """Open the file; it is closed when the block ends."""
        self._file = await self._open()
        return self._file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the file, as :meth:`WireFile.__aexit__` does."""
        if self._file is not None:
            await self._file.__aexit__(exc_type, exc, traceback)
