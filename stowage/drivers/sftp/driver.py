"""Answer the driver contract for a directory on an SSH server.

Each call becomes one trip to the connection's loop (retried there on a new
connection when the old one is gone). An upload whose content is not all in
hand streams it: one write stays in flight while the next chunk is read from
the source, which is read outside any error translation (its errors are its
own).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from stowage.drivers import _server
from stowage.drivers._ssh_loop import SharedLoop
from stowage.drivers.base import (
    AsyncDownload,
    Capability,
    Download,
    Driver,
    ObjectInfo,
    Prefix,
    Readable,
)
from stowage.drivers.sftp import paths
from stowage.drivers.sftp.connection import Connection
from stowage.drivers.sftp.options import SFTPOptions
from stowage.drivers.sftp.reading import CHUNK, RangeReader, open_read
from stowage.drivers.sftp.writing import Writer
from stowage.exceptions import ConfigurationError
from stowage.records import record

__all__ = ["SFTPDriver"]

_T = TypeVar("_T")


def _chunks(stream: Readable) -> Iterator[bytes]:
    """Yield ``stream``'s bytes in chunks, until it gives none."""
    while chunk := stream.read(CHUNK):
        yield chunk


@record(slots=True)
class _Wait:
    """A step of an operation: work on the connection's loop, and waiting for it.

    ``work`` is a coroutine to run, or a future of work already handed to
    the loop. With ``settle`` the step only waits for the work to end,
    whatever its outcome.
    """

    work: Coroutine[Any, Any, Any] | Future[Any]
    settle: bool = False


#: An operation written once: it yields the loop's work to wait for and gets each result.
_Steps = Generator[_Wait, Any, _T]


def _wait_each(steps: _Steps[_T], runner: SharedLoop) -> _T:
    """Run ``steps`` from a thread, running each step's work on the loop while it waits."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        work = step.work
        try:
            result = runner.wait(work) if isinstance(work, Future) else runner.run(work)
        except BaseException as exc:  # handed to the operation, which cleans up and re-raises
            if not step.settle:
                error = exc
            result = None


async def _await_each(steps: _Steps[_T], runner: SharedLoop) -> _T:
    """Run ``steps`` from another event loop, awaiting each step's work."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        result, error = None, None
        work = step.work
        waiting = asyncio.wrap_future(work if isinstance(work, Future) else runner.submit(work))
        try:
            if step.settle:
                await asyncio.wait([waiting])
            else:
                result = await waiting
        except BaseException as exc:  # handed to the operation, which cleans up and re-raises
            error = exc


