"""Give every driver the same Django ``File``: lazy ranged reads, streaming writes.

Reading: opening does no network work. The first read fetches
``read_buffer_size`` bytes with a ranged request (so reading an image header
or the first 64 KiB of a huge object costs about that much); a read that
continues sequentially streams the rest in one request, chunk by chunk.
A seek elsewhere starts a new ranged request. A body that ends before the
length the service announced is resumed with a ranged request, and raises
:class:`~stowage.exceptions.IncompleteRead` if that fails too: truncated data
is never returned as if complete.

Writing: bytes go to a spooled temporary file (memory up to
``max_memory_size``, then disk) and are streamed to the driver on ``close()``.
Leaving a ``with`` block through an exception discards them: an interrupted
write leaves nothing visible.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.files.base import File

from stowage.exceptions import IncompleteRead
from stowage.saving import new_spool

if TYPE_CHECKING:
    from stowage.binding import Binding
    from stowage.drivers.base import Download, Driver

__all__ = ["RangedReader", "StorageFile"]

_RESUMES = 2
_READ_MODES = {"r", "rb", "rt"}
_WRITE_MODES = {"w", "wb", "wt"}


class ReadCursor:
    """Track a reader's position and plan its ranged requests; do no I/O.

    The sync and async readers share it, so both read the same way: a first
    request of ``first_window`` bytes, then one streaming request to the end
    while reads stay sequential, and a new window after a seek.
    """

    def __init__(self, key: str, first_window: int) -> None:
        self.key = key
        self.first_window = first_window
        self.pos = 0
        self.size: int | None = None
        self.streaming = False
        self.stream_pos = 0
        self.stream_end = 0
        #: The unread rest of the last chunk, a view on it (slicing copies nothing).
        self.leftover: bytes | memoryview = b""
        self.resumes = 0

    def at_end(self) -> bool:
        """Tell whether the position is at or past the known end of the object."""
        return self.size is not None and self.pos >= self.size

    def _range(self, sequential: bool) -> tuple[int, int | None]:
        end = None if sequential else self.pos + self.first_window
        if end is not None and self.size is not None:
            end = min(end, self.size)
        return self.pos, end

    def before_read(self) -> tuple[int, int | None] | None:
        """Return the range to request before reading, or None to keep the open stream."""
        if not self.streaming or self.stream_pos != self.pos:
            return self._range(sequential=False)
        if self.stream_pos >= self.stream_end:
            return self._range(sequential=True)
        return None

    def opened(self, start: int, end: int | None, size: int) -> None:
        """Record a new request for ``start``-``end`` of an object of ``size`` bytes."""
        self.streaming = True
        self.size = size
        self.stream_pos = start
        self.stream_end = size if end is None else min(end, size)
        self.leftover = b""

    def after_empty(self) -> tuple[int, int | None]:
        """Plan what follows a stream that gave no more bytes, or raise if it was cut."""
        if self.stream_pos < self.stream_end:
            if self.resumes == _RESUMES:
                raise IncompleteRead(
                    f"Reading {self.key!r} ended at byte {self.stream_pos} of {self.stream_end}."
                )
            self.resumes += 1
        return self._range(sequential=True)

    def take(self, data: bytes | memoryview, want: int) -> memoryview:
        """Consume up to ``want`` bytes of ``data``, keeping the rest for later (no copies)."""
        view = data if isinstance(data, memoryview) else memoryview(data)
        count = min(want, len(view))
        self.leftover = view[count:]
        self.pos += count
        self.stream_pos += count
        self.resumes = 0
        return view[:count]

    def seek_target(self, offset: int, whence: int, size: int | None) -> int:
        """Return the position a seek moves to (``size`` is needed for SEEK_END)."""
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.pos + offset
        elif whence == io.SEEK_END:
            assert size is not None
            target = size + offset
        else:
            raise ValueError(f"Invalid whence ({whence!r}).")
        if target < 0:
            raise ValueError(f"Negative seek position {target}.")
        return target


class RangedReader(io.RawIOBase):
    """Read one object through ranged, streaming driver requests."""

    def __init__(self, driver: Driver[Any], key: str, first_window: int) -> None:
        super().__init__()
        self._driver = driver
        self._cursor = ReadCursor(key, first_window)
        self._download: Download | None = None
        self._chunks: Iterator[bytes] = iter(())

    def readable(self) -> bool:
        """Say that this stream reads."""
        return True

    def seekable(self) -> bool:
        """Say that this stream seeks."""
        return True

    @property
    def size(self) -> int:
        """Return the object's size, asking the driver only if no read told it yet."""
        if self._cursor.size is None:
            self._cursor.size = self._driver.head(self._cursor.key).size
        return self._cursor.size

    def tell(self) -> int:
        """Return the current position."""
        return self._cursor.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position; the next read starts a new request if needed."""
        size = self.size if whence == io.SEEK_END else None
        self._cursor.pos = self._cursor.seek_target(offset, whence, size)
        return self._cursor.pos

    def _drop_stream(self) -> None:
        if self._download is not None:
            self._download.close()
        self._download = None
        self._chunks = iter(())

    def _open(self, start: int, end: int | None) -> None:
        self._drop_stream()
        download = self._driver.get(self._cursor.key, start=start, end=end)
        self._download = download
        self._chunks = iter(download)
        self._cursor.opened(start, end, download.info.size)

    def _piece(self, want: int) -> memoryview | None:
        """Return up to ``want`` bytes from the current position (None at the end)."""
        cursor = self._cursor
        if cursor.at_end():
            return None
        planned = cursor.before_read()
        if planned is not None:
            self._open(*planned)
        if cursor.at_end():
            return None
        while not (data := cursor.leftover or next(self._chunks, b"")):
            self._open(*cursor.after_empty())
        return cursor.take(data, want)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; return 0 at the end."""
        view = memoryview(buffer).cast("B")
        piece = self._piece(len(view)) if len(view) else None
        if piece is None:
            return 0
        view[: len(piece)] = piece
        return len(piece)

    def readall(self) -> bytes:
        """Read to the end, a whole chunk at a time."""
        parts = []
        while (piece := self._piece(1 << 62)) is not None:
            parts.append(piece)
        return b"".join(parts)

    def close(self) -> None:
        """Release the open request, if any."""
        self._drop_stream()
        super().close()


