"""Give every storage an async API with the sync API's semantics.

``Storage.asave``, ``aopen``, ``aexists``, ``adelete``, ``asize``, ``aurl``,
``alistdir`` and ``aget_modified_time`` follow the same name rules, atomic
create, alternative names, ranged reads and errors as their sync twins. They
await the driver's async methods: natively async for drivers that declare
``native_async``, on a worker thread otherwise (see
:mod:`stowage.drivers.base`).

:class:`AsyncStorageFile` is the async file: ``await read(n)``, ``await
write(data)``, ``await seek(...)``, ``await aclose()``, ``async for chunk in
f`` and ``async with``. Reading plans its ranged requests exactly like the
sync file (:class:`stowage.files.ReadCursor`); writing spools locally and
uploads on ``aclose()``, and leaving ``async with`` through an exception
uploads nothing.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from stowage.files import ReadCursor
from stowage.saving import new_spool

if TYPE_CHECKING:
    from stowage.binding import Binding
    from stowage.drivers.base import AsyncDownload, ObjectInfo

__all__ = ["AsyncStorageFile"]

#: Bytes an async iteration yields at a time at most.
_ITER_CHUNK = 256 * 1024


class AsyncStorageFile:
    """An async file on a stowage storage, in one mode."""

    def __init__(self, storage: Binding, name: str, mode: str = "rb") -> None:
        if mode not in ("rb", "r", "wb", "w"):
            raise ValueError(f"Unsupported mode {mode!r} for aopen(); use 'rb', 'r', 'wb' or 'w'.")
        self._storage = storage
        self.name = name
        self.mode = mode
        self._key = storage.key(name)
        self._cursor = ReadCursor(self._key, storage.options.read_buffer_size)
        self._download: AsyncDownload | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._spool: Any = None
        self.closed = False
        if "w" in mode:
            self._spool = new_spool(storage.options.max_memory_size)

    # -- reading -------------------------------------------------------------------

    async def _open(self, start: int, end: int | None) -> None:
        await self._drop()
        download = await self._storage.driver.aget(self._key, start=start, end=end)
        self._download = download
        self._chunks = aiter(download)
        self._cursor.opened(start, end, download.info.size)

    async def _drop(self) -> None:
        if self._download is not None:
            await self._download.aclose()
        self._download = None
        self._chunks = None

    async def _next(self) -> bytes | memoryview:
        if self._cursor.leftover:
            return self._cursor.leftover
        if self._chunks is None:
            return b""
        return await anext(self._chunks, b"")

    async def _read_some(self, want: int) -> bytes:
        cursor = self._cursor
        if cursor.at_end():
            return b""
        planned = cursor.before_read()
        if planned is not None:
            await self._open(*planned)
        if cursor.at_end():
            return b""
        while not (data := await self._next()):
            await self._open(*cursor.after_empty())
        return bytes(cursor.take(data, want))

    async def read(self, size: int = -1) -> Any:
        """Read up to ``size`` bytes (all that is left when negative); str in mode 'r'."""
        self._check("r")
        parts = []
        remaining = size
        while remaining != 0:
            piece = await self._read_some(_ITER_CHUNK if remaining < 0 else remaining)
            if not piece:
                break
            parts.append(piece)
            if remaining > 0:
                remaining -= len(piece)
        data = b"".join(parts)
        return data.decode("utf-8") if self.mode == "r" else data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the content in chunks from the current position (for streaming)."""
        self._check("r")
        while piece := await self._read_some(_ITER_CHUNK):
            yield piece

    async def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position; SEEK_END may ask the service for the size."""
        size = await self.asize() if whence == io.SEEK_END else None
        self._cursor.pos = self._cursor.seek_target(offset, whence, size)
        return self._cursor.pos

    def tell(self) -> int:
        """Return the position."""
        return self._cursor.pos if self._spool is None else int(self._spool.tell())

    async def asize(self) -> int:
        """Return the size in bytes without downloading the content."""
        if self._spool is not None:
            position = self._spool.tell()
            size = int(self._spool.seek(0, io.SEEK_END))
            self._spool.seek(position)
            return size
        if self._cursor.size is None:
            info: ObjectInfo = await self._storage.driver.ahead(self._key)
            self._cursor.size = info.size
        return self._cursor.size

    # -- writing ---------------------------------------------------------------------

    async def write(self, data: Any) -> int:
        """Append ``data`` (bytes, or str in mode 'w') to what close will upload."""
        self._check("w")
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._spool.write(raw)
        return len(data)

    def _check(self, kind: str) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        if kind not in self.mode:
            raise io.UnsupportedOperation(f"File opened in mode {self.mode!r}.")

    # -- closing -----------------------------------------------------------------------

    async def aclose(self, *, upload: bool = True) -> None:
        """Close; in a write mode, upload what was written unless ``upload`` is False."""
        if self.closed:
            return
        self.closed = True
        await self._drop()
        spool, self._spool = self._spool, None
        if spool is None:
            return
        try:
            if upload:
                size = spool.tell()
                spool.seek(0)
                await self._storage.aupload(self.name, spool, size=size)
        finally:
            spool.close()

    async def __aenter__(self) -> AsyncStorageFile:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        await self.aclose(upload=exc_type is None)

    def __repr__(self) -> str:
        return f"<AsyncStorageFile: {self.name} ({self.mode})>"
