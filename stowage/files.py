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

if TYPE_CHECKING:
    from stowage.drivers.base import Download, Driver
    from stowage.storage import Storage

__all__ = ["RangedReader", "StorageFile"]

_RESUMES = 2
_READ_MODES = {"r", "rb", "rt"}
_WRITE_MODES = {"w", "wb", "wt"}


class RangedReader(io.RawIOBase):
    """Read one object through ranged, streaming driver requests."""

    def __init__(self, driver: Driver, key: str, first_window: int) -> None:
        super().__init__()
        self._driver = driver
        self._key = key
        self._first_window = first_window
        self._pos = 0
        self._size: int | None = None
        self._download: Download | None = None
        self._chunks: Iterator[bytes] | None = None
        self._stream_pos = 0
        self._stream_end: int | None = None
        self._leftover = b""

    def readable(self) -> bool:
        """Say that this stream reads."""
        return True

    def seekable(self) -> bool:
        """Say that this stream seeks."""
        return True

    @property
    def size(self) -> int:
        """Return the object's size, asking the driver only if no read told it yet."""
        if self._size is None:
            self._size = self._driver.head(self._key).size
        return self._size

    def tell(self) -> int:
        """Return the current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position; the next read starts a new request if needed."""
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"Invalid whence ({whence!r}).")
        if target < 0:
            raise ValueError(f"Negative seek position {target}.")
        self._pos = target
        return target

    def _drop_stream(self) -> None:
        if self._download is not None:
            self._download.close()
        self._download = None
        self._chunks = None
        self._leftover = b""

    def _open_stream(self, sequential: bool) -> None:
        self._drop_stream()
        end = None if sequential else self._pos + self._first_window
        if end is not None and self._size is not None:
            end = min(end, self._size)
        download = self._driver.get(self._key, start=self._pos, end=end)
        self._download = download
        self._chunks = iter(download)
        self._size = download.info.size
        self._stream_pos = self._pos
        self._stream_end = self._size if end is None else min(end, self._size)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; return 0 at the end."""
        view = memoryview(buffer).cast("B")
        if not len(view) or (self._size is not None and self._pos >= self._size):
            return 0
        if self._chunks is None or self._stream_pos != self._pos:
            self._open_stream(sequential=False)
        elif self._stream_end is not None and self._stream_pos >= self._stream_end:
            self._open_stream(sequential=True)
        assert self._size is not None
        if self._pos >= self._size:
            return 0
        resumes = 0
        while True:
            data = self._leftover or next(self._chunks or iter(()), b"")
            if data:
                break
            assert self._stream_end is not None
            if self._stream_pos >= self._stream_end:
                # This window is done; continue with one streaming request.
                self._open_stream(sequential=True)
                continue
            if resumes == _RESUMES:
                raise IncompleteRead(
                    f"Reading {self._key!r} ended at byte {self._stream_pos} of {self._stream_end}."
                )
            resumes += 1
            self._open_stream(sequential=True)
        count = min(len(view), len(data))
        view[:count] = data[:count]
        self._leftover = data[count:]
        self._pos += count
        self._stream_pos += count
        return count

    def close(self) -> None:
        """Release the open request, if any."""
        self._drop_stream()
        super().close()


class StorageFile(File):  # type: ignore[type-arg]
    """A Django ``File`` backed by a stowage storage, in one mode at a time."""

    def __init__(self, storage: Storage, name: str, mode: str = "rb") -> None:
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
            self._spool = tempfile.SpooledTemporaryFile(storage.options.max_memory_size)  # noqa: SIM115
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
        file, self.file = self.file, None
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