class StorageFile(File):  # type: ignore[type-arg]
    """A Django ``File`` backed by a stowage storage, in one mode at a time."""

    #: The modes a stowage file opens in on every backend.
    MODES: frozenset[str] = frozenset(_READ_MODES | _WRITE_MODES)

    def __init__(self, storage: Binding, name: str, mode: str = "rb") -> None:
        self._storage = storage
        self._reader: RangedReader | None = None
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._discard = False
        self.name = name
        self.mode = mode
        self.file = self._make(mode)

    def _make(self, mode: str) -> Any:
        storage = self._storage
        if mode in _READ_MODES:
            self._reader = RangedReader(
                storage.driver, storage.key(self.name), storage.options.read_buffer_size
            )
            buffered = io.BufferedReader(self._reader, storage.options.read_buffer_size)
            if "b" in mode:
                return buffered
            return io.TextIOWrapper(buffered, encoding="utf-8")
        if mode in _WRITE_MODES:
            self._spool = new_spool(storage.options.max_memory_size)
            if "b" in mode:
                return self._spool
            return io.TextIOWrapper(self._spool, encoding="utf-8", write_through=True)
        raise ValueError(
            f"Unsupported mode {mode!r} for {type(storage).__name__}.open(); "
            "use 'rb', 'r', 'wb' or 'w'."
        )

    @property
    def size(self) -> int:
        """Return the size in bytes without downloading the content."""
        if self._reader is not None:
            return self._reader.size
        if self._spool is not None and self.file is not None:
            self.file.flush()
            return self._disk_size()
        return int(super().size)

    def _disk_size(self) -> int:
        assert self._spool is not None
        position = self._spool.tell()
        size = self._spool.seek(0, io.SEEK_END)
        self._spool.seek(position)
        return size

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> StorageFile:
        """Reopen the file (rewind if open), possibly in another mode."""
        if not self.closed and (mode is None or mode == self.mode):
            self.seek(0)
            return self
        self.close()
        self.mode = mode or self.mode
        self._discard = False
        self.file = self._make(self.mode)
        return self

    def close(self) -> None:
        """Close; in a write mode, upload what was written (unless discarded)."""
        # The closed file stays in place, so a later read raises ValueError
        # ("I/O operation on closed file") as Python's files do.
        file = self.file
        if file is None or file.closed:
            return
        try:
            if self._spool is not None and not self._discard:
                file.flush()
                self._spool.seek(0)
                self._storage.upload(str(self.name), self._spool, size=self._disk_size())
        finally:
            file.close()
            self._reader = None
            self._spool = None

    def discard(self) -> None:
        """Close without uploading what was written."""
        self._discard = True
        self.close()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def __repr__(self) -> str:
        return f"<StorageFile: {self.name} ({self.mode})>"