class SFTPDriver(Driver[SFTPOptions]):
    """Move bytes to and from a directory on an SSH server."""

    options_class = SFTPOptions
    claimed_options = frozenset({"base_url"})
    capabilities = frozenset(
        {
            Capability.ATOMIC_CREATE,
            Capability.REAL_DIRECTORIES,
            Capability.PUBLIC_URL,
            Capability.ACCESSED_TIME,
        }
    )
    # Linux paths end at 4096 bytes, and the key lies below root_path.
    max_key_bytes = 3072
    max_part_bytes = 255
    native_async = True

    def __init__(self, options: SFTPOptions) -> None:
        super().__init__(options)
        if not options.host:
            raise ConfigurationError("SFTP storage needs 'host' (OPTIONS or SFTP_STORAGE_HOST).")
        self._connection = Connection(options)
        self._writer = Writer(self._connection)
        root = options.root_path
        self._root = root if root in ("", "/") else root.rstrip("/")

    def _path(self, key: str) -> str:
        if not self._root:
            return key or "."
        return _server.below_root(self._root, key)

    def close(self) -> None:
        """Close the connection; the next call opens a new one."""
        self._connection.close()

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Write to a temporary file beside ``key``, then rename it into place."""
        return _wait_each(self._put_steps(key, stream, if_absent), self._connection.loop())

    async def aput(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str | None = None,
        if_absent: bool = False,
        cache_control: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Do :meth:`put` without blocking the event loop."""
        return await _await_each(self._put_steps(key, stream, if_absent), self._connection.loop())

    def _put_steps(self, key: str, stream: Readable, if_absent: bool) -> _Steps[ObjectInfo]:
        """Upload ``stream``: the one algorithm of :meth:`put` and :meth:`aput`."""
        what, path = f"writing {key!r}", self._path(key)
        conn, writer = self._connection, self._writer
        runner = conn.loop()
        # The source is read outside any translation: its errors are its own.
        chunks = _chunks(stream)
        head = [next(chunks, b""), next(chunks, b"")]
        if not head[1]:
            # All the content is in hand: one trip to the loop (retried on a new
            # connection if the old one turns out to be gone; a whole upload that
            # timed out may have landed, so only a lost one is sent again).
            with conn.errors(what):
                whole = conn.attempt(
                    writer.put_whole, path, key, head[0], if_absent, idempotent=False
                )
                info: ObjectInfo = yield _Wait(whole)
            return info
        with conn.errors(what):
            upload = yield _Wait(conn.attempt(writer.open_temp, path, key))
        pending: Future[None] | None = None
        offset = 0
        try:
            for chunk in itertools.chain(head, chunks):
                if pending is not None:
                    with conn.errors(what):
                        yield _Wait(pending)
                # One write in flight while the next chunk is read.
                pending = runner.submit(writer.write(upload, chunk, offset))
                offset += len(chunk)
            with conn.errors(what):
                if pending is not None:
                    yield _Wait(pending)
                info = yield _Wait(writer.finish(upload, if_absent))
            return info
        except BaseException:
            if pending is not None:
                yield _Wait(pending, settle=True)
            yield _Wait(writer.discard(upload))
            raise

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Download:
        """Open the file and stream the range, one chunk read ahead."""
        what = f"reading {key!r}"
        handle, attrs, data = self._connection.run(
            what, open_read, self._path(key), key, start, end
        )
        reader = RangeReader(
            self._connection, paths.info(key, attrs), handle, (start, end), data, what
        )
        return Download(reader.info, reader.chunks(), reader.close)

    async def aget(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncDownload:
        """Do :meth:`get` without blocking the event loop."""
        what = f"reading {key!r}"
        handle, attrs, data = await self._connection.arun(
            what, open_read, self._path(key), key, start, end
        )
        reader = RangeReader(
            self._connection, paths.info(key, attrs), handle, (start, end), data, what
        )

        async def close() -> None:
            reader.close()

        return AsyncDownload(reader.info, reader.achunks(), close)

    def head(self, key: str) -> ObjectInfo:
        """Describe the file at ``key``; a directory is not an object."""
        return paths.described(key, self._connection.stat(f"inspecting {key!r}", self._path(key)))

    async def ahead(self, key: str) -> ObjectInfo:
        """Do :meth:`head` without blocking the event loop."""
        return await self._connection.arun(f"inspecting {key!r}", paths.head, self._path(key), key)

    def exists(self, key: str) -> bool:
        """Tell whether a file or directory exists at ``key``."""
        return self._connection.stat(f"inspecting {key!r}", self._path(key)) is not None

    async def aexists(self, key: str) -> bool:
        """Do :meth:`exists` without blocking the event loop."""
        return await self._connection.arun(f"inspecting {key!r}", paths.exists, self._path(key))

    def is_dir(self, key: str) -> bool:
        """Tell whether ``key`` is a directory."""
        attrs = self._connection.stat(f"inspecting {key!r}", self._path(key))
        return attrs is not None and paths.is_dir(attrs)

    def delete(self, key: str) -> None:
        """Remove the file, or the directory if it is empty; a missing key is fine.

        A directory that still holds files is left alone, as the local driver
        leaves it: it is not a file, so there is nothing to delete.
        """
        self._connection.run(f"deleting {key!r}", paths.delete, self._path(key))

    async def adelete(self, key: str) -> None:
        """Do :meth:`delete` without blocking the event loop."""
        await self._connection.arun(f"deleting {key!r}", paths.delete, self._path(key))

    def list(self, prefix: str, *, recursive: bool = False) -> Iterator[ObjectInfo | Prefix]:
        """List a directory, one request per directory; a missing one lists nothing."""
        entries = self._connection.run(f"listing {prefix!r}", paths.readdir, self._path(prefix))
        base = f"{prefix}/" if prefix else ""
        for name, attrs in entries:
            key = base + name
            if not paths.is_dir(attrs):
                yield paths.info(key, attrs)
            elif recursive:
                yield from self.list(key, recursive=True)
            else:
                yield Prefix(key)

    async def alist(self, prefix: str, *, recursive: bool = False) -> Sequence[ObjectInfo | Prefix]:
        """Do :meth:`list` without blocking the event loop (the whole listing)."""
        entries = await self._connection.arun(
            f"listing {prefix!r}", paths.readdir, self._path(prefix)
        )
        base = f"{prefix}/" if prefix else ""
        found: list[ObjectInfo | Prefix] = []
        for name, attrs in entries:
            key = base + name
            if not paths.is_dir(attrs):
                found.append(paths.info(key, attrs))
            elif recursive:
                found += await self.alist(key, recursive=True)
            else:
                found.append(Prefix(key))
        return found

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy on the server where it offers ``copy-data``, else through this client."""
        conn, writer = self._connection, self._writer
        if not conn.run(f"copying {src!r}", paths.supports_remote_copy):
            return super().copy(src, dst)
        what = f"copying {src!r} to {dst!r}"
        upload = conn.run(what, writer.open_temp, self._path(dst), dst)
        runner = conn.loop()
        try:
            with conn.errors(what):
                runner.run(conn.timed(writer.copy_from(upload, self._path(src))))
                return runner.run(writer.finish(upload, False))
        except BaseException:
            runner.run(writer.discard(upload))
            raise

    def public_url(self, key: str) -> str:
        """Return ``base_url`` followed by the quoted key."""
        return _server.public_url(
            self.options.base_url,
            key,
            missing="SFTP storage has no URL for its files: set the 'base_url' option "
            "(or SFTP_BASE_URL) to the address where root_path is served.",
        )
